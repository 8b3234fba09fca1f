package dev.contree.objects;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestPostgres;
import dev.contree.TestS3;
import dev.contree.TestServer;
import dev.contree.files.FileRecord;
import dev.contree.operations.ClusterSettings;
import dev.contree.operations.ClusterSettings.Role;
import dev.contree.operations.OperationKind;
import dev.contree.registry.OciLayoutBuilder;
import dev.contree.server.ServerConfig;
import dev.contree.store.ObjectRecords;
import dev.contree.store.postgres.PostgresStore;
import dev.contree.store.postgres.PostgresUrl;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.UnaryOperator;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Bucket-wide garbage collection against a real PostgreSQL (TestPostgres) and a real S3-protocol server (S3Proxy,
 * filesystem backend, loopback): node A (runs imports and executions) and node B (an api node that reads what it
 * lacks from the bucket), both with their periodic pass off, so each test runs its passes itself. Two collectors
 * over the same database: {@link #patient} (grace 1 h: it marks, it never deletes anything marked in this test) and
 * {@link #prompt} (grace {@link #GRACE}); a test lets the grace pass by waiting for it (the database's clock is the
 * one that counts), never by assuming how long something takes.
 */
class BucketGarbageCollectionTest {
    static final Duration GRACE = Duration.ofMillis(1500);
    @TempDir static Path dir;
    static TestPostgres pg;
    static TestS3 s3;
    static String bucket, database;
    static TestServer a, b;
    static PostgresStore store;
    static S3ObjectStore objects;
    static BucketGarbageCollector patient, prompt;

    @BeforeAll
    static void start() throws Exception {
        pg = TestPostgres.start();
        s3 = TestS3.start();
        database = pg.createDatabase();
        bucket = s3.newBucket();
        a = TestServer.inTempDir("gc-a", node(Role.ALL));
        b = TestServer.inTempDir("gc-b", node(Role.API));
        store = PostgresStore.open(PostgresUrl.parse(database, null));
        objects = S3ObjectStore.open(ObjectStoreUrl.parse(bucket));
        patient = new BucketGarbageCollector(objects, store.objects(), Duration.ofHours(1));
        prompt = new BucketGarbageCollector(objects, store.objects(), GRACE);
    }

    static UnaryOperator<ServerConfig> node(Role role) {
        return cfg -> cfg.withRuntime("runc", "ptrace").withLayerPoolBytes(2L << 30).withDatabase(PostgresUrl.parse(database, null))
                .withObjectStore(new ObjectStoreSettings(ObjectStoreUrl.parse(bucket), ObjectStoreSettings.DEFAULT_CACHE_BYTES)
                        .withGc(Duration.ZERO, GRACE))
                .withCluster(new ClusterSettings(role, Duration.ofSeconds(5), null)
                        .withKinds(Set.of(OperationKind.INSTANCE, OperationKind.IMAGE_IMPORT)));
    }

    @AfterAll
    static void stop() throws Exception {
        for (TestServer s : new TestServer[] {b, a}) if (s != null) s.close();
        if (objects != null) objects.close();
        if (store != null) store.close();
        if (s3 != null) s3.close();
        if (pg != null) pg.close();
    }

    @Test
    void aDeletedImagesPackGoesAfterTheGraceAndNotBeforeWhileEveryReferencedObjectStays() throws Exception {
        byte[] gone = random(200_000, 1), kept = random(150_000, 2);
        String doomed = a.importRootfs(a.tokenA, rootfs("gc/gone.bin", gone), null);
        String base = a.importBusybox(null);
        String keeper = a.importRootfs(a.tokenA, rootfs("gc/kept.bin", kept), null);
        JsonNode run = ClusterObjectStoreTest.sh(a, base, "mkdir -p /out && head -c 100000 /dev/urandom > /out/child.bin && sha256sum /out/child.bin");
        assertThat(run.get("status").asText()).as(run.toString()).isEqualTo("SUCCESS");
        String child = run.get("result").get("image").asText();
        String childSha = ClusterObjectStoreTest.stdout(run).split(" ")[0];

        ObjectKey doomedPack = pack(doomed);
        String doomedLayer = layers(doomed).getFirst();
        List<ObjectKey> keptPacks = new ArrayList<>();
        for (String image : List.of(base, keeper, child)) {
            for (String layer : layers(image)) keptPacks.add(ObjectKey.layer(packOf(layer).sha256()));
        }
        store.images().delete(doomed); // its one layer is in no other image now

        var first = patient.collect();
        assertThat(first.ran()).isTrue();
        assertThat(marked()).as("only the deleted image's pack is unreferenced").containsExactly(doomedPack.markKey());
        assertThat(first.deleted()).isZero();
        assertThat(objects.exists(doomedPack)).as("not before the grace").isTrue();

        awaitGrace();
        var second = prompt.collect();
        assertThat(second.deleted()).as(second.toString()).isEqualTo(1);
        assertThat(second.deletedBytes()).isPositive();
        assertThat(objects.exists(doomedPack)).isFalse();
        assertThat(marked()).isEmpty();
        assertThat(store.layers().packed(doomedLayer)).as("its pack record went with it").isEmpty();
        for (ObjectKey k : keptPacks) assertThat(objects.exists(k)).as("%s is referenced", k).isTrue();
        // Node B has none of these layers: it reads them from the bucket, byte for byte.
        assertThat(sha256(b.get(b.tokenA, "/v1/inspect/" + keeper + "/download?path=/gc/kept.bin").body())).isEqualTo(sha256(kept));
        assertThat(sha256(b.get(b.tokenA, "/v1/inspect/" + child + "/download?path=/out/child.bin").body())).isEqualTo(childSha);
        // The uploaded rootfs files are named by their records: never candidates.
        for (FileRecord f : store.files().all()) assertThat(objects.exists(ObjectKey.file(f.sha256()))).isTrue();

        // Importing it again works: the layer's records went with the pack, so it is unpacked and uploaded anew.
        String again = a.importRootfs(a.tokenA, rootfs("gc/gone.bin", gone), null);
        assertThat(sha256(b.get(b.tokenA, "/v1/inspect/" + again + "/download?path=/gc/gone.bin").body())).isEqualTo(sha256(gone));
    }

    @Test
    void reusingAPackThatIsDueForDeletionRevivesItAndTheNewImageReadsBack() throws Exception {
        byte[] content = random(180_000, 3);
        byte[] tar = rootfs("race/data.bin", content);
        String first = a.importRootfs(a.tokenA, tar, null);
        ObjectKey key = pack(first);
        store.images().delete(first);
        patient.collect();
        assertThat(marked()).contains(key.markKey());
        awaitGrace(); // the pack is due: the next pass would delete it

        // The same content again: the import finds the layer by digest, uploads nothing, and records a new image over it.
        String second = a.importRootfs(a.tokenA, tar, null);
        assertThat(pack(second)).isEqualTo(key);
        assertThat(marked()).as("the reuse removed the mark").doesNotContain(key.markKey());

        awaitGrace();
        var pass = prompt.collect();
        assertThat(objects.exists(key)).as("%s after %s", key, pass).isTrue();
        assertThat(marked()).doesNotContain(key.markKey());
        assertThat(sha256(b.get(b.tokenA, "/v1/inspect/" + second + "/download?path=/race/data.bin").body())).isEqualTo(sha256(content));
    }

    /**
     * The two windows an end-to-end run cannot be made to hit on demand, driven step by step here with what a job
     * calls right before it records an image ({@code LayerSource.retain}): a sweep that removed the pack (and its
     * records) after the job found the layer, and a sweep whose bucket delete went through but whose transaction did
     * not commit (records and mark still there, object gone).
     */
    @Test
    void aReuseThatRacedASweepPublishesTheLayerAgainBeforeItsImageIsRecorded() throws Exception {
        var source = a.server.services().leases().source();
        for (boolean committed : new boolean[] {true, false}) {
            byte[] content = random(90_000, committed ? 5 : 6);
            String image = a.importRootfs(a.tokenA, rootfs("swept/data.bin", content), null);
            String layer = layers(image).getFirst();
            ObjectKey key = pack(image);
            store.images().delete(image);
            patient.collect();
            awaitGrace();
            if (committed) {
                prompt.collect(); // the job found the layer by digest before this
                assertThat(objects.exists(key)).isFalse();
                assertThat(store.layers().packed(layer)).isEmpty();
            } else {
                objects.delete(key); // the sweep's delete reached the bucket; its commit did not
                assertThat(marked()).contains(key.markKey());
            }
            assertThat(a.server.services().layers().exists(layer)).as("the job's lease keeps it on node A").isTrue();

            source.retain(List.of(layer));

            var packed = store.layers().packed(layer);
            assertThat(packed).as("committed=%s", committed).isPresent();
            assertThat(packed.get().sha256()).as("the same layer packs to the same bytes").isEqualTo(key.sha256());
            assertThat(objects.exists(key)).as("committed=%s", committed).isTrue();
            assertThat(marked()).doesNotContain(key.markKey());
            assertThat(store.layers().size(layer)).as("recorded again, so the image's size counts it").isPresent();
            // Node B, which never had the layer, fetches it from the bucket: byte for byte.
            try (var lease = b.server.services().leases().acquire(List.of(layer))) {
                Path data = b.server.services().layers().diffDir(layer).resolve("swept/data.bin");
                assertThat(sha256(Files.readAllBytes(data))).isEqualTo(sha256(content));
            }
        }
    }

    /** What an import on a node without the layer does when it reuses it by digest: fetch it, then name it. */
    @Test
    void aNodeFetchingAPackThatIsDueRevivesItBeforeTheDownload() throws Exception {
        byte[] content = random(70_000, 8);
        String image = a.importRootfs(a.tokenA, rootfs("fetched/data.bin", content), null);
        String layer = layers(image).getFirst();
        ObjectKey key = pack(image);
        store.images().delete(image);
        patient.collect();
        awaitGrace();
        assertThat(b.server.services().layers().exists(layer)).isFalse();
        try (var lease = b.server.services().leases().acquire(List.of(layer))) {
            assertThat(marked()).doesNotContain(key.markKey());
            prompt.collect(); // the mark is gone: a whole grace before it can be deleted again
            assertThat(objects.exists(key)).isTrue();
            Path data = b.server.services().layers().diffDir(layer).resolve("fetched/data.bin");
            assertThat(sha256(Files.readAllBytes(data))).isEqualTo(sha256(content));
        }
    }

    @Test
    void uploadingAFileAgainWhileItsObjectIsDueRevivesIt() throws Exception {
        byte[] bytes = random(120_000, 4);
        String sha = sha256(bytes);
        String uuid = a.upload(a.tokenA, bytes).json().get("uuid").asText();
        store.files().delete(uuid); // as fsck does: the object is named by nothing now
        ObjectKey key = ObjectKey.file(sha);
        patient.collect();
        assertThat(marked()).contains(key.markKey());
        awaitGrace();

        String again = a.upload(a.tokenA, bytes).json().get("uuid").asText(); // the object exists: no PUT, a reuse
        assertThat(marked()).doesNotContain(key.markKey());
        awaitGrace();
        prompt.collect();
        assertThat(objects.exists(key)).isTrue();
        FileRecord record = b.server.services().files().byUuid(b.accountA, again).orElseThrow();
        try (InputStream in = b.server.services().files().open(record)) { // node B never had it: fetched from the bucket
            assertThat(sha256(in.readAllBytes())).isEqualTo(sha);
        }
    }

    @Test
    void leftoversOfUploadsThatDiedBeforeTheirRecordAreRemovedAfterTheGrace() throws Exception {
        List<ObjectKey> orphans = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            byte[] bytes = random(10_000 + i, 100 + i);
            Path f = dir.resolve("orphan-" + i);
            Files.write(f, bytes);
            ObjectKey k = i == 0 ? ObjectKey.layer(sha256(bytes)) : ObjectKey.file(sha256(bytes));
            objects.put(k, f); // as a node that died right after its PUT, before the record
            orphans.add(k);
        }
        var marking = patient.collect();
        for (ObjectKey k : orphans) assertThat(marked()).contains(k.markKey());
        assertThat(marking.listed()).isGreaterThanOrEqualTo(3);
        awaitGrace();
        var pass = prompt.collect();
        for (ObjectKey k : orphans) assertThat(objects.exists(k)).as("%s after %s", k, pass).isFalse();
        for (ObjectKey k : orphans) assertThat(marked()).doesNotContain(k.markKey());
    }

    @Test
    void aNodeWithAnIntervalCollectsOnItsOwn() throws Exception {
        Path f = dir.resolve("periodic");
        Files.write(f, random(5000, 77));
        ObjectKey orphan = ObjectKey.file(dev.contree.objects.Sha256.of(f));
        objects.put(orphan, f);
        UnaryOperator<ServerConfig> periodic = cfg -> node(Role.API).apply(cfg).withObjectStore(
                new ObjectStoreSettings(ObjectStoreUrl.parse(bucket), ObjectStoreSettings.DEFAULT_CACHE_BYTES).withGc(Duration.ofSeconds(1), GRACE));
        try (TestServer c = TestServer.inTempDir("gc-c", periodic)) {
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (objects.exists(orphan) && System.nanoTime() < deadline) Thread.sleep(200);
            assertThat(objects.exists(orphan)).as("a pass every second, grace %s, marks %s", GRACE, marked()).isFalse();
        }
    }

    @Test
    void twoCollectorsAtOnceDeleteEachObjectOnceAndNeitherFails() throws Exception {
        Set<ObjectKey> orphans = new java.util.HashSet<>();
        for (int i = 0; i < 40; i++) {
            byte[] bytes = random(1000 + i, 1000 + i);
            Path f = dir.resolve("twice-" + i);
            Files.write(f, bytes);
            ObjectKey k = ObjectKey.file(sha256(bytes));
            objects.put(k, f);
            orphans.add(k);
        }
        patient.collect();
        awaitGrace();
        int due = store.objects().due(GRACE.toNanos() / 1000, 10_000).size(); // these 40, and whatever else is due now
        assertThat(due).isGreaterThanOrEqualTo(40);
        // Node A's own collector (its pool of connections) and this test's (another pool): as two nodes would.
        BucketGarbageCollector onA = a.server.services().bucketGc();
        CountDownLatch go = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            List<Future<BucketGarbageCollector.Pass>> passes = new ArrayList<>();
            for (BucketGarbageCollector gc : List.of(onA, prompt)) {
                passes.add(pool.submit((Callable<BucketGarbageCollector.Pass>) () -> {
                    go.await();
                    return gc.collect();
                }));
            }
            go.countDown();
            int deleted = 0;
            List<BucketGarbageCollector.Pass> results = new ArrayList<>();
            for (var p : passes) {
                var r = p.get(120, java.util.concurrent.TimeUnit.SECONDS); // neither fails
                results.add(r);
                deleted += r.deleted();
            }
            List<ObjectKey> left = new ArrayList<>();
            for (ObjectKey k : orphans) if (objects.exists(k)) left.add(k);
            assertThat(left).as("%s", results).isEmpty();
            // Each once: a second deletion of the same object would count twice (S3 deletes an absent key without error).
            assertThat(deleted).as("%s", results).isEqualTo(due);
            assertThat(results.stream().filter(BucketGarbageCollector.Pass::ran).count()).as("%s", results).isGreaterThanOrEqualTo(1);
        } finally {
            pool.shutdownNow();
        }
    }


    // ------------------------------------------------------------------------------------------------ helpers

    static void awaitGrace() throws InterruptedException {
        Thread.sleep(GRACE.toMillis() + 300); // time has to pass; nothing here waits on another thread
    }

    static Set<String> marked() {
        Set<String> out = new TreeSet<>();
        for (ObjectRecords.Mark m : store.objects().marks()) out.add(m.key());
        return out;
    }

    static List<String> layers(String image) {
        return layers(image, a);
    }

    static List<String> layers(String image, TestServer node) {
        return node.server.services().images().get(node.accountA, image).orElseThrow().layers();
    }

    static dev.contree.store.LayerRecords.Packed packOf(String layer) {
        return store.layers().packed(layer).orElseThrow();
    }

    /** The pack of a one-layer image. */
    static ObjectKey pack(String image) {
        List<String> l = layers(image);
        assertThat(l).hasSize(1);
        return ObjectKey.layer(packOf(l.getFirst()).sha256());
    }

    static byte[] rootfs(String path, byte[] content) throws java.io.IOException {
        String d = path.substring(0, path.lastIndexOf('/'));
        return new OciLayoutBuilder.Tar().dir(d).file(path, content, 0644).toBytes();
    }

    static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    static String sha256(byte[] bytes) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    }
}
