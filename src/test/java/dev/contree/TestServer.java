package dev.contree;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.server.ContreeServer;
import dev.contree.server.ServerConfig;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.UnaryOperator;

/**
 * A real ConTree server on a loopback port with its own data dir, plus two tokens in two different
 * accounts, and a small HTTP client for tests.
 */
public final class TestServer implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    public final ContreeServer server;
    public final String tokenA;
    public final String tokenB;
    public final String accountA;
    public final Path dataDir;
    /** The temp dir a server from {@link #inTempDir} lives in (and removes on close); null when the caller owns the dir. */
    public final Path tempDir;
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .followRedirects(HttpClient.Redirect.NEVER).connectTimeout(Duration.ofSeconds(5)).build();

    public TestServer(Path dataDir) throws IOException {
        this(dataDir, c -> c);
    }

    public TestServer(Path dataDir, UnaryOperator<ServerConfig> customise) throws IOException {
        this(null, dataDir, customise);
    }

    private TestServer(Path tempDir, Path dataDir, UnaryOperator<ServerConfig> customise) throws IOException {
        this.tempDir = tempDir;
        this.dataDir = dataDir;
        server = ContreeServer.start(onTestDatabase(dataDir, customise.apply(ServerConfig.defaults(dataDir).withListen("127.0.0.1", 0))));
        var a = server.services().tokens().issue("alice", "test", null);
        tokenA = a.secret();
        accountA = a.token().accountId();
        tokenB = server.services().tokens().issue("bob", "test", null).secret();
    }

    /**
     * With {@code -Dcontree.test.database=postgresql}, a server that would keep its metadata in SQLite keeps it in a
     * new database of one PostgreSQL server the test JVM shares ({@link TestPostgres}, started on first use, stopped at
     * exit), or in the database its data dir already belongs to (a restart): the suites that go through TestServer
     * then run on PostgreSQL unchanged. (Tests that write SQLite rows by hand cannot.)
     */
    private static ServerConfig onTestDatabase(Path dataDir, ServerConfig config) throws IOException {
        if (config.database() != null || !"postgresql".equals(System.getProperty("contree.test.database"))) return config;
        try {
            TestPostgres pg = sharedPostgres();
            var recorded = dev.contree.server.MetadataStores.recorded(dataDir);
            String url = recorded.isPresent() ? pg.url(TestPostgres.name(recorded.get())) : pg.createDatabase();
            return config.withDatabase(dev.contree.store.postgres.PostgresUrl.parse(url, null));
        } catch (java.sql.SQLException e) {
            throw new IOException("cannot create a test database: " + e.getMessage(), e);
        }
    }

    private static TestPostgres shared;

    private static synchronized TestPostgres sharedPostgres() throws IOException {
        if (shared != null) return shared;
        try {
            shared = TestPostgres.start();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while starting PostgreSQL", e);
        }
        TestPostgres started = shared;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                started.close();
            } catch (Exception e) {
                System.err.println("could not stop the test PostgreSQL in " + started.dir + ": " + e);
            }
        }));
        return shared;
    }

    /**
     * A server whose data dir is {@code data} in a fresh temp dir named after {@code prefix}; closing it removes the temp
     * dir, mounts and all, so a test class needs no cleanup of its own ({@code @AutoClose static TestServer s}).
     */
    public static TestServer inTempDir(String prefix, UnaryOperator<ServerConfig> customise) throws IOException {
        Path dir = Files.createTempDirectory(prefix);
        try {
            return new TestServer(dir, dir.resolve("data"), customise);
        } catch (IOException | RuntimeException e) {
            remove(dir);
            throw e;
        }
    }

    public String url(String path) {
        return "http://127.0.0.1:" + server.port() + path;
    }

    /** A response with its body as bytes and helpers to read it as JSON or text. */
    public record Reply(int status, java.net.http.HttpHeaders headers, byte[] body) {
        public JsonNode json() {
            try {
                return JSON.readTree(body);
            } catch (IOException e) {
                throw new AssertionError("not JSON (status " + status + "): " + text(), e);
            }
        }

        public String text() {
            return new String(body, StandardCharsets.UTF_8);
        }

        public String header(String name) {
            return headers.firstValue(name).orElse(null);
        }
    }

    public Reply send(String token, String method, String path, HttpRequest.BodyPublisher body, String... headers) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url(path))).timeout(Duration.ofSeconds(60))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : body);
        if (token != null) b.header("Authorization", "Bearer " + token);
        for (int i = 0; i + 1 < headers.length; i += 2) b.header(headers[i], headers[i + 1]);
        try {
            HttpResponse<byte[]> r = http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
            return new Reply(r.statusCode(), r.headers(), r.body());
        } catch (IOException | InterruptedException e) {
            throw new AssertionError(method + " " + path + " failed: " + e, e);
        }
    }

    public Reply get(String token, String path) {
        return send(token, "GET", path, null);
    }

    public Reply head(String token, String path) {
        return send(token, "HEAD", path, null);
    }

    public Reply delete(String token, String path) {
        return send(token, "DELETE", path, null);
    }

    public Reply json(String token, String method, String path, String json) {
        return send(token, method, path, HttpRequest.BodyPublishers.ofString(json), "Content-Type", "application/json");
    }

    /** Upload with a known length (Content-Length). */
    public Reply upload(String token, byte[] bytes) {
        return send(token, "POST", "/v1/files", HttpRequest.BodyPublishers.ofByteArray(bytes), "Content-Type", "application/octet-stream");
    }

    /** Upload the way the official CLI does: Transfer-Encoding: chunked, no Content-Length. */
    public Reply uploadChunked(String token, byte[] bytes) {
        InputStream in = new ByteArrayInputStream(bytes);
        return send(token, "POST", "/v1/files", HttpRequest.BodyPublishers.ofInputStream(() -> in), "Content-Type", "application/octet-stream");
    }

    /** Polls an operation until it is terminal (or fails the test after {@code timeout}). */
    public JsonNode await(String token, String operationUuid, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            Reply r = get(token, "/v1/operations/" + operationUuid);
            if (r.status() != 200) throw new AssertionError("GET operation: " + r.status() + " " + r.text());
            JsonNode op = r.json();
            String status = op.get("status").asText();
            if (status.equals("SUCCESS") || status.equals("FAILED") || status.equals("CANCELLED")) return op;
            if (System.nanoTime() > deadline) throw new AssertionError("operation still " + status + " after " + timeout + ": " + op);
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }
    }

    /** Starts an operation (spawn or import) and returns its uuid, asserting 202. */
    public String start(String token, String path, String json) {
        Reply r = json(token, "POST", path, json);
        if (r.status() != 202) throw new AssertionError(path + " -> " + r.status() + " " + r.text());
        return r.json().get("uuid").asText();
    }

    /** Uploads a rootfs tarball and imports it; returns the image uuid. */
    public String importRootfs(String token, byte[] tarball, String tag) {
        String file = upload(token, tarball).json().get("uuid").asText();
        String op = start(token, "/v1/images/import", "{\"registry\":{\"url\":\"rootfs+file://" + file + "\"}"
                + (tag == null ? "" : ",\"tag\":\"" + tag + "\"") + "}");
        JsonNode done = await(token, op, Duration.ofSeconds(60));
        if (!done.get("status").asText().equals("SUCCESS")) throw new AssertionError("import failed: " + done);
        return done.get("result").get("image").asText();
    }

    /** Imports {@link TestImages#busyboxRootfs} for account A; returns the image uuid. */
    public String importBusybox(String tag) throws IOException, InterruptedException {
        return importRootfs(tokenA, TestImages.busyboxRootfs(), tag);
    }

    @Override
    public void close() {
        server.close();
        remove(tempDir);
    }

    private static void remove(Path dir) {
        try {
            TestDirs.removeWithMounts(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while removing " + dir, e);
        }
    }
}
