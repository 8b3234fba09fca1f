package dev.contree.store;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.TestDirs;
import dev.contree.TestServer;
import dev.contree.auth.Principal;
import dev.contree.files.FileRecord;
import dev.contree.images.Image;
import dev.contree.images.ImageConfig;
import dev.contree.images.ImageService;
import dev.contree.operations.Operation;
import dev.contree.operations.OperationEvent;
import dev.contree.operations.OperationKind;
import dev.contree.operations.OperationService;
import dev.contree.operations.OperationStatus;
import dev.contree.server.ContreeServer;
import dev.contree.store.sqlite.SqliteStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.Statement;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A data dir written by an older server (schema V2, or V3) migrates in place on the first start: built here with the
 * old migration scripts and rows exactly as the old code wrote them (layer lists as JSON text), then served by the
 * real server, which reads every image back with its layers in order, its tag and config, and every operation, event,
 * file and token unchanged.
 */
class MigrationTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String[] OLD_SCRIPTS = {"V1__init.sql", "V2__layers.sql", "V3__digest_proofs.sql"};
    private static final String ACCOUNT = "0b9f3c1e-0000-4000-8000-00000000a11c";
    private static final String SECRET = "ct_an-old-secret-from-before-the-migration";
    private static final Instant T0 = Instant.parse("2026-11-01T10:00:00.123456Z");

    Path dir;

    @AfterEach
    void cleanup() throws Exception {
        TestDirs.removeWithMounts(dir);
    }

    /** What the old rows hold, for comparing with what the new code reads. */
    record Old(String base, String child, String bare, String operation, String fileUuid, String fileSha, ObjectNode metadata,
               List<ObjectNode> eventData) {}

    @ParameterizedTest(name = "from schema V{0}")
    @ValueSource(ints = {2, 3})
    void anOlderDataDirMigratesInPlaceOnTheFirstStart(int version) throws Exception {
        dir = Files.createTempDirectory("migration");
        Path data = dir.resolve("data");
        Files.createDirectories(data);
        Old old = writeOldDatabase(data, version);

        try (TestServer s = new TestServer(data, c -> c.withLayerPoolBytes(512L << 20))) {
            ContreeServer server = s.server;
            // The old account is reused by name: TestServer's token for alice acts in it.
            assertThat(s.accountA).isEqualTo(ACCOUNT);
            Principal p = server.services().tokens().verify(SECRET).orElseThrow();
            assertThat(p.accountId()).isEqualTo(ACCOUNT);

            ImageService images = server.services().images();
            Map<String, String> env = new LinkedHashMap<>(); // in the order the stored text has them
            env.put("PATH", "/usr/bin:/bin");
            env.put("LANG", "C.UTF-8");
            ImageConfig config = new ImageConfig(env, "/work", "1000:1000");
            assertThat(images.get(ACCOUNT, old.base()).orElseThrow()).isEqualTo(new Image(old.base(), ACCOUNT, "old/base:1",
                    T0, null, null, List.of("id2", "id1"), config, 300));
            assertThat(images.get(ACCOUNT, old.child()).orElseThrow()).isEqualTo(new Image(old.child(), ACCOUNT, null,
                    T0.plusSeconds(60), old.operation(), old.base(), List.of("id3", "id2", "id1"), config, 350));
            assertThat(images.get(ACCOUNT, old.bare()).orElseThrow()).isEqualTo(new Image(old.bare(), ACCOUNT, "empty",
                    T0.plusSeconds(120), null, null, List.of(), ImageConfig.EMPTY, 0));
            assertThat(images.byTag(ACCOUNT, "old/base:1").orElseThrow().uuid()).isEqualTo(old.base());
            assertThat(images.children(ACCOUNT, old.base())).extracting(Image::uuid).containsExactly(old.child());
            assertThat(images.list(ACCOUNT, new ImageService.Query(null, null, null, TimeRange.ANY), new Page(10, 0)))
                    .extracting(Image::uuid).containsExactly(old.bare(), old.child(), old.base());
            // Layer lists are rows now, and the layer index still knows what V2 recorded.
            assertThat(server.services().layerIndex().referenced()).containsExactlyInAnyOrder("id1", "id2", "id3");
            assertThat(server.services().layerIndex().byDigest("sha256:" + "ab".repeat(32))).contains("id1");
            assertThat(server.services().layerIndex().size("id3")).contains(50L);

            OperationService operations = server.services().operations();
            // The request and result are domain values now: compared here field by field, and on the wire below as text.
            Operation migrated = operations.get(ACCOUNT, old.operation()).orElseThrow();
            assertThat(migrated).usingRecursiveComparison().ignoringFields("request", "result").isEqualTo(new Operation(old.operation(),
                    ACCOUNT, OperationKind.INSTANCE, OperationStatus.SUCCESS, null, T0.plusSeconds(50), T0.plusSeconds(51),
                    T0.plusSeconds(60), old.base(), old.child(), null, 50L, 0.25, 2048L, null, null));
            assertThat(migrated.request()).isInstanceOf(dev.contree.instances.ExecutionRequest.class);
            assertThat(migrated.result()).isInstanceOf(dev.contree.instances.ExecutionResult.class);
            // A glance at a row of the older format is what a full read of it shows.
            assertThat(operations.glances(ACCOUNT, List.of(old.operation()))).singleElement().usingRecursiveComparison()
                    .isEqualTo(dev.contree.operations.OperationGlance.of(migrated));
            List<OperationEvent> events = operations.events(old.operation(), -1);
            assertThat(events).hasSize(3);
            for (int i = 0; i < 3; i++) {
                OperationEvent e = events.get(i);
                assertThat(List.of(e.operationUuid(), e.id(), e.ts(), e.spid(), e.payload().type())).isEqualTo(List.of(old.operation(),
                        (long) i, T0.plusSeconds(50 + i), i == 0 ? 0 : 1, List.of("init", "stdout", "completion").get(i)));
            }
            String sse = new String(s.get(SECRET, "/v1/operations/" + old.operation() + "/events").body(), java.nio.charset.StandardCharsets.UTF_8);
            List<com.fasterxml.jackson.databind.JsonNode> onWire = new java.util.ArrayList<>();
            for (String line : sse.split("\n")) if (line.startsWith("data: ")) onWire.add(JSON.readTree(line.substring(6)).get("data"));
            assertThat(onWire).containsExactlyElementsOf(old.eventData());

            assertThat(server.services().files().byUuid(ACCOUNT, old.fileUuid()).orElseThrow())
                    .isEqualTo(new FileRecord(old.fileUuid(), ACCOUNT, old.fileSha(), 11, T0, T0.plusSeconds(5)));

            // And on the wire, with the token issued before the migration.
            var listed = s.get(SECRET, "/v1/images?tag=old/base").json().get("images");
            assertThat(listed).hasSize(1);
            assertThat(listed.get(0).get("uuid").asText()).isEqualTo(old.base());
            var childOnWire = s.get(SECRET, "/v1/images?uuid=" + old.child()).json().get("images").get(0);
            assertThat(childOnWire.get("parent_uuid").asText()).isEqualTo(old.base());
            assertThat(childOnWire.get("operation_uuid").asText()).isEqualTo(old.operation());
            TestServer.Reply op = s.get(SECRET, "/v1/operations/" + old.operation());
            assertThat(op.status()).isEqualTo(200);
            assertThat(op.json().get("status").asText()).isEqualTo("SUCCESS");
            assertThat(op.json().get("result").get("image").asText()).isEqualTo(old.child());
            assertThat(op.json().get("metadata")).isEqualTo(old.metadata());
            assertThat(s.get(SECRET, "/v1/files/" + old.fileSha()).json().get("uuid").asText()).isEqualTo(old.fileUuid());

            // An import of the same layers and config again finds the migrated image (configs compare as stored text).
            assertThat(images.create(new ImageService.NewImage(ACCOUNT, null, null, List.of("id2", "id1"), config, 300,
                    "old/base:1", true)).uuid()).isEqualTo(old.base());
            // New images beside the migrated ones are rows too.
            Image fresh = images.create(new ImageService.NewImage(ACCOUNT, null, old.child(), List.of("id4", "id3", "id2", "id1"),
                    config, 400, "old/base:1"));
            assertThat(images.get(ACCOUNT, fresh.uuid()).orElseThrow().layers()).containsExactly("id4", "id3", "id2", "id1");
            assertThat(images.get(ACCOUNT, old.base()).orElseThrow().tag()).isNull(); // the tag moved
        }

        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + data.resolve("contree.db"));
             Statement st = c.createStatement();
             var rs = st.executeQuery("SELECT MAX(version) FROM schema_version")) {
            assertThat(rs.next()).isTrue();
            assertThat(rs.getInt(1)).isEqualTo(SqliteStore.schemaVersion());
        }
    }

    /** A database at schema {@code version}, with rows as the server of that version wrote them. */
    private static Old writeOldDatabase(Path data, int version) throws Exception {
        String base = "11111111-1111-4111-8111-111111111111", child = "22222222-2222-4222-8222-222222222222";
        String bare = "33333333-3333-4333-8333-333333333333", operation = "44444444-4444-4444-8444-444444444444";
        String fileUuid = "55555555-5555-4555-8555-555555555555";
        byte[] fileBytes = "hello world".getBytes(StandardCharsets.UTF_8);
        String fileSha = sha256(fileBytes);
        Path blob = data.resolve("blobs/sha256/" + fileSha.substring(0, 2) + "/" + fileSha);
        Files.createDirectories(blob.getParent());
        Files.write(blob, fileBytes);

        // What the old ImageService wrote with Jackson: layer lists and configs as JSON text.
        String config = "{\"env\":{\"PATH\":\"/usr/bin:/bin\",\"LANG\":\"C.UTF-8\"},\"workingDir\":\"/work\",\"user\":\"1000:1000\"}";
        // The old InstanceRequests.echo and InstanceResults wrote the whole wire shape.
        ObjectNode metadata = (ObjectNode) JSON.readTree("{\"command\":\"echo hello\",\"image\":\"" + base + "\",\"shell\":true,"
                + "\"args\":[],\"env\":{},\"preserve_env\":false,\"cwd\":\"\",\"hostname\":\"linuxkit\",\"disposable\":false,"
                + "\"stdin\":{\"value\":\"\",\"encoding\":\"ascii\",\"truncated\":false},\"timeout\":60,\"truncate_output_at\":1048576,"
                + "\"files\":{},\"uid\":0,\"gid\":0,\"resources_limits\":{\"max_layer_bytes\":12884901888},\"networking\":{\"enabled\":false},"
                + "\"result\":{\"state\":{\"exit_code\":0,\"pid\":1,\"signal\":-1,\"timed_out\":false,\"core_dump\":false,"
                + "\"stopped\":false,\"continued\":false},\"stdout\":{\"value\":\"hello\\n\",\"encoding\":\"ascii\",\"truncated\":false},"
                + "\"stderr\":{\"value\":\"\",\"encoding\":\"ascii\",\"truncated\":false},\"resources\":{\"elapsed_time\":0.05,"
                + "\"monotonic_time\":0.05,\"user_cpu_time\":0.001,\"system_cpu_time\":0.002,\"max_rss\":2048,\"page_faults\":90,"
                + "\"page_faults_io\":0,\"block_input\":0,\"block_output\":8,\"voluntary_switches\":3,\"involuntary_switches\":1,"
                + "\"signals\":0,\"swaps\":0,\"shared_memory\":0,\"unshared_memory\":0,\"cost\":0.0,\"layer_bytes\":50,"
                + "\"cgroup_memory_peak\":1048576,\"cgroup_cpu_time\":0.25}}}");
        List<ObjectNode> events = List.of(
                (ObjectNode) JSON.readTree("{\"started_at\":\"2026-11-01T10:00:50.000001Z\",\"runtime_path\":\"/.contree/init\","
                        + "\"verbose\":false,\"init_pid\":1}"),
                (ObjectNode) JSON.readTree("{\"value\":\"hello\\n\",\"encoding\":\"ascii\"}"),
                (ObjectNode) JSON.readTree("{\"status\":\"SUCCESS\",\"error\":null,\"duration_ms\":9000,\"result_image_uuid\":\""
                        + child + "\",\"image_size_bytes\":50}"));

        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + data.resolve("contree.db"))) {
            try (Statement s = c.createStatement()) {
                s.execute("PRAGMA journal_mode=WAL");
                s.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)");
                for (int v = 1; v <= version; v++) {
                    for (String statement : script(OLD_SCRIPTS[v - 1]).split(";\\s*\\n")) {
                        if (!statement.isBlank()) s.execute(statement);
                    }
                    s.execute("INSERT INTO schema_version (version) VALUES (" + v + ")");
                }
            }
            insert(c, "INSERT INTO accounts (id, name, created_at) VALUES (?,?,?)", ACCOUNT, "alice", micros(T0));
            insert(c, "INSERT INTO tokens (uuid, account_id, name, token_hash, created_at, expires_at) VALUES (?,?,?,?,?,?)",
                    "66666666-6666-4666-8666-666666666666", ACCOUNT, "old", sha256(SECRET.getBytes(StandardCharsets.US_ASCII)),
                    micros(T0), null);
            insert(c, "INSERT INTO files (uuid, account_id, sha256, size, created_at, updated_at) VALUES (?,?,?,?,?,?)",
                    fileUuid, ACCOUNT, fileSha, 11L, micros(T0), micros(T0.plusSeconds(5)));
            insert(c, "INSERT INTO images (uuid, account_id, created_at, operation_uuid, parent_uuid, layers, config, size) VALUES (?,?,?,?,?,?,?,?)",
                    base, ACCOUNT, micros(T0), null, null, "[\"id2\",\"id1\"]", config, 300L);
            insert(c, "UPDATE images SET tag = ? WHERE uuid = ?", "old/base:1", base);
            insert(c, "INSERT INTO images (uuid, account_id, created_at, operation_uuid, parent_uuid, layers, config, size) VALUES (?,?,?,?,?,?,?,?)",
                    child, ACCOUNT, micros(T0.plusSeconds(60)), operation, base, "[\"id3\",\"id2\",\"id1\"]", config, 350L);
            insert(c, "INSERT INTO images (uuid, account_id, tag, created_at, operation_uuid, parent_uuid, layers, config, size) VALUES (?,?,?,?,?,?,?,?,?)",
                    bare, ACCOUNT, "empty", micros(T0.plusSeconds(120)), null, null, "[]", "{\"env\":{},\"workingDir\":\"\",\"user\":\"\"}", 0L);
            insert(c, "INSERT INTO layers (id, digest, size, created_at) VALUES (?,?,?,?)", "id1", "sha256:" + "ab".repeat(32), 200L, micros(T0));
            insert(c, "INSERT INTO layers (id, digest, size, created_at) VALUES (?,?,?,?)", "id2", null, 100L, micros(T0));
            insert(c, "INSERT INTO layers (id, digest, size, created_at) VALUES (?,?,?,?)", "id3", null, 50L, micros(T0.plusSeconds(60)));
            if (version >= 3) {
                insert(c, "INSERT INTO digest_proofs (account_id, digest, created_at) VALUES (?,?,?)", ACCOUNT, "sha256:" + "ab".repeat(32), micros(T0));
            }
            insert(c, "INSERT INTO operations (uuid, account_id, kind, status, created_at, image_uuid, metadata) VALUES (?,?,?,?,?,?,?)",
                    operation, ACCOUNT, "instance", "PENDING", micros(T0.plusSeconds(50)), base, "{\"command\":\"echo hello\"}");
            insert(c, "UPDATE operations SET status = ?, started_at = ? WHERE uuid = ?", "EXECUTING", micros(T0.plusSeconds(51)), operation);
            insert(c, "UPDATE operations SET status = ?, finished_at = ?, error = ?, result_image_uuid = ?, result_tag = ?, image_size = ?,"
                            + " consumed_cpu = ?, consumed_memory = ?, metadata = ? WHERE uuid = ?",
                    "SUCCESS", micros(T0.plusSeconds(60)), null, child, null, 50L, 0.25, 2048L, metadata.toString(), operation);
            for (int i = 0; i < events.size(); i++) {
                insert(c, "INSERT INTO operation_events (operation_uuid, id, ts, spid, type, data) VALUES (?,?,?,?,?,?)",
                        operation, (long) i, micros(T0.plusSeconds(50 + i)), i == 0 ? 0L : 1L,
                        List.of("init", "stdout", "completion").get(i), events.get(i).toString());
            }
        }
        return new Old(base, child, bare, operation, fileUuid, fileSha, metadata, events);
    }

    private static void insert(Connection c, String sql, Object... params) throws Exception {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < params.length; i++) ps.setObject(i + 1, params[i]);
            ps.executeUpdate();
        }
    }

    private static long micros(Instant t) {
        return ChronoUnit.MICROS.between(Instant.EPOCH, t);
    }

    private static String script(String name) throws IOException {
        try (InputStream in = MigrationTest.class.getResourceAsStream("/db/" + name)) {
            assertThat(in).as(name).isNotNull();
            return new String(in.readAllBytes(), StandardCharsets.UTF_8).lines()
                    .filter(l -> !l.trim().startsWith("--")).reduce("", (a, b) -> a + b + "\n");
        }
    }

    private static String sha256(byte[] bytes) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    }
}
