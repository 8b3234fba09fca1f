package dev.contree.store;

import dev.contree.auth.Token;
import dev.contree.files.FileRecord;
import dev.contree.images.Image;
import dev.contree.images.ImageConfig;
import dev.contree.images.ImageService;
import dev.contree.imports.ImportRequest;
import dev.contree.instances.ExecutionResult;
import dev.contree.operations.EventPayload;
import dev.contree.operations.JobOutcome;
import dev.contree.operations.Operation;
import dev.contree.operations.OperationEvent;
import dev.contree.operations.OperationGlance;
import dev.contree.operations.OperationKind;
import dev.contree.operations.OperationService;
import dev.contree.operations.OperationStatus;
import dev.contree.operations.SampleValues;
import dev.contree.sandbox.SandboxResult;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * What the server relies on of a {@link MetadataStore}, run against every implementation (containerd's snapshotter
 * test-suite pattern): a subclass per engine says how to make an empty database and open a store on it. Each test
 * gets a new database; {@link #reopen} closes the store and opens the same database again.
 */
public abstract class StoreContractTest {
    private static final ImageConfig CONFIG = new ImageConfig(Map.of("PATH", "/usr/bin:/bin"), "/work", "1000:1000");
    private static final Set<OperationStatus> ACTIVE = EnumSet.of(OperationStatus.PENDING, OperationStatus.ASSIGNED,
            OperationStatus.EXECUTING);

    protected MetadataStore store;
    private String alice, bob;

    /** A new, empty database for this test; {@link #open} opens a store on it, as often as the test asks. */
    protected abstract void createDatabase() throws Exception;

    protected abstract MetadataStore open();

    /** Called after the store is closed at the end of each test. */
    protected void dropDatabase() throws Exception {}

    @BeforeEach
    void openStore() throws Exception {
        createDatabase();
        store = open();
        alice = account("alice");
        bob = account("bob");
    }

    @AfterEach
    void closeStore() throws Exception {
        if (store != null) store.close();
        dropDatabase();
    }

    protected void reopen() {
        store.close();
        store = open();
    }

    private String account(String name) {
        return store.tokens().register("hash-of-" + name, name, "test", null).accountId();
    }

    // ------------------------------------------------------------------ tokens

    @Test
    void tokensAreKnownByHashAndAccountsByName() {
        Instant expires = Instant.parse("2031-02-03T04:05:06.123456Z");
        Token second = store.tokens().register("h2", "alice", "ci", expires);
        assertThat(second.accountId()).isEqualTo(alice);
        assertThat(second.accountName()).isEqualTo("alice");
        assertThat(second.name()).isEqualTo("ci");
        assertThat(second.expiresAt()).isEqualTo(expires);
        assertThat(second.revokedAt()).isNull();
        // The same hash again is the same token, whatever else is asked.
        assertThat(store.tokens().register("h2", "carol", "other", null)).isEqualTo(second);
        assertThat(store.tokens().byHash("h2")).contains(second);
        assertThat(store.tokens().byHash("nope")).isEmpty();
        List<Token> all = store.tokens().list();
        assertThat(all).extracting(Token::name).hasSize(3).endsWith("ci");
        assertThat(all).extracting(Token::createdAt).isSorted();
        assertThat(store.tokens().accountsWithTokens()).isEqualTo(2);

        assertThat(store.tokens().revoke("ci")).isEqualTo(1);
        assertThat(store.tokens().revoke("ci")).isZero();
        assertThat(store.tokens().byHash("h2").orElseThrow().revokedAt()).isNotNull();
        String bobToken = store.tokens().byHash("hash-of-bob").orElseThrow().uuid();
        assertThat(store.tokens().revoke(bobToken)).isEqualTo(1);
        assertThat(store.tokens().accountsWithTokens()).isEqualTo(1);
        reopen();
        assertThat(store.tokens().byHash("h2").orElseThrow().expiresAt()).isEqualTo(expires);
        assertThat(store.tokens().accountsWithTokens()).isEqualTo(1);
    }

    @Test
    void tokensRegisteredAtOnceForANewAccountShareIt() throws Exception {
        List<Token> tokens = concurrently(8, i -> store.tokens().register("carol-" + i, "carol", "t" + i, null));
        assertThat(tokens).extracting(Token::accountId).containsOnly(tokens.getFirst().accountId());
        assertThat(store.tokens().list()).filteredOn(t -> t.accountName().equals("carol")).hasSize(8);
    }

    // ------------------------------------------------------------------ files

    @Test
    void aFileRecordIsOnePerAccountAndBytes() throws Exception {
        FileRecord first = store.files().put(alice, "aa".repeat(32), 11);
        Thread.sleep(2);
        FileRecord again = store.files().put(alice, "aa".repeat(32), 11);
        assertThat(again.uuid()).isEqualTo(first.uuid());
        assertThat(again.createdAt()).isEqualTo(first.createdAt());
        assertThat(again.updatedAt()).isAfter(first.updatedAt());
        FileRecord bobs = store.files().put(bob, "aa".repeat(32), 11);
        assertThat(bobs.uuid()).isNotEqualTo(first.uuid());

        assertThat(store.files().bySha256(alice, "aa".repeat(32))).contains(again);
        assertThat(store.files().byUuid(alice, first.uuid())).contains(again);
        assertThat(store.files().byUuid(bob, first.uuid())).isEmpty();
        assertThat(store.files().bySha256(alice, "bb".repeat(32))).isEmpty();

        List<FileRecord> concurrent = concurrently(8, i -> store.files().put(alice, "cc".repeat(32), 5));
        assertThat(concurrent).extracting(FileRecord::uuid).containsOnly(concurrent.getFirst().uuid());

        store.files().delete(bobs.uuid());
        assertThat(store.files().byUuid(bob, bobs.uuid())).isEmpty();
        assertThat(store.files().all()).extracting(FileRecord::sha256).containsExactly("aa".repeat(32), "cc".repeat(32));
    }

    @Test
    void filesListNewestFirstInTimeRangesAndPages() throws Exception {
        List<FileRecord> put = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            put.add(store.files().put(alice, String.format("%064d", i), i));
            Thread.sleep(2);
        }
        store.files().put(bob, "ff".repeat(32), 1);
        List<String> newestFirst = put.reversed().stream().map(FileRecord::uuid).toList();
        assertThat(store.files().list(alice, TimeRange.ANY, Page.ALL)).extracting(FileRecord::uuid).isEqualTo(newestFirst);
        assertThat(store.files().list(alice, TimeRange.ANY, new Page(2, 1))).extracting(FileRecord::uuid)
                .isEqualTo(newestFirst.subList(1, 3));
        TimeRange middle = new TimeRange(put.get(1).createdAt(), put.get(3).createdAt());
        assertThat(store.files().list(alice, middle, Page.ALL)).extracting(FileRecord::uuid).isEqualTo(newestFirst.subList(1, 4));
        assertThat(store.files().list(alice, new TimeRange(put.get(4).createdAt().plusMillis(1), null), Page.ALL)).isEmpty();
    }

    // ------------------------------------------------------------------ images and tags

    @Test
    void anImageKeepsItsLayersInOrderAndBelongsToItsAccount() {
        Image base = store.images().create(image(alice, null, List.of("l2", "l1"), "base"));
        assertThat(base.uuid()).isNotBlank();
        assertThat(base.createdAt()).isNotNull();
        Image child = store.images().create(new ImageService.NewImage(alice, "op-1", base.uuid(), List.of("l3", "l2", "l1"),
                CONFIG, 350, null));
        Image bare = store.images().create(new ImageService.NewImage(alice, null, null, List.of(), ImageConfig.EMPTY, 0, null));
        reopen();
        assertThat(store.images().get(alice, child.uuid())).contains(new Image(child.uuid(), alice, null, child.createdAt(),
                "op-1", base.uuid(), List.of("l3", "l2", "l1"), CONFIG, 350));
        assertThat(store.images().get(alice, base.uuid()).orElseThrow().tag()).isEqualTo("base");
        assertThat(store.images().get(alice, bare.uuid()).orElseThrow().layers()).isEmpty();
        assertThat(store.images().get(bob, base.uuid())).isEmpty();
        assertThat(store.images().children(alice, base.uuid())).extracting(Image::uuid).containsExactly(child.uuid());
        assertThat(store.images().children(bob, base.uuid())).isEmpty();

        store.images().delete(child.uuid());
        assertThat(store.images().get(alice, child.uuid())).isEmpty();
        assertThat(store.layers().chains()).doesNotContainKey(child.uuid());
        assertThat(store.layers().isReferenced("l3")).isFalse();
    }

    @Test
    void aTagIsUniquePerAccountAndMoves() {
        Image a = store.images().create(image(alice, null, List.of("l1"), "app"));
        Image b = store.images().create(image(alice, null, List.of("l2"), "app"));
        Image bobs = store.images().create(image(bob, null, List.of("l1"), "app"));
        assertThat(store.images().get(alice, a.uuid()).orElseThrow().tag()).isNull();
        assertThat(store.images().byTag(alice, "app").orElseThrow().uuid()).isEqualTo(b.uuid());
        assertThat(store.images().byTag(bob, "app").orElseThrow().uuid()).isEqualTo(bobs.uuid());

        assertThat(store.images().setTag(alice, a.uuid(), "app").orElseThrow().tag()).isEqualTo("app");
        assertThat(store.images().get(alice, b.uuid()).orElseThrow().tag()).isNull();
        assertThat(store.images().setTag(alice, bobs.uuid(), "app")).isEmpty();
        assertThat(store.images().setTag(alice, "no-such-image", "x")).isEmpty();
        assertThat(store.images().byTag(bob, "app").orElseThrow().uuid()).isEqualTo(bobs.uuid());

        assertThat(store.images().clearTag(alice, a.uuid(), "other")).isFalse();
        assertThat(store.images().clearTag(bob, a.uuid(), null)).isFalse();
        assertThat(store.images().clearTag(alice, a.uuid(), "app")).isTrue();
        assertThat(store.images().byTag(alice, "app")).isEmpty();
        store.images().setTag(alice, a.uuid(), "v2");
        assertThat(store.images().clearTag(alice, a.uuid(), null)).isTrue();
        assertThat(store.images().get(alice, a.uuid()).orElseThrow().tag()).isNull();
    }

    @Test
    void tagMovesAtOnceLeaveOneImageWithTheTag() throws Exception {
        ImageService.Query all = new ImageService.Query(null, null, null, TimeRange.ANY);
        List<Image> images = concurrently(8, i -> store.images().create(image(alice, null, List.of("l" + i), "race")));
        assertThat(store.images().list(alice, all, Page.ALL)).filteredOn(i -> "race".equals(i.tag())).hasSize(1);
        List<String> moved = concurrently(8, i -> store.images().setTag(alice, images.get(i).uuid(), "race2").orElseThrow().uuid());
        assertThat(moved).hasSize(8);
        assertThat(store.images().list(alice, all, Page.ALL)).filteredOn(i -> "race2".equals(i.tag())).hasSize(1);
    }

    @Test
    void anIdenticalRootImageIsReusedAndRetagged() throws Exception {
        Image first = store.images().create(image(alice, null, List.of("l2", "l1"), "one"));
        Image reused = store.images().create(new ImageService.NewImage(alice, null, null, List.of("l2", "l1"), CONFIG, 300, "two", true));
        assertThat(reused.uuid()).isEqualTo(first.uuid());
        assertThat(reused.tag()).isEqualTo("two");
        // Another order of layers, another config, another account, or a child: a new image.
        assertThat(store.images().create(new ImageService.NewImage(alice, null, null, List.of("l1", "l2"), CONFIG, 300, null, true)).uuid())
                .isNotEqualTo(first.uuid());
        assertThat(store.images().create(new ImageService.NewImage(alice, null, null, List.of("l2", "l1"), ImageConfig.EMPTY, 300, null, true))
                .uuid()).isNotEqualTo(first.uuid());
        assertThat(store.images().create(new ImageService.NewImage(bob, null, null, List.of("l2", "l1"), CONFIG, 300, null, true)).uuid())
                .isNotEqualTo(first.uuid());
        assertThat(store.images().create(new ImageService.NewImage(alice, null, first.uuid(), List.of("l2", "l1"), CONFIG, 300, null, true))
                .uuid()).isNotEqualTo(first.uuid());
        // Identical imports at once end with one image.
        List<Image> same = concurrently(6, i -> store.images().create(
                new ImageService.NewImage(alice, null, null, List.of("l9"), CONFIG, 9, null, true)));
        assertThat(same).extracting(Image::uuid).containsOnly(same.getFirst().uuid());
    }

    @Test
    void imagesListNewestFirstWithFiltersAndTheExactTagFirst() throws Exception {
        Image appX = store.images().create(image(alice, null, List.of("a"), "app-x"));
        Thread.sleep(2);
        Image app = store.images().create(image(alice, null, List.of("b"), "app"));
        Thread.sleep(2);
        Image untagged = store.images().create(image(alice, null, List.of("c"), null));
        Thread.sleep(2);
        Image apple = store.images().create(image(alice, null, List.of("d"), "apple"));
        store.images().create(image(bob, null, List.of("e"), "app"));

        assertThat(list(null, null, null, TimeRange.ANY, Page.ALL)).containsExactly(apple.uuid(), untagged.uuid(), app.uuid(), appX.uuid());
        assertThat(list(true, null, null, TimeRange.ANY, Page.ALL)).containsExactly(apple.uuid(), app.uuid(), appX.uuid());
        assertThat(list(false, null, null, TimeRange.ANY, Page.ALL)).containsExactly(untagged.uuid());
        assertThat(list(null, "app", null, TimeRange.ANY, Page.ALL)).containsExactly(app.uuid(), apple.uuid(), appX.uuid());
        assertThat(list(null, "app-", null, TimeRange.ANY, Page.ALL)).containsExactly(appX.uuid());
        assertThat(list(null, null, untagged.uuid(), TimeRange.ANY, Page.ALL)).containsExactly(untagged.uuid());
        assertThat(list(null, null, null, new TimeRange(app.createdAt(), untagged.createdAt()), Page.ALL))
                .containsExactly(untagged.uuid(), app.uuid());
        assertThat(list(null, null, null, TimeRange.ANY, new Page(2, 1))).containsExactly(untagged.uuid(), app.uuid());
        // A prefix no tag has (nor could have) matches nothing.
        assertThat(list(null, "zz\0", null, TimeRange.ANY, Page.ALL)).isEmpty();
    }

    private List<String> list(Boolean tagged, String prefix, String uuid, TimeRange range, Page page) {
        return store.images().list(alice, new ImageService.Query(tagged, prefix, uuid, range), page).stream().map(Image::uuid).toList();
    }

    // ------------------------------------------------------------------ layers

    @Test
    void layersAreRecordedOncePerIdAndDigestAndSortBytewise() {
        store.layers().record("b-layer", "sha256:" + "11".repeat(32), 100);
        store.layers().record("b-layer", "sha256:" + "22".repeat(32), 999); // same id: no-op
        store.layers().record("other", "sha256:" + "11".repeat(32), 5);     // same digest: no-op
        store.layers().record("B-layer", null, 7);
        store.layers().record("a-layer", null, 8);
        assertThat(store.layers().byDigest("sha256:" + "11".repeat(32))).contains("b-layer");
        assertThat(store.layers().byDigest("sha256:" + "22".repeat(32))).isEmpty();
        assertThat(store.layers().size("b-layer")).contains(100L);
        assertThat(store.layers().size("other")).isEmpty();
        // Bytewise, as SQLite compares: upper case before lower case, whatever the database's locale says.
        assertThat(store.layers().ids()).containsExactly("B-layer", "a-layer", "b-layer");
        store.layers().forget("B-layer");
        assertThat(store.layers().ids()).containsExactly("a-layer", "b-layer");
    }

    @Test
    void aLayersPackIsRecordedOnceAndForgottenWithIt() {
        store.layers().record("packed", null, 10);
        assertThat(store.layers().packed("packed")).isEmpty();
        store.layers().recordPacked("packed", new LayerRecords.Packed("ab".repeat(32), 1234));
        store.layers().recordPacked("packed", new LayerRecords.Packed("cd".repeat(32), 1)); // recorded: no-op
        assertThat(store.layers().packed("packed")).contains(new LayerRecords.Packed("ab".repeat(32), 1234));
        store.layers().forget("packed");
        assertThat(store.layers().packed("packed")).isEmpty();
        assertThat(store.layers().size("packed")).isEmpty();
    }

    @Test
    void objectsNothingNamesAreMarkedThenSweptAfterTheGraceUnlessSomethingNamesThemAgain() throws Exception {
        String a = "aa".repeat(32), b = "bb".repeat(32), c = "cc".repeat(32), d = "dd".repeat(32), e = "ee".repeat(32);
        store.layers().record("l-used", null, 10);
        store.layers().recordPacked("l-used", new LayerRecords.Packed(a, 100));
        store.images().create(image(alice, null, List.of("l-used"), null));
        store.layers().record("l-spare", null, 20);
        store.layers().recordPacked("l-spare", new LayerRecords.Packed(b, 200));
        store.files().put(alice, c, 300);
        store.layers().record("l-gone", "sha256:" + "12".repeat(32), 30);
        store.layers().recordPacked("l-gone", new LayerRecords.Packed(e, 500));
        ObjectRecords objects = store.objects();
        List<ObjectRecords.Seen> listed = List.of(new ObjectRecords.Seen("layers/" + a, 100), new ObjectRecords.Seen("layers/" + b, 200),
                new ObjectRecords.Seen("files/" + c, 300), new ObjectRecords.Seen("files/" + d, 400),
                new ObjectRecords.Seen("layers/" + e, 500), new ObjectRecords.Seen("other/x", 1));
        assertThat(objects.mark(listed)).isEqualTo(new ObjectRecords.Marking(3, 0));
        assertThat(objects.mark(listed)).as("marked once").isEqualTo(new ObjectRecords.Marking(0, 0));
        assertThat(objects.marks()).extracting(ObjectRecords.Mark::key).containsExactly("files/" + d, "layers/" + b, "layers/" + e);
        assertThat(objects.markCount()).isEqualTo(3);
        assertThat(objects.marked(List.of("layers/" + a, "layers/" + b))).containsExactly("layers/" + b);
        assertThat(objects.packs(List.of("l-used", "l-spare", "l-none"))).containsExactlyInAnyOrder(
                new ObjectRecords.LayerPack("l-used", a, false), new ObjectRecords.LayerPack("l-spare", b, true));
        assertThat(objects.due(3_600_000_000L, 10)).as("not before the grace").isEmpty();
        Thread.sleep(5);

        // A reuse unmarks after its check; a mark nobody holds any more is nothing to unmark.
        List<String> revived = new ArrayList<>();
        assertThat(objects.unmark(List.of("layers/" + b, "files/" + c), revived::add)).containsExactly("layers/" + b);
        assertThat(revived).containsExactly("layers/" + b);
        // Something names e's layer now: the sweep drops its mark instead of deleting it.
        store.images().create(image(bob, null, List.of("l-gone"), null));
        List<List<String>> deletions = new ArrayList<>();
        List<ObjectRecords.Mark> swept = objects.sweep(objects.due(0, 10), 0, deletions::add);
        assertThat(swept).extracting(ObjectRecords.Mark::key).containsExactly("files/" + d);
        assertThat(deletions).containsExactly(List.of("files/" + d));
        assertThat(objects.marks()).isEmpty();

        // A pack no image uses goes with its layer's records; a failed bucket delete changes nothing.
        assertThat(objects.mark(List.of(new ObjectRecords.Seen("layers/" + b, 200))).marked()).isEqualTo(1);
        Thread.sleep(5);
        List<ObjectRecords.Mark> due = objects.due(0, 10);
        try {
            objects.sweep(due, 0, keys -> { throw new java.io.IOException("bucket down"); });
            throw new AssertionError("the deleter's failure must reach the caller");
        } catch (java.io.IOException expected) {
            assertThat(expected).hasMessage("bucket down");
        }
        assertThat(objects.marks()).extracting(ObjectRecords.Mark::key).containsExactly("layers/" + b);
        assertThat(store.layers().packed("l-spare")).isPresent();
        assertThat(objects.sweep(due, 0, deletions::add)).hasSize(1);
        assertThat(store.layers().packed("l-spare")).isEmpty();
        assertThat(store.layers().size("l-spare")).isEmpty();
        assertThat(store.layers().packed("l-used")).isPresent();
        assertThat(store.layers().packed("l-gone")).isPresent();
        assertThat(objects.marks()).isEmpty();
    }

    @Test
    void oneObjectCollectionAtATime() throws Exception {
        CountDownLatch inside = new CountDownLatch(1), release = new CountDownLatch(1);
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            Future<Boolean> first = pool.submit(() -> store.objects().exclusive(() -> {
                inside.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }));
            assertThat(inside.await(30, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
            assertThat(store.objects().exclusive(() -> {})).as("while another runs").isFalse();
            release.countDown();
            assertThat(first.get(30, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
            assertThat(store.objects().exclusive(() -> {})).isTrue();
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aDigestIsProvenPerAccount() {
        String digest = "sha256:" + "33".repeat(32);
        assertThat(store.layers().proven(alice, digest)).isFalse();
        store.layers().prove(alice, digest);
        store.layers().prove(alice, digest);
        assertThat(store.layers().proven(alice, digest)).isTrue();
        assertThat(store.layers().proven(bob, digest)).isFalse();
    }

    @Test
    void layerReferencesFollowEveryAccountsImages() {
        Image a = store.images().create(image(alice, null, List.of("l2", "l1"), null));
        Image b = store.images().create(image(bob, null, List.of("l3", "l1"), null));
        Image empty = store.images().create(image(alice, null, List.of(), null));
        assertThat(store.layers().referenced()).containsExactlyInAnyOrder("l1", "l2", "l3");
        assertThat(store.layers().isReferenced("l3")).isTrue();
        assertThat(store.layers().isReferenced("l4")).isFalse();
        assertThat(store.layers().chains()).isEqualTo(Map.of(a.uuid(), List.of("l2", "l1"), b.uuid(), List.of("l3", "l1"),
                empty.uuid(), List.of()));

        store.layers().replaceChain(b.uuid(), List.of("l4"));
        store.layers().replaceChain("no-such-image", List.of("l5"));
        assertThat(store.images().get(bob, b.uuid()).orElseThrow().layers()).containsExactly("l4");
        assertThat(store.layers().referenced()).containsExactlyInAnyOrder("l1", "l2", "l4");
        assertThat(store.layers().isReferenced("l5")).isFalse();
    }

    @Test
    void accountBytesCountEachLayerOnceAndTheAccountsFiles() {
        store.layers().record("l1", null, 1000);
        store.layers().record("l2", null, 200);
        store.layers().record("l3", null, 30);
        store.layers().record("l4", null, 4);
        store.images().create(image(alice, null, List.of("l2", "l1"), null));
        store.images().create(image(alice, null, List.of("l1"), null));
        store.images().create(image(bob, null, List.of("l3", "l1"), null));
        store.files().put(alice, "aa".repeat(32), 5);
        store.files().put(bob, "bb".repeat(32), 7);
        assertThat(store.accountBytes(alice, List.of())).isEqualTo(1000 + 200 + 5);
        assertThat(store.accountBytes(alice, List.of("l4", "l4", "l1", "unrecorded"))).isEqualTo(1000 + 200 + 4 + 5);
        assertThat(store.accountBytes(bob, List.of())).isEqualTo(1000 + 30 + 7);
        assertThat(store.accountBytes(account("carol"), List.of())).isZero();
    }

    // ------------------------------------------------------------------ operations

    @Test
    void anOperationIsCreatedPendingAndReadsBackItsRequest() {
        Operation op = store.operations().create(alice, OperationKind.INSTANCE, "img-1", SampleValues.execution());
        assertThat(op.status()).isEqualTo(OperationStatus.PENDING);
        assertThat(op.accountId()).isEqualTo(alice);
        assertThat(op.imageUuid()).isEqualTo("img-1");
        assertThat(op.createdAt()).isNotNull();
        assertThat(op.startedAt()).isNull();
        reopen();
        Operation back = store.operations().get(op.uuid()).orElseThrow();
        assertThat(back).usingRecursiveComparison().isEqualTo(op);
        assertThat(back.request()).usingRecursiveComparison().isEqualTo(SampleValues.execution());

        Operation imp = store.operations().create(alice, OperationKind.IMAGE_IMPORT, null, SampleValues.importWithCredentials());
        ImportRequest kept = (ImportRequest) store.operations().get(imp.uuid()).orElseThrow().request();
        assertThat(kept.password()).isEqualTo(ImportRequest.PASSWORD_NOT_KEPT);
        assertThat(store.operations().get("no-such-operation")).isEmpty();
    }

    @Test
    void operationsListNewestFirstWithFiltersPagesAndCounts() throws Exception {
        List<Operation> ops = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            ops.add(store.operations().create(alice, i % 2 == 0 ? OperationKind.INSTANCE : OperationKind.IMAGE_IMPORT, null,
                    i % 2 == 0 ? SampleValues.execution() : SampleValues.importWithCredentials()));
            Thread.sleep(2);
        }
        String bobs = store.operations().create(bob, OperationKind.INSTANCE, null, SampleValues.execution()).uuid();
        store.operations().transition(ops.get(1).uuid(), ACTIVE, OperationStatus.EXECUTING);
        store.finish(ops.get(2).uuid(), new JobOutcome.Failed("boom"));
        List<String> newestFirst = ops.reversed().stream().map(Operation::uuid).toList();

        assertThat(operations(null, null, TimeRange.ANY, Page.ALL)).isEqualTo(newestFirst);
        assertThat(operations(null, null, TimeRange.ANY, new Page(2, 2))).isEqualTo(newestFirst.subList(2, 4));
        assertThat(operations(OperationStatus.PENDING, null, TimeRange.ANY, Page.ALL))
                .containsExactly(ops.get(4).uuid(), ops.get(3).uuid(), ops.get(0).uuid());
        assertThat(operations(null, OperationKind.IMAGE_IMPORT, TimeRange.ANY, Page.ALL)).containsExactly(ops.get(3).uuid(), ops.get(1).uuid());
        assertThat(operations(OperationStatus.FAILED, OperationKind.INSTANCE, TimeRange.ANY, Page.ALL)).containsExactly(ops.get(2).uuid());
        assertThat(operations(null, null, new TimeRange(ops.get(1).createdAt(), ops.get(2).createdAt()), Page.ALL))
                .containsExactly(ops.get(2).uuid(), ops.get(1).uuid());

        assertThat(store.operations().countByStatus(alice)).isEqualTo(Map.of("PENDING", 3L, "EXECUTING", 1L, "FAILED", 1L));
        assertThat(store.operations().countByStatus(bob)).isEqualTo(Map.of("PENDING", 1L));
        // Every account's unfinished work, oldest first.
        assertThat(store.operations().active()).extracting(Operation::uuid).containsExactly(ops.get(0).uuid(), ops.get(1).uuid(),
                ops.get(3).uuid(), ops.get(4).uuid(), bobs);
    }

    private List<String> operations(OperationStatus status, OperationKind kind, TimeRange range, Page page) {
        return store.operations().list(alice, new OperationService.Query(status, kind, range), page).stream().map(Operation::uuid).toList();
    }

    @Test
    void aTransitionHappensOnlyFromTheGivenStatusesAndStampsTimes() {
        String op = store.operations().create(alice, OperationKind.INSTANCE, null, SampleValues.execution()).uuid();
        assertThat(store.operations().transition(op, Set.of(), OperationStatus.EXECUTING)).isFalse();
        assertThat(store.operations().transition(op, Set.of(OperationStatus.ASSIGNED), OperationStatus.EXECUTING)).isFalse();
        assertThat(store.operations().transition(op, Set.of(OperationStatus.PENDING), OperationStatus.ASSIGNED)).isTrue();
        assertThat(store.operations().get(op).orElseThrow().startedAt()).isNull();
        assertThat(store.operations().transition(op, Set.of(OperationStatus.ASSIGNED), OperationStatus.EXECUTING)).isTrue();
        Operation executing = store.operations().get(op).orElseThrow();
        assertThat(executing.status()).isEqualTo(OperationStatus.EXECUTING);
        assertThat(executing.startedAt()).isNotNull();
        assertThat(executing.finishedAt()).isNull();
        assertThat(store.operations().transition(op, ACTIVE, OperationStatus.FAILED)).isTrue();
        Operation failed = store.operations().get(op).orElseThrow();
        assertThat(failed.finishedAt()).isAfterOrEqualTo(failed.startedAt());
        assertThat(store.operations().transition(op, ACTIVE, OperationStatus.EXECUTING)).isFalse();
        assertThat(store.operations().cancel(op, "too late")).isFalse();
        assertThat(store.operations().get(op).orElseThrow().error()).isNull();
        assertThat(store.operations().transition("no-such-operation", ACTIVE, OperationStatus.FAILED)).isFalse();
    }

    @Test
    void ofRacingTransitionsExactlyOneWins() throws Exception {
        for (int round = 0; round < 10; round++) {
            String op = store.operations().create(alice, OperationKind.INSTANCE, null, SampleValues.execution()).uuid();
            List<Boolean> won = concurrently(6, i -> store.operations().transition(op, Set.of(OperationStatus.PENDING),
                    OperationStatus.EXECUTING));
            assertThat(won).containsOnlyOnce(true);
        }
    }

    @Test
    void aCancelThatWonIsNeverOverwrittenByALateFinish() throws Exception {
        Image old = store.images().create(image(alice, null, List.of("l1"), "result"));
        for (int round = 0; round < 12; round++) {
            String op = store.operations().create(alice, OperationKind.INSTANCE, old.uuid(), SampleValues.execution()).uuid();
            store.operations().transition(op, ACTIVE, OperationStatus.EXECUTING);
            JobOutcome created = new JobOutcome.Succeeded(new JobOutcome.Created(new ImageService.NewImage(alice, op, old.uuid(),
                    List.of("new-" + round, "l1"), CONFIG, 10, "result")), 10, new JobOutcome.Usage(0.5, 1024), null);
            List<Boolean> won = concurrently(2, i -> i == 0 ? store.operations().cancel(op, "cancelled by client")
                    : store.finish(op, created));
            assertThat(won).containsOnlyOnce(true);
            Operation done = store.operations().get(op).orElseThrow();
            List<Image> fromOp = store.images().list(alice, new ImageService.Query(null, null, null, TimeRange.ANY), Page.ALL)
                    .stream().filter(i -> op.equals(i.operationUuid())).toList();
            if (won.get(0)) {
                assertThat(done.status()).isEqualTo(OperationStatus.CANCELLED);
                assertThat(done.error()).isEqualTo("cancelled by client");
                assertThat(done.resultImageUuid()).isNull();
                assertThat(fromOp).isEmpty(); // the finish's image went with its transaction
            } else {
                assertThat(done.status()).isEqualTo(OperationStatus.SUCCESS);
                assertThat(fromOp).extracting(Image::uuid).containsExactly(done.resultImageUuid());
                assertThat(store.images().byTag(alice, "result").orElseThrow().uuid()).isEqualTo(done.resultImageUuid());
            }
        }
    }

    @Test
    void finishRecordsTheCreatedImageAndMovesItsTagInOneTransaction() {
        Image parent = store.images().create(image(alice, null, List.of("l1"), "latest"));
        String op = store.operations().create(alice, OperationKind.INSTANCE, parent.uuid(), SampleValues.execution()).uuid();
        store.operations().transition(op, ACTIVE, OperationStatus.EXECUTING);
        ImageService.NewImage child = new ImageService.NewImage(alice, op, parent.uuid(), List.of("l2", "l1"), CONFIG, 4096, "latest");
        assertThat(store.finish(op, new JobOutcome.Succeeded(new JobOutcome.Created(child), 4096, new JobOutcome.Usage(1.5, 2048),
                SampleValues.result()))).isTrue();
        reopen();
        Operation done = store.operations().get(op).orElseThrow();
        assertThat(done.status()).isEqualTo(OperationStatus.SUCCESS);
        assertThat(done.finishedAt()).isNotNull();
        assertThat(done.resultTag()).isEqualTo("latest");
        assertThat(done.imageSize()).isEqualTo(4096L);
        assertThat(done.consumedCpu()).isEqualTo(1.5);
        assertThat(done.consumedMemory()).isEqualTo(2048L);
        assertThat(done.request()).usingRecursiveComparison().isEqualTo(SampleValues.execution());
        assertThat(done.result()).usingRecursiveComparison().isEqualTo(SampleValues.result());
        Image made = store.images().get(alice, done.resultImageUuid()).orElseThrow();
        assertThat(made).isEqualTo(new Image(made.uuid(), alice, "latest", made.createdAt(), op, parent.uuid(), List.of("l2", "l1"),
                CONFIG, 4096));
        assertThat(store.images().get(alice, parent.uuid()).orElseThrow().tag()).isNull();

        // Finishing again changes nothing: no second image, the tag stays.
        assertThat(store.finish(op, new JobOutcome.Succeeded(new JobOutcome.Created(child), 1, null, null))).isFalse();
        assertThat(store.images().children(alice, parent.uuid())).extracting(Image::uuid).containsExactly(made.uuid());
        assertThat(store.images().byTag(alice, "latest").orElseThrow().uuid()).isEqualTo(made.uuid());
        assertThat(store.operations().get(op).orElseThrow().finishedAt()).isEqualTo(done.finishedAt());
    }

    @Test
    void finishRecordsEveryKindOfOutcome() {
        String unchanged = started(), discarded = started(), failed = started(), cancelled = started(), untagged = started();
        assertThat(store.finish(unchanged, new JobOutcome.Succeeded(new JobOutcome.Unchanged("img-0"), 0, null, null))).isTrue();
        assertThat(store.finish(discarded, new JobOutcome.Succeeded(new JobOutcome.Discarded(), 77, new JobOutcome.Usage(0.25, 64),
                null))).isTrue();
        assertThat(store.finish(failed, new JobOutcome.Failed("registry said: \0no"))).isTrue();
        assertThat(store.finish(cancelled, new JobOutcome.Cancelled("server shutting down"))).isTrue();
        assertThat(store.finish(untagged, new JobOutcome.Succeeded(new JobOutcome.Created(
                new ImageService.NewImage(alice, untagged, null, List.of("x"), CONFIG, 1, null)), 1, null, null))).isTrue();

        Operation u = store.operations().get(unchanged).orElseThrow();
        assertThat(List.of(u.status(), u.resultImageUuid(), u.imageSize())).containsExactly(OperationStatus.SUCCESS, "img-0", 0L);
        assertThat(u.consumedCpu()).isNull();
        assertThat(u.result()).isNull();
        Operation d = store.operations().get(discarded).orElseThrow();
        assertThat(d.resultImageUuid()).isNull();
        assertThat(List.of(d.imageSize(), d.consumedCpu(), d.consumedMemory())).containsExactly(77L, 0.25, 64L);
        Operation f = store.operations().get(failed).orElseThrow();
        assertThat(f.status()).isEqualTo(OperationStatus.FAILED);
        // U+0000 cannot be stored by every engine: each stores the replacement character instead.
        assertThat(f.error()).isEqualTo("registry said: \uFFFDno");
        Operation c = store.operations().get(cancelled).orElseThrow();
        assertThat(List.of(c.status(), c.error())).containsExactly(OperationStatus.CANCELLED, "server shutting down");
        Operation t = store.operations().get(untagged).orElseThrow();
        assertThat(t.resultTag()).isNull();
        assertThat(store.images().get(alice, t.resultImageUuid())).isPresent();
        assertThat(store.operations().active()).isEmpty();
    }

    private String started() {
        String op = store.operations().create(alice, OperationKind.INSTANCE, null, SampleValues.execution()).uuid();
        store.operations().transition(op, ACTIVE, OperationStatus.EXECUTING);
        return op;
    }

    @Test
    void cancelEndsAnActiveOperationWithItsReason() {
        String op = store.operations().create(alice, OperationKind.IMAGE_IMPORT, null, SampleValues.importWithCredentials()).uuid();
        assertThat(store.operations().cancel(op, "cancelled by client")).isTrue();
        Operation done = store.operations().get(op).orElseThrow();
        assertThat(List.of(done.status(), done.error())).containsExactly(OperationStatus.CANCELLED, "cancelled by client");
        assertThat(done.finishedAt()).isNotNull();
        assertThat(store.operations().cancel(op, "again")).isFalse();
        assertThat(store.finish(op, new JobOutcome.Failed("late"))).isFalse();
        assertThat(store.operations().get(op).orElseThrow().error()).isEqualTo("cancelled by client");
    }

    // ------------------------------------------------------------------ events

    @Test
    void eventsAreNumberedFromZeroPerLogAndReadBackAsWritten() {
        String op = started(), other = started();
        List<EventPayload> payloads = SampleValues.everyPayload();
        List<OperationEvent> appended = new ArrayList<>();
        for (int i = 0; i < payloads.size(); i++) appended.add(store.operations().append(op, i % 3, payloads.get(i)));
        OperationEvent first = store.operations().append(other, 1, payloads.getFirst());
        assertThat(first.id()).isZero();
        assertThat(appended).extracting(OperationEvent::id).containsExactlyElementsOf(
                IntStream.range(0, payloads.size()).mapToObj(i -> (long) i).toList());

        reopen();
        List<OperationEvent> read = store.operations().events(op, -1);
        assertThat(read).usingRecursiveComparison().isEqualTo(appended);
        assertThat(read).extracting(OperationEvent::ts).isSorted();
        assertThat(store.operations().events(op, 7)).usingRecursiveComparison().isEqualTo(appended.subList(8, appended.size()));
        assertThat(store.operations().events(op, appended.size() - 1)).isEmpty();
        assertThat(store.operations().events("no-such-operation", -1)).isEmpty();
        // One process's events: spid 1 appended events 1, 4, 7, 10.
        assertThat(store.operations().events(op, -1, 1)).usingRecursiveComparison()
                .isEqualTo(List.of(appended.get(1), appended.get(4), appended.get(7), appended.get(10)));
        assertThat(store.operations().events(op, 4, 1)).extracting(OperationEvent::id).containsExactly(7L, 10L);
        assertThat(store.operations().events(op, -1, 9)).isEmpty();

        // After a reopen, or once a log was closed, numbering goes on where the log ends.
        assertThat(store.operations().append(op, 0, payloads.getFirst()).id()).isEqualTo(payloads.size());
        store.operations().logClosed(other);
        assertThat(store.operations().append(other, 1, payloads.getFirst()).id()).isEqualTo(1);
    }

    @Test
    void aReadOfALogSeesEveryEventAppendedBeforeIt() {
        String op = started();
        OperationEvent one = store.operations().append(op, 0, SampleValues.everyPayload().getFirst());
        assertThat(store.operations().events(op, -1)).usingRecursiveComparison().isEqualTo(List.of(one));
        OperationEvent two = store.operations().append(op, 3, SampleValues.everyPayload().getFirst());
        assertThat(store.operations().events(op, -1, 3)).usingRecursiveComparison().isEqualTo(List.of(two));
    }

    @Test
    void glancesAreWhatAFullReadShowsOfAPageOfTheAccountsOperations() {
        String finished = started();
        assertThat(store.finish(finished, new JobOutcome.Succeeded(new JobOutcome.Unchanged("img-0"), 5, null, SampleValues.result()))).isTrue();
        byte[] big = new byte[512 * 1024];
        Arrays.fill(big, (byte) 'a');
        String loud = started();
        ExecutionResult loudResult = new ExecutionResult(new SandboxResult(0, 0, false, false, 5, SampleValues.usage(), big, false,
                big.length, big, false, big.length, false, null, null), 0);
        assertThat(store.finish(loud, new JobOutcome.Succeeded(new JobOutcome.Unchanged("img-0"), 5, null, loudResult))).isTrue();
        String running = started();
        String queued = store.operations().create(alice, OperationKind.IMAGE_IMPORT, null, SampleValues.importWithCredentials()).uuid();
        String failed = started();
        assertThat(store.finish(failed, new JobOutcome.Failed("boom"))).isTrue();
        String bobs = store.operations().create(bob, OperationKind.INSTANCE, null, SampleValues.execution()).uuid();

        List<OperationGlance> glances = store.operations().glances(alice,
                List.of(finished, loud, running, queued, failed, bobs, UUID.randomUUID().toString(), finished));
        assertThat(glances).extracting(OperationGlance::uuid).containsExactlyInAnyOrder(finished, loud, running, queued, failed);
        for (OperationGlance g : glances) {
            assertThat(g).usingRecursiveComparison().isEqualTo(OperationGlance.of(store.operations().get(g.uuid()).orElseThrow()));
        }
        assertThat(store.operations().glances(alice, List.of())).isEmpty();

        assertThat(store.operations().activeGlances(alice, 10)).extracting(OperationGlance::uuid).containsExactly(running, queued);
        assertThat(store.operations().activeGlances(alice, 1)).extracting(OperationGlance::uuid).containsExactly(running);
        assertThat(store.operations().activeGlances(alice, 1).getFirst())
                .usingRecursiveComparison().isEqualTo(OperationGlance.of(store.operations().get(running).orElseThrow()));
        assertThat(store.operations().activeGlances(bob, 10)).extracting(OperationGlance::uuid).containsExactly(bobs);
    }

    @Test
    void finishAppendsTheCompletionEventInItsTransactionAfterEveryEarlierEvent() {
        List<OperationEvent> heard = Collections.synchronizedList(new ArrayList<>());
        store.operations().onCommitted(heard::add);
        String op = started();
        OperationEvent a = store.operations().append(op, 0, SampleValues.everyPayload().getFirst());
        OperationEvent b = store.operations().append(op, 1, SampleValues.everyPayload().get(1));
        assertThat(store.finish(op, new JobOutcome.Succeeded(new JobOutcome.Unchanged("img-0"), 5, null, SampleValues.result()))).isTrue();

        Operation done = store.operations().get(op).orElseThrow();
        assertThat(done.result()).usingRecursiveComparison().isEqualTo(SampleValues.result());
        assertThat(done.request()).usingRecursiveComparison().isEqualTo(SampleValues.execution());
        List<OperationEvent> log = store.operations().events(op, -1);
        assertThat(log).extracting(OperationEvent::id).containsExactly(a.id(), b.id(), 2L);
        assertThat(log.getLast().spid()).isZero();
        assertThat(log.getLast().payload()).isEqualTo(EventPayload.Completion.of(done));
        // Announced by the time finish returns, in id order: the earlier events were committed before or with it.
        List<OperationEvent> ofOp = heard.stream().filter(e -> e.operationUuid().equals(op)).toList();
        assertThat(ofOp).usingRecursiveComparison().isEqualTo(log);

        // A lost finish appends nothing.
        assertThat(store.finish(op, new JobOutcome.Failed("late"))).isFalse();
        reopen();
        assertThat(store.operations().events(op, -1)).usingRecursiveComparison().isEqualTo(log);
    }

    @Test
    void writesForLaterComeBeforeAnyLaterWrite() {
        String op = store.operations().create(alice, OperationKind.INSTANCE, null, SampleValues.execution()).uuid();
        assertThat(store.operations().transition(op, Set.of(OperationStatus.PENDING), OperationStatus.ASSIGNED)).isTrue();
        store.operations().executingLater(op);
        store.layers().recordLater("later", "sha256:later", 12);
        Image img = store.images().create(image(alice, null, List.of("later"), "t"));
        // An insert returns what a read gives.
        assertThat(store.images().get(alice, img.uuid()).orElseThrow()).isEqualTo(img);
        assertThat(store.layers().size("later")).contains(12L);
        Operation executing = store.operations().get(op).orElseThrow();
        assertThat(executing.status()).isEqualTo(OperationStatus.EXECUTING);
        assertThat(executing.startedAt()).isNotNull();
        // Only an ASSIGNED operation moves.
        String pending = store.operations().create(alice, OperationKind.INSTANCE, null, SampleValues.execution()).uuid();
        store.operations().executingLater(pending);
        store.layers().record("now", "sha256:now", 1);
        assertThat(store.operations().get(pending).orElseThrow().status()).isEqualTo(OperationStatus.PENDING);
    }

    @Test
    void eventsAppendedAtOnceGetDenseIds() throws Exception {
        String op = started();
        List<List<Long>> ids = concurrently(8, t -> {
            List<Long> mine = new ArrayList<>();
            for (int i = 0; i < 40; i++) {
                mine.add(store.operations().append(op, t, new EventPayload.Output(EventPayload.Stream.STDOUT, new byte[]{(byte) t})).id());
            }
            return mine;
        });
        List<Long> all = new ArrayList<>(ids.stream().flatMap(List::stream).toList());
        Collections.sort(all);
        assertThat(all).isEqualTo(IntStream.range(0, 320).mapToObj(i -> (long) i).toList());
        for (List<Long> mine : ids) assertThat(mine).isSorted(); // each writer sees its own events in order
        List<OperationEvent> read = store.operations().events(op, -1);
        assertThat(read).extracting(OperationEvent::id).isEqualTo(all);
        // Every event is stored with the writer that appended it.
        Map<Integer, Long> perWriter = new LinkedHashMap<>();
        for (OperationEvent e : read) {
            assertThat(((EventPayload.Output) e.payload()).bytes()).containsExactly((byte) e.spid());
            perWriter.merge(e.spid(), 1L, Long::sum);
        }
        assertThat(perWriter.values()).containsOnly(40L);
    }

    // ------------------------------------------------------------------ the engine's own check

    @Test
    void aHealthyStoreHasNoIntegrityProblem() {
        store.images().create(image(alice, null, List.of("l1"), "x"));
        assertThat(store.integrityProblem()).isEmpty();
    }

    // ------------------------------------------------------------------ helpers

    private static ImageService.NewImage image(String account, String operation, List<String> layers, String tag) {
        return new ImageService.NewImage(account, operation, null, layers, CONFIG, 300, tag);
    }

    @FunctionalInterface
    protected interface Task<T> {
        T run(int i) throws Exception;
    }

    /** Runs {@code n} tasks on as many threads, released together; their results in task order. */
    protected static <T> List<T> concurrently(int n, Task<T> task) throws Exception {
        CountDownLatch go = new CountDownLatch(1);
        try (ExecutorService pool = Executors.newFixedThreadPool(n)) {
            List<Future<T>> futures = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                int index = i;
                Callable<T> call = () -> {
                    go.await();
                    return task.run(index);
                };
                futures.add(pool.submit(call));
            }
            go.countDown();
            List<T> out = new ArrayList<>();
            for (Future<T> f : futures) out.add(f.get());
            return out;
        }
    }
}
