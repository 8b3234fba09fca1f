package dev.contree.objects;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.TestPostgres;
import dev.contree.TestS3;
import dev.contree.TestServer;
import dev.contree.images.LayerLeases;
import dev.contree.operations.ClusterSettings;
import dev.contree.operations.ClusterSettings.Role;
import dev.contree.operations.OperationKind;
import dev.contree.registry.Compression;
import dev.contree.registry.OciLayoutBuilder;
import dev.contree.registry.TestRegistry;
import dev.contree.server.ServerConfig;
import dev.contree.store.LayerRecords;
import dev.contree.store.postgres.PostgresUrl;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.UnaryOperator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Layers and files shared through an object store, end to end: three servers (separate data dirs and btrfs pools,
 * runc) on one PostgreSQL database (TestPostgres) and one bucket of a real S3-protocol server (S3Proxy on loopback).
 * Work goes through the shared queue, so the nodes' roles say where it runs: A is a worker that claims only imports,
 * B one that claims only executions, C an api node (it inspects, fetching into its small cache, and runs nothing).
 * Whatever node a request is sent to, an import runs on A and an execution on B.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ClusterObjectStoreTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Node C's cache bound: room for two 6 MiB layers, not three. */
    private static final long SMALL_CACHE = 16L << 20;
    @TempDir static Path dir;
    static TestPostgres pg;
    static TestS3 s3;
    static TestRegistry reg;
    static String bucket;
    static TestServer a, b, c;

    @BeforeAll
    static void start() throws Exception {
        pg = TestPostgres.start();
        s3 = TestS3.start();
        reg = TestRegistry.start(dir);
        String db = pg.createDatabase();
        bucket = s3.newBucket();
        database = db;
        a = TestServer.inTempDir("cluster-a", node(db, ObjectStoreSettings.DEFAULT_CACHE_BYTES, Role.WORKER, OperationKind.IMAGE_IMPORT));
        b = TestServer.inTempDir("cluster-b", node(db, ObjectStoreSettings.DEFAULT_CACHE_BYTES, Role.WORKER, OperationKind.INSTANCE));
        c = TestServer.inTempDir("cluster-c", node(db, SMALL_CACHE, Role.API, OperationKind.INSTANCE));
    }

    static String database;

    static UnaryOperator<ServerConfig> node(String db, long cacheBytes, Role role, OperationKind claims) {
        return cfg -> cfg.withRuntime("runc", "ptrace").withLayerPoolBytes(2L << 30).withDatabase(PostgresUrl.parse(db, null))
                .withObjectStore(new ObjectStoreSettings(ObjectStoreUrl.parse(bucket), cacheBytes))
                .withCluster(new ClusterSettings(role, Duration.ofSeconds(5), null).withKinds(Set.of(claims)));
    }

    @AfterAll
    static void stop() throws Exception {
        for (TestServer s : new TestServer[] {c, b, a}) if (s != null) s.close();
        if (reg != null) reg.close();
        if (s3 != null) s3.close();
        if (pg != null) pg.close();
    }

    @Test
    void anImageImportedOnOneNodeRunsOnAnotherAndItsResultReadsBackOnTheFirst() throws Exception {
        // Two layers with overlay semantics across them: a whiteout and an opaque directory in the top one.
        var image = new OciLayoutBuilder()
                .layer(Compression.GZIP, OciLayoutBuilder.busyboxRootfs().dir("srv").file("srv/base.txt", "base\n")
                        .file("srv/gone.txt", "gone\n").dir("srv/opq").file("srv/opq/hidden.txt", "hidden\n"))
                .layer(Compression.ZSTD, new OciLayoutBuilder.Tar().dir("srv").file("srv/top.txt", "top\n").whiteout("srv/gone.txt")
                        .opaque("srv/opq").file("srv/opq/shown.txt", "shown\n"));
        Path layout = dir.resolve("layout-two");
        image.writeLayout(layout, "t");
        reg.push(layout, "t", "two", "v1", false);
        JsonNode imported = a.await(a.tokenA, a.start(a.tokenA, "/v1/images/import",
                "{\"registry\":{\"url\":\"docker://" + reg.hostPort() + "/two:v1\"}}"), Duration.ofSeconds(120));
        assertThat(imported.get("status").asText()).as(imported.toString()).isEqualTo("SUCCESS");
        String parent = imported.get("result").get("image").asText();
        List<String> parentLayers = a.server.services().images().get(a.accountA, parent).orElseThrow().layers();
        for (String id : parentLayers) {
            assertThat(a.server.services().layerIndex().packed(id)).as("layer %s uploaded before the image was recorded", id).isPresent();
            assertThat(b.server.services().layers().exists(id)).isFalse();
        }

        // Node B runs on it: it fetches the chain, reads the parent's files as the layers stack, and commits a child.
        JsonNode run = sh(b, parent, "cat /srv/base.txt /srv/top.txt; ls /srv/opq; test -e /srv/gone.txt || echo gone-ok;"
                + " echo child > /srv/child.txt; head -c 524288 /dev/urandom > /srv/blob; rm /srv/top.txt; sha256sum /srv/blob");
        assertThat(run.get("status").asText()).as(run.toString()).isEqualTo("SUCCESS");
        String[] out = stdout(run).split("\n");
        assertThat(out).as(run.toString()).hasSize(5);
        assertThat(List.of(out).subList(0, 4)).containsExactly("base", "top", "shown.txt", "gone-ok");
        String blobSha = out[4].split(" ")[0];
        String child = run.get("result").get("image").asText();
        for (String id : parentLayers) assertThat(b.server.services().layers().exists(id)).isTrue();
        String childTop = b.server.services().images().get(b.accountA, child).orElseThrow().layers().getFirst();
        assertThat(b.server.services().layerIndex().packed(childTop)).isPresent();
        assertThat(a.server.services().layers().exists(childTop)).isFalse();

        // Node A inspects the child, fetching its new layer: list, download byte for byte, archive, diff.
        assertThat(list(a, child, "/srv")).containsExactly("base.txt", "blob", "child.txt", "opq");
        assertThat(list(a, child, "/srv/opq")).containsExactly("shown.txt");
        var blob = a.get(a.tokenA, "/v1/inspect/" + child + "/download?path=/srv/blob");
        assertThat(blob.status()).isEqualTo(200);
        assertThat(blob.body()).hasSize(524288);
        assertThat(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(blob.body()))).isEqualTo(blobSha);
        assertThat(a.get(a.tokenA, "/v1/inspect/" + child + "/download?path=/srv/child.txt").text()).isEqualTo("child\n");
        assertThat(a.server.services().layers().exists(childTop)).isTrue();
        var archive = a.get(a.tokenA, "/v1/inspect/" + child + "/archive?path=/srv");
        assertThat(archive.status()).isEqualTo(200);
        Set<String> members = new TreeSet<>();
        try (TarArchiveInputStream tar = new TarArchiveInputStream(new ByteArrayInputStream(archive.body()))) {
            for (TarArchiveEntry e; (e = tar.getNextEntry()) != null; ) {
                members.add(e.getName());
                if (e.getName().equals("srv/child.txt")) assertThat(new String(tar.readAllBytes(), StandardCharsets.UTF_8)).isEqualTo("child\n");
            }
        }
        assertThat(members).contains("srv/child.txt", "srv/blob", "srv/opq/shown.txt").doesNotContain("srv/top.txt", "srv/opq/hidden.txt");
        JsonNode grep = a.get(a.tokenA, "/v1/inspect/" + child + "/grep?pattern=child%7Cshown%7Cbase&path=/srv").json();
        Set<String> matched = new TreeSet<>();
        grep.get("matches").forEach(m -> matched.add(m.get("path").asText()));
        assertThat(matched).containsExactly("/srv/base.txt", "/srv/child.txt", "/srv/opq/shown.txt");
        JsonNode diff = a.get(a.tokenA, "/v1/inspect/" + parent + "/diff/" + child).json();
        assertThat(diff.get("added").toString()).contains("/srv/child.txt", "/srv/blob");
        assertThat(diff.get("deleted").toString()).contains("/srv/top.txt");
    }

    /** Last: it stops import node A, so that a new import node D, with an empty pool, runs the second import. */
    @Test
    @Order(Integer.MAX_VALUE)
    void importingAnImageAgainOnAnotherNodeFetchesItsLayersInsteadOfUnpackingThemAgain() throws Exception {
        var image = new OciLayoutBuilder()
                .layer(Compression.GZIP, new OciLayoutBuilder.Tar().dir("one").file("one/a", "a\n"))
                .layer(Compression.GZIP, new OciLayoutBuilder.Tar().dir("two").file("two/b", "b\n"))
                .layer(Compression.GZIP, new OciLayoutBuilder.Tar().dir("three").file("three/c", "c\n"));
        Path layout = dir.resolve("layout-three");
        image.writeLayout(layout, "t");
        reg.push(layout, "t", "three", "v1", false);
        String body = "{\"registry\":{\"url\":\"docker://" + reg.hostPort() + "/three:v1\"}}";
        JsonNode onA = a.await(a.tokenA, a.start(a.tokenA, "/v1/images/import", body), Duration.ofSeconds(120));
        assertThat(onA.get("status").asText()).as(onA.toString()).isEqualTo("SUCCESS");
        List<String> layers = a.server.services().images().get(a.accountA, onA.get("result").get("image").asText()).orElseThrow().layers();
        a.close();
        a = null;
        try (TestServer d = TestServer.inTempDir("cluster-d", node(database, ObjectStoreSettings.DEFAULT_CACHE_BYTES, Role.WORKER,
                OperationKind.IMAGE_IMPORT))) {
            for (String id : layers) assertThat(d.server.services().layers().exists(id)).isFalse();
            JsonNode onD = d.await(d.tokenA, d.start(d.tokenA, "/v1/images/import", body), Duration.ofSeconds(120));
            assertThat(onD.get("status").asText()).as(onD.toString()).isEqualTo("SUCCESS");
            // The same layers (found by digest, fetched from the bucket), so the same image.
            assertThat(onD.get("result").get("image").asText()).isEqualTo(onA.get("result").get("image").asText());
            assertThat(d.server.services().images().get(d.accountA, onD.get("result").get("image").asText()).orElseThrow().layers())
                    .isEqualTo(layers);
            for (String id : layers) assertThat(d.server.services().layers().exists(id)).as("fetched by D").isTrue();
            assertThat(list(d, onD.get("result").get("image").asText(), "/")).contains("one", "two", "three");
        }
    }

    @Test
    void aFileUploadedThroughOneNodeIsInjectedOnAnotherAndStaysItsAccounts() throws Exception {
        String base = a.importBusybox(null);
        byte[] bytes = new byte[300_000];
        new Random(3).nextBytes(bytes);
        String file = a.upload(a.tokenA, bytes).json().get("uuid").asText();
        String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        assertThat(b.server.services().files().byUuid(b.accountA, file)).isPresent();
        ObjectNode body = JSON.createObjectNode().put("image", base).put("command", "sha256sum /in/data.bin").put("shell", true);
        body.putObject("files").putObject("/in/data.bin").put("uuid", file);
        JsonNode run = b.await(b.tokenA, b.start(b.tokenA, "/v1/instances", body.toString()), Duration.ofSeconds(120));
        assertThat(run.get("status").asText()).as(run.toString()).isEqualTo("SUCCESS");
        assertThat(stdout(run)).startsWith(sha + " ");
        // Content addressing shares bytes, never access: another account cannot name the file on any node.
        ObjectNode other = body.deepCopy();
        other.put("image", b.importRootfs(b.tokenB, dev.contree.TestImages.busyboxRootfs(), null)); // an image of its own
        var refused = b.json(b.tokenB, "POST", "/v1/instances", other.toString());
        assertThat(refused.status()).as(refused.text()).isEqualTo(404);
        assertThat(refused.text()).contains(file);
        assertThat(b.get(b.tokenB, "/v1/files/" + sha).status()).isEqualTo(404);
        assertThat(c.get(c.tokenA, "/v1/files/" + sha).status()).isEqualTo(200); // the owner, on a node that never had it
    }

    @Test
    void aCorruptObjectIsRefusedWithAClearMessageAndNothingUnpacked() throws Exception {
        byte[] content = "only in this layer\n".getBytes(StandardCharsets.UTF_8);
        String image = a.importRootfs(a.tokenA, new OciLayoutBuilder.Tar().dir("data").file("data/x", new String(content, StandardCharsets.UTF_8)).toBytes(), null);
        String layer = a.server.services().images().get(a.accountA, image).orElseThrow().layers().getFirst();
        LayerRecords.Packed pack = a.server.services().layerIndex().packed(layer).orElseThrow();
        int corrupted = 0;
        try (var files = s3.objectFiles(bucket)) {
            for (Path p : files.filter(p -> p.getFileName().toString().equals(pack.sha256())).toList()) {
                byte[] bytes = Files.readAllBytes(p);
                bytes[bytes.length - 8] ^= 0x40;
                Files.write(p, bytes);
                corrupted++;
            }
        }
        assertThat(corrupted).isEqualTo(1);
        JsonNode run = sh(b, image, "cat /data/x");
        assertThat(run.get("status").asText()).as(run.toString()).isEqualTo("FAILED");
        assertThat(run.get("error").asText()).contains("layer " + layer, "corrupt", "sha256:" + pack.sha256());
        assertThat(b.server.services().layers().exists(layer)).isFalse();
        var inspect = b.get(b.tokenA, "/v1/inspect/" + image + "/list?path=/data");
        assertThat(inspect.status()).isEqualTo(503);
        assertThat(inspect.text()).contains("corrupt", "layer " + layer).doesNotContain(b.dataDir.toString());
        try (var names = Files.list(b.server.services().layers().root().resolve("layers"))) {
            assertThat(names.map(p -> p.getFileName().toString())).noneMatch(n -> n.contains(layer));
        }
    }

    @Test
    void aCorruptFileObjectIsRefusedWhereItIsFetched() throws Exception {
        String base = a.importBusybox(null);
        byte[] bytes = "the file as uploaded\n".getBytes(StandardCharsets.UTF_8);
        String file = a.upload(a.tokenA, bytes).json().get("uuid").asText();
        String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        try (var files = s3.objectFiles(bucket)) {
            for (Path p : files.filter(p -> p.getFileName().toString().equals(sha)).toList())
                Files.writeString(p, "the file as replaced\n");
        }
        ObjectNode body = JSON.createObjectNode().put("image", base).put("command", "cat /in/f").put("shell", true);
        body.putObject("files").putObject("/in/f").put("uuid", file);
        JsonNode run = b.await(b.tokenA, b.start(b.tokenA, "/v1/instances", body.toString()), Duration.ofSeconds(120));
        assertThat(run.get("status").asText()).as(run.toString()).isEqualTo("FAILED");
        assertThat(run.get("error").asText()).contains("file " + file, "sha256:" + sha, "refused");
        var record = b.server.services().files().byUuid(b.accountA, file).orElseThrow();
        // Nothing was stored under the name: the next use fetches (and refuses) again.
        assertThatThrownBy(() -> b.server.services().files().localPath(record)).hasMessageContaining("refused");
    }

    @Test
    void theCacheEvictsTheLeastRecentlyUsedLayerButNeverOneInUse() throws Exception {
        List<String> images = new ArrayList<>(), layers = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            byte[] big = new byte[6 << 20];
            new Random(100 + i).nextBytes(big);
            String img = a.importRootfs(a.tokenA, new OciLayoutBuilder.Tar().file("big" + i, big, 0644).toBytes(), null);
            images.add(img);
            layers.add(a.server.services().images().get(a.accountA, img).orElseThrow().layers().getFirst());
        }
        var services = c.server.services();
        LayerCache cache = (LayerCache) services.leases().source();
        try (LayerLeases.Lease inUse = services.leases().acquire(List.of(layers.get(0)))) { // fetched, and in use
            assertThat(list(c, images.get(1), "/")).contains("big1");
            assertThat(list(c, images.get(2), "/")).contains("big2"); // past the bound: the oldest unused goes
            assertThat(services.layers().exists(layers.get(0))).as("in use").isTrue();
            assertThat(services.layers().exists(layers.get(1))).as("least recently used").isFalse();
            assertThat(services.layers().exists(layers.get(2))).isTrue();
            assertThat(cache.cachedBytes()).isLessThanOrEqualTo(SMALL_CACHE);
        }
        assertThat(list(c, images.get(1), "/")).contains("big1"); // fetched again; now layer 0 is the oldest unused
        assertThat(services.layers().exists(layers.get(0))).isFalse();
        assertThat(services.layers().exists(layers.get(1))).isTrue();
        assertThat(services.layers().exists(layers.get(2))).isTrue();
        // What was evicted from a cache is still everyone's: node A never lost it, and C fetches it again.
        assertThat(a.server.services().layers().exists(layers.get(0))).isTrue();
        assertThat(c.get(c.tokenA, "/v1/inspect/" + images.get(0) + "/download?path=/big0").body()).hasSize(6 << 20);
    }

    // ------------------------------------------------------------------------------------------------ helpers

    static JsonNode sh(TestServer node, String image, String script) {
        String body = JSON.createObjectNode().put("image", image).put("command", script).put("shell", true).toString();
        return node.await(node.tokenA, node.start(node.tokenA, "/v1/instances", body), Duration.ofSeconds(120));
    }

    static String stdout(JsonNode op) {
        JsonNode st = op.get("metadata").get("result").get("stdout");
        String v = st.get("value").asText();
        return st.get("encoding").asText().equals("base64") ? new String(Base64.getDecoder().decode(v), StandardCharsets.UTF_8) : v;
    }

    static Set<String> list(TestServer node, String image, String path) {
        var r = node.get(node.tokenA, "/v1/inspect/" + image + "/list?path=" + java.net.URLEncoder.encode(path, StandardCharsets.UTF_8));
        assertThat(r.status()).as(r.text()).isEqualTo(200);
        Set<String> names = new TreeSet<>();
        r.json().get("files").forEach(f -> names.add(f.get("path").asText()));
        return names;
    }
}
