package dev.contree.fuzz;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Request bodies and queued stdin are bounded: a declared body past its limit is a 413 at once (it once was a 400
 * after the 30 s idle timeout), and stdin of queued executions waits in files under the data dir, bounded in total.
 */
class RequestLimitsTest {
    static final long MAX_JSON = 8L << 20, MAX_UPLOAD = 32L << 20;
    @AutoClose static TestServer s;
    static String image;
    static RawHttp raw;

    @BeforeAll
    static void start() throws Exception {
        s = TestServer.inTempDir("limits", c -> c.withRuntime("runc", "ptrace").withLimits(MAX_UPLOAD, MAX_JSON, 1));
        image = s.importBusybox(null);
        raw = new RawHttp(java.net.URI.create(s.url("/")).getPort());
    }

    /** A Content-Length past the limit, with (almost) no body behind it: 413 in well under the idle timeout. */
    @Test
    void oversizedDeclaredBodiesAre413AtOnce() {
        String[][] routes = {{"POST", "/v1/instances"}, {"POST", "/v1/images/import"}, {"POST", "/v1/files"},
                {"POST", "/v1/files/"}, {"PATCH", "/v1/images/00000000-0000-0000-0000-000000000000/tag"}};
        for (String[] r : routes) {
            long declared = r[1].startsWith("/v1/files") ? MAX_UPLOAD + 1 : MAX_JSON + 1;
            for (long len : new long[] {declared, 1L << 40}) {
                long t0 = System.nanoTime();
                byte[] head = RawHttp.ascii(r[0] + " " + r[1] + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
                        + s.tokenA + "\r\nContent-Type: application/json\r\nContent-Length: " + len + "\r\n\r\n{");
                RawHttp.Response resp = raw.exchange(head, new byte[0], false, false, r[0] + " " + r[1] + " len=" + len);
                Duration took = Duration.ofNanos(System.nanoTime() - t0);
                assertThat(resp.status()).as(resp.toString()).isEqualTo(413);
                assertThat(resp.json().get("status").asInt()).isEqualTo(413);
                assertThat(resp.json().get("error").asText()).contains("exceeds the limit");
                assertThat(took).as(resp.toString()).isLessThan(Duration.ofSeconds(3));
            }
        }
        // Within the limits the same routes still work.
        assertThat(s.upload(s.tokenA, new byte[(int) (MAX_JSON + 1)]).status()).isEqualTo(201);
    }

    /**
     * JSON bodies are parsed whole, so the bodies held at once share one budget (4 × the JSON limit = 32 MiB here):
     * four clients that declared 8 MiB and dribble their bodies hold it all; a fifth large body is refused with 429
     * after a short wait, small requests still pass, and a reservation ends when its client goes away.
     */
    @Test
    void largeBodiesInFlightShareOneBudget() throws Exception {
        var api = s.server.api();
        List<java.net.Socket> slow = new ArrayList<>();
        try {
            for (int i = 0; i < 4; i++) {
                var sock = new java.net.Socket("127.0.0.1", java.net.URI.create(s.url("/")).getPort());
                sock.getOutputStream().write(RawHttp.ascii("POST /v1/instances HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                        + s.tokenA + "\r\nContent-Type: application/json\r\nContent-Length: " + MAX_JSON + "\r\n\r\n{\"image\":"));
                sock.getOutputStream().flush();
                slow.add(sock);
            }
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (api.bodyBytesReserved() < 4 * MAX_JSON) {
                assertThat(System.nanoTime()).as("four bodies reserved").isLessThan(deadline);
                Thread.sleep(20);
            }
            byte[] head = RawHttp.ascii("POST /v1/instances HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
                    + s.tokenA + "\r\nContent-Type: application/json\r\nContent-Length: " + (MAX_JSON / 2) + "\r\n\r\n");
            RawHttp.Response refused = raw.exchange(head, new byte[0], false, false, "fifth large body");
            assertThat(refused.status()).as(refused.toString()).isEqualTo(429);
            assertThat(refused.json().get("error").asText()).contains("too many large request bodies");
            assertThat(s.get(s.tokenA, "/v1/whoami").status()).isEqualTo(200);
        } finally {
            for (var sock : slow) sock.close();
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(40).toNanos();
        while (api.bodyBytesReserved() > 0) {
            assertThat(System.nanoTime()).as("reservations end with their requests").isLessThan(deadline);
            Thread.sleep(50);
        }
        var ok = s.json(s.tokenA, "POST", "/v1/instances", "{\"image\":\"" + image + "\",\"command\":\"true\",\"disposable\":true}");
        assertThat(ok.status()).as(ok.text()).isEqualTo(202);
    }

    /** A body without a length (chunked) past the JSON limit is cut off while read: 413 too. */
    @Test
    void chunkedBodiesPastTheLimitAre413() {
        byte[] big = new byte[(int) MAX_JSON + 10];
        java.util.Arrays.fill(big, (byte) ' ');
        RawHttp.Response r = raw.send("POST", RawHttp.ascii("/v1/instances"), Map.of("Authorization", "Bearer " + s.tokenA),
                big, RawHttp.BodyMode.CHUNKED);
        assertThat(r.status()).as(r.toString()).isEqualTo(413);
    }

    /**
     * Queued stdin is on disk, not in the heap; the total is bounded (4 × the JSON limit here = 32 MiB: six of
     * 5 MiB fit, the seventh is refused with 429 and records nothing); every command still gets its bytes intact;
     * files go when their operations end, cancelled-while-queued ones included.
     */
    @Test
    void queuedStdinIsSpooledToDiskAndBounded() throws Exception {
        Path spool = s.dataDir.resolve("spool");
        String blocker = s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + image + "\",\"command\":\"sleep 4\",\"shell\":true,\"disposable\":true}");
        List<String> ops = new ArrayList<>();
        List<String> sums = new ArrayList<>();
        int size = 5 << 20; // 6.7 MiB as base64, under the 8 MiB body limit
        for (int i = 0; i < 6; i++) {
            byte[] data = new byte[size];
            new Random(i).nextBytes(data);
            sums.add(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data)));
            ops.add(s.start(s.tokenA, "/v1/instances", stdinRequest(data)));
        }
        // All six wait behind the blocker (concurrency 1): their stdin is in the spool, byte for byte.
        assertThat(spoolFiles(spool)).hasSizeGreaterThanOrEqualTo(5);
        for (Path f : spoolFiles(spool)) assertThat(Files.size(f)).isEqualTo(size);

        int before = s.get(s.tokenA, "/v1/operations?limit=1000").json().size();
        byte[] more = new byte[size];
        var refused = s.json(s.tokenA, "POST", "/v1/instances", stdinRequest(more));
        assertThat(refused.status()).as(refused.text()).isEqualTo(429);
        assertThat(refused.json().get("error").asText()).contains("queued stdin");
        assertThat(s.get(s.tokenA, "/v1/operations?limit=1000").json().size()).as("nothing recorded").isEqualTo(before);

        // Cancelling a queued one frees its file and its share of the budget.
        String last = ops.removeLast();
        sums.removeLast();
        assertThat(s.delete(s.tokenA, "/v1/operations/" + last).status()).isLessThan(300);
        assertThat(s.json(s.tokenA, "POST", "/v1/instances", stdinRequest(new byte[1024])).status()).isEqualTo(202);

        s.await(s.tokenA, blocker, Duration.ofSeconds(60));
        for (int i = 0; i < ops.size(); i++) {
            JsonNode op = s.await(s.tokenA, ops.get(i), Duration.ofSeconds(120));
            assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
            String out = op.get("metadata").get("result").get("stdout").get("value").asText();
            assertThat(out).isEqualTo(sums.get(i) + "  -\n");
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!spoolFiles(spool).isEmpty() && System.nanoTime() < deadline) Thread.sleep(100);
        assertThat(spoolFiles(spool)).as("spool files left after every operation ended").isEmpty();
    }

    static String stdinRequest(byte[] data) {
        return "{\"image\":\"" + image + "\",\"command\":\"sha256sum\",\"shell\":true,\"disposable\":true,"
                + "\"stdin\":{\"value\":\"" + Base64.getEncoder().encodeToString(data) + "\",\"encoding\":\"base64\"}}";
    }

    static List<Path> spoolFiles(Path spool) throws Exception {
        try (Stream<Path> l = Files.list(spool)) {
            return l.toList();
        }
    }
}
