package dev.contree.instances;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestImages;
import dev.contree.TestServer;
import dev.contree.operations.OperationEvent;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The queue on a real runc server: thousands of queued executions cost little and are accepted quickly, each can be
 * cancelled at once, and past the bound a spawn or import is a 429 with Retry-After that records nothing.
 */
class QueueBoundsTest {
    @AutoClose static TestServer big;
    @AutoClose static TestServer small;
    static String bigImage, bigImageB;
    static String smallImage, smallImageB;

    @BeforeAll
    static void setUp() throws Exception {
        // Two slots, held by one sleeping run per account (two tenants: one slot each), and the default queue bound.
        big = TestServer.inTempDir("queue-big", c -> c.withRuntime("runc", "ptrace").withExecutions(2, 900).withMaxQueued(10_000));
        bigImage = big.importBusybox(null);
        bigImageB = big.importRootfs(big.tokenB, TestImages.busyboxRootfs(), null); // images belong to an account
        small = TestServer.inTempDir("queue-small", c -> c.withRuntime("runc", "ptrace").withExecutions(1, 900).withMaxQueued(8));
        smallImage = small.importBusybox(null);
        smallImageB = small.importRootfs(small.tokenB, TestImages.busyboxRootfs(), null);
    }

    static String spawnBody(String image, String command, String stdin) {
        return "{\"image\":\"" + image + "\",\"command\":\"" + command + "\",\"shell\":true,\"disposable\":true,\"timeout\":900"
                + (stdin == null ? "" : ",\"stdin\":\"" + stdin + "\"") + "}";
    }

    static String status(TestServer s, String token, String op) {
        return s.get(token, "/v1/operations/" + op).json().get("status").asText();
    }

    static void awaitStatus(TestServer s, String token, String op, String wanted) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!status(s, token, op).equals(wanted)) {
            assertThat(System.nanoTime()).as(op + " reaches " + wanted).isLessThan(deadline);
            Thread.sleep(50);
        }
    }

    static long operationCount(TestServer s, String token) {
        long n = 0;
        for (JsonNode c : s.get(token, "/v1/whoami").json().get("operations_stat")) n += c.asLong();
        return n;
    }

    static void assertTooMany(TestServer.Reply r, String messagePart) {
        assertThat(r.status()).as(r.text()).isEqualTo(429);
        assertThat(r.header("Content-Type")).startsWith("application/json");
        assertThat(Integer.parseInt(r.header("Retry-After"))).isBetween(1, 60);
        assertThat(r.json().get("status").asInt()).isEqualTo(429);
        assertThat(r.json().get("error").asText()).contains(messagePart);
    }

    @Test
    void tenThousandQueuedAreAcceptedQuicklyAndEachCancellableAtOnce() throws Exception {
        String holdA = big.start(big.tokenA, "/v1/instances", spawnBody(bigImage, "sleep 600", null));
        String holdB = big.start(big.tokenB, "/v1/instances", spawnBody(bigImageB, "sleep 600", null));
        awaitStatus(big, big.tokenA, holdA, "EXECUTING");
        awaitStatus(big, big.tokenB, holdB, "EXECUTING");
        assertThat(big.get(big.tokenA, "/v1/whoami").json().get("limits").get("instance_max_concurrency").asInt())
                .as("the configured bound, well within what this host admits").isEqualTo(2);

        // 5,000 per account from 16 concurrent clients.
        List<String> queuedA = java.util.Collections.synchronizedList(new ArrayList<>());
        ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
        long t0 = System.nanoTime();
        try (ExecutorService clients = Executors.newFixedThreadPool(16)) {
            List<Future<?>> done = new ArrayList<>();
            for (int c = 0; c < 16; c++) {
                boolean alice = c % 2 == 0;
                done.add(clients.submit(() -> {
                    for (int i = 0; i < 625; i++) {
                        TestServer.Reply r = big.json(alice ? big.tokenA : big.tokenB, "POST", "/v1/instances",
                                spawnBody(alice ? bigImage : bigImageB, "echo queued", null));
                        if (r.status() != 202) failures.add(r.status() + " " + r.text());
                        else if (alice) queuedA.add(r.json().get("uuid").asText());
                    }
                }));
            }
            for (Future<?> f : done) f.get();
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        System.out.printf("QueueBoundsTest: 10,000 queued over HTTP in %.1f s (%.0f/s)%n", seconds, 10_000 / seconds);
        assertThat(failures).isEmpty();
        assertThat(seconds).as("accepted in seconds, not minutes").isLessThan(180);
        assertThat(big.server.services().scheduler().queued()).isEqualTo(10_000);
        assertThat(status(big, big.tokenA, holdA)).isEqualTo("EXECUTING");

        // One more is past the bound: 429, nothing recorded.
        long before = operationCount(big, big.tokenA);
        assertTooMany(big.json(big.tokenA, "POST", "/v1/instances", spawnBody(bigImage, "echo one-too-many", null)), "queue is full");
        assertThat(operationCount(big, big.tokenA)).isEqualTo(before);

        // Cancel one in the middle: CANCELLED with its completion event at once; its neighbours stay queued.
        String middle = queuedA.get(queuedA.size() / 2);
        TestServer.Reply cancel = big.delete(big.tokenA, "/v1/operations/" + middle);
        assertThat(cancel.status()).as(cancel.text()).isEqualTo(202);
        assertThat(status(big, big.tokenA, middle)).isEqualTo("CANCELLED");
        assertThat(big.server.services().operations().events(middle, -1)).extracting(OperationEvent::type).containsExactly("completion");
        assertThat(big.server.services().scheduler().queued()).isEqualTo(9_999);
        for (int i : new int[] {queuedA.size() / 2 - 1, queuedA.size() / 2 + 1, 0, queuedA.size() - 1}) {
            assertThat(status(big, big.tokenA, queuedA.get(i))).isEqualTo("PENDING");
        }

        // Any queued one cancels at once: a spread of 100.
        long c0 = System.nanoTime();
        int cancelled = 1;
        for (int i = 0; i < 100; i++) {
            String op = queuedA.get(i * 49);
            if (op.equals(middle)) continue;
            assertThat(big.delete(big.tokenA, "/v1/operations/" + op).status()).isEqualTo(202);
            assertThat(status(big, big.tokenA, op)).isEqualTo("CANCELLED");
            cancelled++;
        }
        System.out.printf("QueueBoundsTest: 100 queued cancels in %.2f s%n", (System.nanoTime() - c0) / 1e9);
        assertThat(big.server.services().scheduler().queued()).isEqualTo(10_000 - cancelled);
        // With room in the queue again, a spawn is accepted.
        big.start(big.tokenA, "/v1/instances", spawnBody(bigImage, "echo fits-again", null));
    }

    @Test
    void pastTheQueueBoundSpawnsAndImportsAre429AndRecordNothing() throws Exception {
        String hold = small.start(small.tokenA, "/v1/instances", spawnBody(smallImage, "sleep 600", null));
        awaitStatus(small, small.tokenA, hold, "EXECUTING");
        String tarball = small.upload(small.tokenA, TestImages.busyboxRootfs()).json().get("uuid").asText();

        // Two tenants share a queue of 8: one account may fill all but a quarter of it (6).
        for (int i = 0; i < 6; i++) small.start(small.tokenA, "/v1/instances", spawnBody(smallImage, "echo a" + i, null));
        long aBefore = operationCount(small, small.tokenA);
        assertTooMany(small.json(small.tokenA, "POST", "/v1/instances", spawnBody(smallImage, "cat", "c3RkaW4=")), "this account has 6");
        assertThat(operationCount(small, small.tokenA)).isEqualTo(aBefore);
        try (Stream<java.nio.file.Path> spooled = Files.list(small.dataDir.resolve("spool"))) {
            assertThat(spooled).as("refused stdin is not left behind").isEmpty();
        }

        // The other account still gets the rest, then the queue itself is full, for spawns and imports alike.
        List<String> bobs = new ArrayList<>();
        for (int i = 0; i < 2; i++) bobs.add(small.start(small.tokenB, "/v1/instances", spawnBody(smallImageB, "echo b" + i, null)));
        long bBefore = operationCount(small, small.tokenB);
        assertTooMany(small.json(small.tokenB, "POST", "/v1/instances", spawnBody(smallImageB, "echo b2", null)), "queue is full");
        assertTooMany(small.json(small.tokenA, "POST", "/v1/images/import",
                "{\"registry\":{\"url\":\"rootfs+file://" + tarball + "\"}}"), "queue is full");
        assertThat(operationCount(small, small.tokenB)).isEqualTo(bBefore);
        assertThat(operationCount(small, small.tokenA)).isEqualTo(aBefore);
        assertThat(small.server.services().scheduler().queued()).isEqualTo(8);

        // A cancel makes room at once.
        assertThat(small.delete(small.tokenB, "/v1/operations/" + bobs.get(0)).status()).isEqualTo(202);
        small.start(small.tokenB, "/v1/instances", spawnBody(smallImageB, "echo b3", null));
    }
}
