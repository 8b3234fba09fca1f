package dev.contree.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.TestDirs;
import dev.contree.TestPostgres;
import dev.contree.TestServer;
import dev.contree.store.StoreException;
import dev.contree.store.postgres.PostgresUrl;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.PreparedStatement;
import java.time.Duration;
import java.util.Base64;
import java.util.function.UnaryOperator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The whole server with its metadata in a real PostgreSQL 15 ({@link TestPostgres}): an import, an execution on runc
 * and inspect of its result over HTTP, then a restart that finds all of it again. The data dir holds no SQLite file,
 * and refuses to be served from another store.
 */
class PostgresServerTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    static TestPostgres pg;
    static Path dir;

    @BeforeAll
    static void start() throws Exception {
        pg = TestPostgres.start();
        dir = Files.createTempDirectory("pg-server");
    }

    @AfterAll
    static void stop() throws Exception {
        try {
            TestDirs.removeWithMounts(dir);
        } finally {
            if (pg != null) pg.close();
        }
    }

    static UnaryOperator<ServerConfig> on(String url) {
        return c -> c.withRuntime("runc", "ptrace").withLayerPoolBytes(1L << 30).withDatabase(PostgresUrl.parse(url, null));
    }

    @Test
    void anImportAnExecutionAndInspectRunOnPostgres() throws Exception {
        String url = pg.createDatabase();
        Path data = dir.resolve("data");
        String base, child, op, secret;
        try (TestServer s = new TestServer(data, on(url))) {
            secret = s.tokenA;
            base = s.importBusybox("busybox:pg");
            op = s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + base + "\",\"command\":"
                    + JSON.writeValueAsString("echo kept > /kept; echo out; echo err >&2") + ",\"shell\":true}");
            JsonNode done = s.await(s.tokenA, op, Duration.ofSeconds(120));
            assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
            assertThat(output(done, "stdout")).isEqualTo("out\n");
            assertThat(output(done, "stderr")).isEqualTo("err\n");
            child = done.get("result").get("image").asText();

            assertThat(s.get(s.tokenA, "/v1/inspect/" + child + "/download?path=/kept").text()).isEqualTo("kept\n");
            assertThat(s.get(s.tokenA, "/v1/inspect/" + child + "/list?path=/bin").json().get("files").size()).isGreaterThan(10);
            assertThat(s.get(s.tokenA, "/v1/inspect/" + base + "/diff/" + child).json().get("added").toString()).contains("/kept");
            assertThat(s.get(s.tokenA, "/v1/images?tag=busybox:pg").json().get("images").get(0).get("uuid").asText()).isEqualTo(base);
            String events = s.get(s.tokenA, "/v1/operations/" + op + "/events").text();
            assertThat(events).contains("\"type\":\"stdout\"").contains("\"type\":\"completion\"");
            // Another account sees none of it.
            assertThat(s.get(s.tokenB, "/v1/operations/" + op).status()).isEqualTo(404);
            assertThat(s.get(s.tokenB, "/v1/inspect/" + child + "/download?path=/kept").status()).isEqualTo(404);
        }

        // The rows are PostgreSQL's: no SQLite file beside the layers, and the data dir names its database.
        assertThat(data.resolve("contree.db")).doesNotExist();
        assertThat(Files.readString(data.resolve(MetadataStores.MARKER)).strip()).isEqualTo("postgresql://127.0.0.1:" + pg.port + "/"
                + TestPostgres.name(url));
        try (Connection c = pg.connect(TestPostgres.name(url)); PreparedStatement st = c.prepareStatement(
                "SELECT (SELECT COUNT(*) FROM operations), (SELECT COUNT(*) FROM images),"
                        + " (SELECT COUNT(*) FROM operation_events WHERE operation_uuid = ?)")) {
            st.setString(1, op);
            ResultSet rs = st.executeQuery();
            assertThat(rs.next()).isTrue();
            assertThat(rs.getLong(1)).isEqualTo(2); // the import and the execution
            assertThat(rs.getLong(2)).isEqualTo(2);
            assertThat(rs.getLong(3)).isGreaterThanOrEqualTo(3);
        }

        // A restart finds everything again, with the token issued before it.
        try (TestServer s = new TestServer(data, on(url))) {
            JsonNode again = s.get(secret, "/v1/operations/" + op).json();
            assertThat(again.get("status").asText()).isEqualTo("SUCCESS");
            assertThat(again.get("result").get("image").asText()).isEqualTo(child);
            assertThat(s.get(secret, "/v1/inspect/" + child + "/download?path=/kept").text()).isEqualTo("kept\n");
            String next = s.start(secret, "/v1/instances", "{\"image\":\"" + child + "\",\"command\":\"cat /kept\",\"shell\":true}");
            JsonNode done = s.await(secret, next, Duration.ofSeconds(120));
            assertThat(output(done, "stdout")).isEqualTo("kept\n");

            // While it serves, a second server on the same database serves too (the queue is in the database), and
            // its start fails nothing of the first's: a running execution there goes on to SUCCESS.
            String running = s.start(secret, "/v1/instances", "{\"image\":\"" + child + "\",\"command\":\"sleep 2; cat /kept\",\"shell\":true}");
            Path other = dir.resolve("other");
            try (TestServer second = new TestServer(other, on(url))) {
                assertThat(second.get(secret, "/v1/operations/" + op).json().get("status").asText()).isEqualTo("SUCCESS");
            }
            assertThat(output(s.await(secret, running, Duration.ofSeconds(120)), "stdout")).isEqualTo("kept\n");
        }

        // Served from PostgreSQL, the data dir refuses SQLite (its layers are indexed in the database only).
        assertThatThrownBy(() -> new TestServer(data, c -> c.withRuntime("runc", "ptrace")).close())
                .isInstanceOf(StoreException.class).hasMessageContaining("belongs to the metadata store postgresql://");
        assertThat(data.resolve("contree.db")).doesNotExist();
    }

    @Test
    void aDataDirServedFromSqliteRefusesADatabase() throws Exception {
        Path data = dir.resolve("sqlite-data");
        try (TestServer s = new TestServer(data, c -> c.withRuntime("runc", "ptrace"))) {
            assertThat(s.get(s.tokenA, "/v1/whoami").status()).isEqualTo(200);
        }
        String url = pg.createDatabase();
        assertThatThrownBy(() -> new TestServer(data, on(url)).close()).isInstanceOf(StoreException.class)
                .hasMessageContaining("keeps its metadata in contree.db (SQLite)");
        assertThat(data.resolve(MetadataStores.MARKER)).doesNotExist();
    }

    /** {@code contree token create/list --database} act on the database (no data dir involved), and serve sees the token. */
    @Test
    void tokenCommandsUseTheDatabase() throws Exception {
        String url = pg.createDatabase();
        Path data = dir.resolve("token-data");
        String secret = cli("token", "create", "--database", url, "--account", "carol", "--name", "ops", "--data", data.toString()).strip();
        assertThat(secret).startsWith("ct_");
        assertThat(data).doesNotExist();
        assertThat(cli("token", "list", "--database", url)).contains("carol").contains("ops");
        try (TestServer s = new TestServer(data, on(url))) {
            assertThat(s.get(secret, "/v1/whoami").status()).isEqualTo(200);
        }
        // The data dir now belongs to the database: a token command without it is told so.
        StringWriter err = new StringWriter();
        int code = new CommandLine(new dev.contree.Main()).setErr(new PrintWriter(err))
                .setExecutionExceptionHandler((e, cmd, parsed) -> {
                    err.write(e.getMessage());
                    return 1;
                }).execute("token", "list", "--data", data.toString());
        assertThat(code).isEqualTo(1);
        assertThat(err.toString()).contains("is in postgresql://127.0.0.1:" + pg.port);
    }

    /** Runs the command line in this JVM; returns what it printed. */
    private static String cli(String... args) {
        java.io.PrintStream old = System.out;
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        System.setOut(new java.io.PrintStream(out, true, StandardCharsets.UTF_8));
        try {
            assertThat(new CommandLine(new dev.contree.Main()).execute(args)).as(String.join(" ", args)).isZero();
        } finally {
            System.setOut(old);
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    private static String output(JsonNode op, String stream) {
        JsonNode st = op.get("metadata").get("result").get(stream);
        String v = st.get("value").asText();
        return st.get("encoding").asText().equals("base64") ? new String(Base64.getDecoder().decode(v), StandardCharsets.UTF_8) : v;
    }
}
