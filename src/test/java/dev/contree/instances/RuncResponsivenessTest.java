package dev.contree.instances;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.TestDirs;
import dev.contree.TestImages;
import dev.contree.TestServer;
import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The server stays responsive while hundreds of sandboxes sleep: 300 runc sandboxes run {@code sleep}, and
 * whoami, an operation's status and a new spawn each answer within 2 s at every probe. Before sandbox I/O
 * moved to the poller, every sandbox pinned two carrier threads in blocking pipe reads; at 128 sandboxes the
 * JDK's 256 carriers were gone and requests hung.
 */
class RuncResponsivenessTest {
    static final int SANDBOXES = 300;
    static final Duration ANSWER = Duration.ofSeconds(2);
    static final ObjectMapper JSON = new ObjectMapper();

    final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(ANSWER).executor(Executors.newVirtualThreadPerTaskExecutor()).build();

    @Test
    void requestsAnswerWithin2sWhile300SandboxesSleep() throws Exception {
        assertThat(openFilesLimit()).as("soft RLIMIT_NOFILE: each sandbox holds a few descriptors here and in runc")
                .isGreaterThanOrEqualTo(SANDBOXES * 8L);
        Path dir = Files.createTempDirectory("responsive");
        // Slots for all of them plus the probes' spawns, all in one account.
        try (TestServer s = new TestServer(dir, c -> c.withRuntime("runc", "ptrace")
                .withExecutions(SANDBOXES + 40, 600).withAccountConcurrency(SANDBOXES + 40))) {
            String image = s.importRootfs(s.tokenA, TestImages.busyboxRootfs(), "busybox:test");
            List<String> sleepers = new ArrayList<>();
            List<String> others = new ArrayList<>();
            try {
                String sleep = "{\"image\":\"" + image + "\",\"command\":\"sleep 90\",\"shell\":true,\"disposable\":true,\"timeout\":120}";
                long t0 = System.nanoTime();
                try (ExecutorService pool = Executors.newFixedThreadPool(16)) {
                    List<Future<String>> f = new ArrayList<>();
                    for (int i = 0; i < SANDBOXES; i++) f.add(pool.submit(() -> s.start(s.tokenA, "/v1/instances", sleep)));
                    for (Future<String> x : f) sleepers.add(x.get());
                }
                long executing = 0, answered = -1;
                long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
                while (System.nanoTime() < deadline) {
                    executing = count(s, "EXECUTING");
                    if (executing >= 0) answered = executing;
                    if (executing >= SANDBOXES) break;
                    Thread.sleep(500);
                }
                assertThat(executing).as("sandboxes EXECUTING 60 s after the first submit (-1: the list did not answer"
                        + " in 5 s; its last answer: " + answered + ")").isGreaterThanOrEqualTo(SANDBOXES);
                System.out.printf("%d sandboxes EXECUTING %.1f s after the first submit%n", SANDBOXES, (System.nanoTime() - t0) / 1e9);

                String probeSpawn = "{\"image\":\"" + image + "\",\"command\":\"true\",\"disposable\":true}";
                List<String> slow = new ArrayList<>();
                long worst = 0;
                for (int probe = 0; probe < 20; probe++) {
                    String op = sleepers.get(probe * 13 % SANDBOXES);
                    long a = timed(s, "GET", "/v1/whoami", null, slow, null);
                    long b = timed(s, "GET", "/v1/operations/" + op, null, slow, null);
                    long c = timed(s, "POST", "/v1/instances", probeSpawn, slow, others);
                    worst = Math.max(worst, Math.max(a, Math.max(b, c)));
                    Thread.sleep(500);
                }
                System.out.printf("worst probe answer: %d ms%n", worst);
                assertThat(slow).as("requests slower than " + ANSWER + " while " + SANDBOXES + " sandboxes sleep").isEmpty();
                assertThat(count(s, "EXECUTING")).as("still sleeping after the probes").isGreaterThanOrEqualTo(SANDBOXES);
            } catch (Throwable t) {
                // The server may be the thing that is broken: clean up as far as it goes, keep the real failure.
                try {
                    cancelAndAwait(s, sleepers, others);
                } catch (Throwable cleanup) {
                    t.addSuppressed(cleanup);
                }
                throw t;
            }
            cancelAndAwait(s, sleepers, others);
        } finally {
            TestDirs.removeWithMounts(dir);
        }
    }

    /** Cancels the sleepers and waits for every execution to end: cancelled, or done if it finished first. */
    static void cancelAndAwait(TestServer s, List<String> sleepers, List<String> others) {
        long t0 = System.nanoTime();
        for (String op : sleepers) s.delete(s.tokenA, "/v1/operations/" + op);
        List<String> all = new ArrayList<>(sleepers);
        all.addAll(others);
        for (String op : all) {
            assertThat(s.await(s.tokenA, op, Duration.ofSeconds(60)).get("status").asText()).as(op).isIn("CANCELLED", "SUCCESS");
        }
        System.out.printf("all %d cancelled or done %.1f s after the first cancel%n", all.size(), (System.nanoTime() - t0) / 1e9);
    }

    /** One request with a 2 s budget; a slow or failed answer is recorded, a spawn's uuid is kept for cleanup. */
    long timed(TestServer s, String method, String path, String body, List<String> slow, List<String> spawned) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(s.url(path))).timeout(ANSWER)
                .header("Authorization", "Bearer " + s.tokenA)
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        if (body != null) b.header("Content-Type", "application/json");
        long t0 = System.nanoTime();
        try {
            HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
            long ms = (System.nanoTime() - t0) / 1_000_000;
            if (r.statusCode() / 100 != 2) slow.add(method + " " + path + " -> " + r.statusCode() + " " + r.body());
            else if (ms > ANSWER.toMillis()) slow.add(method + " " + path + " took " + ms + " ms");
            if (spawned != null && r.statusCode() == 202) spawned.add(JSON.readTree(r.body()).get("uuid").asText());
            return ms;
        } catch (Exception e) {
            long ms = (System.nanoTime() - t0) / 1_000_000;
            slow.add(method + " " + path + " failed after " + ms + " ms: " + e);
            return ms;
        }
    }

    /** How many of the account's executions have {@code status}; -1 when the server does not answer in 5 s. */
    long count(TestServer s, String status) {
        HttpRequest req = HttpRequest.newBuilder(URI.create(s.url("/v1/operations?status=" + status + "&kind=instance&limit=1000")))
                .timeout(Duration.ofSeconds(5)).header("Authorization", "Bearer " + s.tokenA).GET().build();
        try {
            HttpResponse<String> r = http.send(req, HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) throw new AssertionError("list operations: " + r.statusCode() + " " + r.body());
            return JSON.readTree(r.body()).size();
        } catch (java.io.IOException e) {
            return -1;
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    static long openFilesLimit() throws Exception {
        Matcher m = Pattern.compile("Max open files\\s+(\\d+)").matcher(Files.readString(Path.of("/proc/self/limits")));
        return m.find() ? Long.parseLong(m.group(1)) : Long.MAX_VALUE;
    }
}
