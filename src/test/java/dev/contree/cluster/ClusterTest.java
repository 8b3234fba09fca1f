package dev.contree.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestDirs;
import dev.contree.TestPostgres;
import dev.contree.TestServer;
import dev.contree.operations.ClusterSettings;
import dev.contree.registry.Compression;
import dev.contree.registry.OciLayoutBuilder;
import dev.contree.registry.TestRegistry;
import dev.contree.server.ServerConfig;
import dev.contree.store.QueueRecords;
import dev.contree.store.postgres.PostgresStore;
import dev.contree.store.postgres.PostgresUrl;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.UnaryOperator;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A cluster in one JVM: a real PostgreSQL 15 ({@link TestPostgres}), a real registry ({@link TestRegistry}), one
 * {@code api} node and two {@code worker} nodes, each a whole {@link dev.contree.server.ContreeServer} with its own data
 * dir (its own btrfs pool, runc state and spool) on loopback HTTP. Nodes talk only through the database (rows, leases,
 * LISTEN/NOTIFY), as separate processes would; a "killed" worker is {@code crash()}ed: its database sessions close before
 * anything else stops, so it records nothing more, as after kill -9.
 *
 * <p>Without an object store a worker runs executions only on images whose layers are in its own pool, so work is spread
 * with registry imports (each of its own layer digest), and executions go where their image was imported.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ClusterTest {
    private static final Duration LEASE = Duration.ofSeconds(3);
    @TempDir static Path dir;
    static TestPostgres pg;
    static TestRegistry reg;
    static String url;
    static TestServer api;
    static TestServer workerA;
    static TestServer workerB;
    static final QueueRecords.Claimant W1 = new QueueRecords.Claimant("w1", "boot-1");

    static UnaryOperator<ServerConfig> node(ClusterSettings.Role role, String id) {
        return c -> c.withRuntime("runc", "ptrace").withExecutions(4, 3600).withDatabase(PostgresUrl.parse(url, null))
                .withCluster(new ClusterSettings(role, LEASE, id));
    }

    @BeforeAll
    static void start() throws Exception {
        pg = TestPostgres.start();
        url = pg.createDatabase();
        reg = TestRegistry.start(dir.resolve("registry"));
        api = new TestServer(dir.resolve("api"), node(ClusterSettings.Role.API, "api-1"));
        workerA = new TestServer(dir.resolve("worker-a"), node(ClusterSettings.Role.WORKER, "worker-a"));
        workerB = new TestServer(dir.resolve("worker-b"), node(ClusterSettings.Role.WORKER, "worker-b"));
    }

    @AfterAll
    static void stop() throws Exception {
        for (TestServer s : new TestServer[]{api, workerA, workerB}) {
            if (s != null) {
                try {
                    s.close();
                } catch (RuntimeException ignored) {
                    // a crashed node closes what is left
                }
            }
        }
        if (reg != null) reg.close();
        for (String d : List.of("api", "worker-a", "worker-b")) TestDirs.removeWithMounts(dir.resolve(d));
        if (pg != null) pg.close();
    }

    // ------------------------------------------------------------------ helpers

    /** Pushes an image whose one layer is unique to {@code name} (a busybox rootfs when {@code runnable}). */
    static String push(String name, boolean runnable) throws IOException {
        OciLayoutBuilder.Tar tar = runnable ? OciLayoutBuilder.busyboxRootfs() : new OciLayoutBuilder.Tar().dir("etc");
        tar.file("etc/image-name", name + "\n");
        Path layout = dir.resolve("layouts").resolve(name);
        new OciLayoutBuilder().layer(Compression.GZIP, tar).writeLayout(layout, "t");
        reg.push(layout, "t", name, "v1", false);
        return "docker://" + reg.hostPort() + "/" + name + ":v1";
    }

    static String importBody(String ref) {
        return "{\"registry\":{\"url\":\"" + ref + "\"}}";
    }

    /** Which worker's pool holds every layer of the image. */
    static String holderOf(String account, String image) {
        List<String> out = new ArrayList<>();
        for (TestServer w : new TestServer[]{workerA, workerB}) {
            var img = w.server.services().images().get(account, image).orElseThrow();
            if (img.layers().stream().allMatch(w.server.services().layers()::exists)) out.add(w.server.workerId());
        }
        assertThat(out).as("the image's layers are in exactly one worker's pool").hasSize(1);
        return out.getFirst();
    }

    static TestServer worker(String id) {
        return workerA.server.workerId().equals(id) ? workerA : workerB;
    }

    /** Polls a subprocess record on the api node until it exited. */
    static JsonNode awaitExit(String path) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (true) {
            JsonNode record = api.get(api.tokenA, path).json();
            JsonNode state = record.path("state");
            if (state.path("exit_code").asInt(-1) != -1 || state.path("signal").asInt(-1) != -1) return record;
            if (System.nanoTime() > deadline) throw new AssertionError("still running: " + record);
            Thread.sleep(50);
        }
    }

    static String runBody(String image, String command) {
        return "{\"image\":\"" + image + "\",\"command\":\"" + command + "\",\"shell\":true,\"disposable\":false}";
    }

    static String stdout(JsonNode op) {
        JsonNode st = op.get("metadata").get("result").get("stdout");
        String v = st.get("value").asText();
        return st.get("encoding").asText().equals("base64") ? new String(Base64.getDecoder().decode(v), StandardCharsets.UTF_8) : v;
    }

    static JsonNode awaitStatus(TestServer s, String op, String status, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            JsonNode o = s.get(s.tokenA, "/v1/operations/" + op).json();
            if (o.get("status").asText().equals(status)) return o;
            if (System.nanoTime() > deadline) throw new AssertionError("not " + status + " after " + timeout + ": " + o);
            Thread.sleep(50);
        }
    }

    /** A busybox image imported through the api node, and the worker that holds it. */
    static String[] runnableImage(String name) throws Exception {
        String op = api.start(api.tokenA, "/v1/images/import", importBody(push(name, true)));
        JsonNode done = api.await(api.tokenA, op, Duration.ofSeconds(120));
        assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
        String image = done.get("result").get("image").asText();
        return new String[]{image, holderOf(api.accountA, image)};
    }

    // ------------------------------------------------------------------ scenarios

    /** 40 imports submitted to the api node all succeed, and both workers ran some of them; the api node ran none. */
    @Test
    @Order(1)
    void importsSubmittedToTheApiNodeRunOnBothWorkers() throws Exception {
        List<String> refs = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(4)) {
            List<Future<String>> pushed = new ArrayList<>();
            for (int i = 0; i < 40; i++) {
                int n = i;
                pushed.add(pool.submit(() -> push("spread-" + n, false)));
            }
            for (Future<String> f : pushed) refs.add(f.get());
        }
        List<String> ops = new ArrayList<>();
        for (String ref : refs) ops.add(api.start(api.tokenA, "/v1/images/import", importBody(ref)));
        int onA = 0, onB = 0;
        for (String op : ops) {
            JsonNode done = api.await(api.tokenA, op, Duration.ofSeconds(180));
            assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
            String holder = holderOf(api.accountA, done.get("result").get("image").asText());
            if (holder.equals("worker-a")) onA++;
            else onB++;
        }
        System.out.println("40 imports: " + onA + " on worker-a, " + onB + " on worker-b");
        assertThat(onA).isPositive();
        assertThat(onB).isPositive();
        var apiImages = api.server.services().images();
        assertThat(api.server.services().layers().exists(apiImages.get(api.accountA,
                api.await(api.tokenA, ops.getFirst(), Duration.ofSeconds(1)).get("result").get("image").asText()).orElseThrow().layers().getFirst()))
                .as("the api node unpacks nothing").isFalse();
    }

    /**
     * An execution submitted to the api node runs on the worker that has its image; its events, followed over SSE from
     * the api node while it runs, arrive live and end with the completion.
     */
    @Test
    @Order(2)
    void executionRunsWhereItsImageIsAndIsFollowedFromTheApiNode() throws Exception {
        String[] img = runnableImage("runnable-1");
        String op = api.start(api.tokenA, "/v1/instances", runBody(img[0], "echo first; sleep 2; echo second > /kept; cat /kept"));
        List<String> frames = new ArrayList<>();
        HttpClient http = HttpClient.newHttpClient();
        HttpRequest req = HttpRequest.newBuilder(URI.create(api.url("/v1/operations/" + op + "/events?follow=1")))
                .header("Authorization", "Bearer " + api.tokenA).timeout(Duration.ofSeconds(60)).build();
        HttpResponse<java.io.InputStream> r = http.send(req, HttpResponse.BodyHandlers.ofInputStream());
        assertThat(r.statusCode()).isEqualTo(200);
        try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.startsWith("event: ")) frames.add(line.substring(7));
                if (line.equals("event: completion")) break;
            }
        }
        assertThat(frames).contains("init", "spawn", "stdout", "exit", "completion");
        assertThat(frames.getLast()).isEqualTo("completion");
        JsonNode done = api.await(api.tokenA, op, Duration.ofSeconds(30));
        assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
        assertThat(stdout(done)).isEqualTo("first\nsecond\n");
        String child = done.get("result").get("image").asText();
        assertThat(holderOf(api.accountA, child)).as("the child is committed where the parent is").isEqualTo(img[1]);

        // For the record (no bound asserted): submit-to-SUCCESS of short runs through the api node, one at a time.
        long t0 = System.nanoTime();
        for (int i = 0; i < 10; i++) {
            String quick = api.start(api.tokenA, "/v1/instances", "{\"image\":\"" + img[0] + "\",\"command\":\"true\",\"disposable\":true}");
            assertThat(api.await(api.tokenA, quick, Duration.ofSeconds(60)).get("status").asText()).isEqualTo("SUCCESS");
        }
        System.out.printf("10 sequential runs submitted to the api node: %.0f ms each, submit to SUCCESS%n", (System.nanoTime() - t0) / 1e7);
    }

    /** DELETE on the api node stops the sandbox on the worker that runs it. */
    @Test
    @Order(3)
    void cancelOnTheApiNodeReachesTheWorker() throws Exception {
        String[] img = runnableImage("runnable-2");
        TestServer w = worker(img[1]);
        String op = api.start(api.tokenA, "/v1/instances", runBody(img[0], "sleep 120"));
        awaitStatus(api, op, "EXECUTING", Duration.ofSeconds(60));
        // Subprocess calls at the api node are routed to the worker that runs the instance (its advertised API), with
        // the caller's token; the worker runs them and the api node answers what it answered.
        String sub = "/v1/operations/" + op + "/subprocesses";
        TestServer.Reply started = api.json(api.tokenA, "POST", sub, "{\"command\":\"echo hi\",\"shell\":true}");
        assertThat(started.status()).as(started.text()).isEqualTo(200);
        JsonNode record = awaitExit(sub + "/" + started.json().get("spid").asInt());
        assertThat(record.path("state").path("exit_code").asInt(-1)).as(record.toString()).isZero();
        assertThat(record.path("stdout").path("value").asText()).isEqualTo("hi\n");
        TestServer.Reply sleeper = api.json(api.tokenA, "POST", sub, "{\"command\":\"sleep 100\",\"shell\":true}");
        assertThat(sleeper.status()).as(sleeper.text()).isEqualTo(200);
        int spid = sleeper.json().get("spid").asInt();
        assertThat(api.delete(api.tokenA, sub + "/" + spid + "?signal=KILL").status()).isEqualTo(204);
        assertThat(awaitExit(sub + "/" + spid).path("state").path("signal").asInt()).isEqualTo(9);
        // Bad input is refused where it arrives; a call that was routed once is never routed on (it gets a clear 409).
        assertThat(api.json(api.tokenA, "POST", sub, "{\"shell\":true}").status()).isEqualTo(400);
        TestServer.Reply looped = api.send(api.tokenA, "POST", sub, java.net.http.HttpRequest.BodyPublishers.ofString(
                "{\"command\":\"true\"}"), "Content-Type", "application/json", "X-Contree-Routed", "1");
        assertThat(looped.status()).isEqualTo(409);
        assertThat(looped.json().get("error").asText()).contains("runs on worker " + img[1]);
        long t0 = System.nanoTime();
        assertThat(api.delete(api.tokenA, "/v1/operations/" + op).status()).isIn(200, 202, 204);
        JsonNode done = api.await(api.tokenA, op, Duration.ofSeconds(10));
        assertThat(done.get("status").asText()).isEqualTo("CANCELLED");
        // The worker's sandbox ends and it releases the row (its completion event closes the log).
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (w.server.clusterHeld() > 0 && System.nanoTime() < deadline) Thread.sleep(50);
        assertThat(w.server.clusterHeld()).isZero();
        System.out.printf("cancel from the api node: worker released it after %.2f s%n", (System.nanoTime() - t0) / 1e9);
        String log = api.get(api.tokenA, "/v1/operations/" + op + "/events").text();
        assertThat(log.split("event: completion", -1)).as("one completion event: " + log).hasSize(2);
    }

    /**
     * A worker killed in the middle of a run: its execution ends FAILED within about the lease timeout, saying which
     * worker stopped; work another worker had claimed and not started (a "ghost" claim made here through the queue's
     * own API, by a worker that then never heartbeats) goes back to the queue; new work runs on the surviving worker;
     * and the killed worker, restarted on its data dir, runs what only it can.
     */
    @Test
    @Order(4)
    void aKilledWorkersRunFailsWithinTheLeaseAndItsUnstartedWorkIsHandedBack() throws Exception {
        String[] img = runnableImage("runnable-3");
        String victimId = img[1];
        TestServer victim = worker(victimId);
        TestServer survivor = victim == workerA ? workerB : workerA;
        String running = api.start(api.tokenA, "/v1/instances", runBody(img[0], "sleep 120"));
        awaitStatus(api, running, "EXECUTING", Duration.ofSeconds(60));

        long killedAt = System.nanoTime();
        victim.server.crash();

        // Only the killed worker has this image: the run waits, and a ghost worker claims it and dies at once.
        String waiting = api.start(api.tokenA, "/v1/instances", runBody(img[0], "echo after restart"));
        try (PostgresStore store = PostgresStore.open(PostgresUrl.parse(url, null))) {
            QueueRecords queue = store.queue().orElseThrow();
            var claim = queue.claim(new QueueRecords.Claimant("ghost", "boot-1"), Set.of(dev.contree.operations.OperationKind.INSTANCE), LEASE, 32, waiting::equals);
            assertThat(claim).as("the ghost claims the waiting run").isPresent();
            assertThat(queue.holder(waiting)).contains("ghost");

            // Work submitted meanwhile runs on the surviving worker.
            List<String> imports = new ArrayList<>();
            for (int i = 0; i < 3; i++) imports.add(api.start(api.tokenA, "/v1/images/import", importBody(push("after-kill-" + i, false))));

            JsonNode failed = api.await(api.tokenA, running, Duration.ofSeconds(30));
            double seconds = (System.nanoTime() - killedAt) / 1e9;
            System.out.printf("killed worker's run FAILED after %.2f s (lease %d s)%n", seconds, LEASE.toSeconds());
            assertThat(failed.get("status").asText()).isEqualTo("FAILED");
            assertThat(failed.get("error").asText()).contains("worker " + victimId + " stopped (lease expired");
            assertThat(seconds).as("within the lease timeout and a sweep").isLessThan(LEASE.toSeconds() * 3 + 2);
            assertThat(api.get(api.tokenA, "/v1/operations/" + running + "/events").text()).contains("event: completion");

            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (queue.holder(waiting).isPresent() && System.nanoTime() < deadline) Thread.sleep(100);
            assertThat(queue.holder(waiting)).as("the ghost's unstarted claim is handed back").isEmpty();
            assertThat(api.get(api.tokenA, "/v1/operations/" + waiting).json().get("status").asText()).isEqualTo("PENDING");

            for (String op : imports) {
                JsonNode done = api.await(api.tokenA, op, Duration.ofSeconds(120));
                assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
                assertThat(holderOfLive(survivor, done.get("result").get("image").asText())).isTrue();
            }
        }

        // The killed worker comes back on its data dir (same worker id) and runs what only it can.
        TestServer restarted = new TestServer(victim.dataDir, node(ClusterSettings.Role.WORKER, victimId));
        if (victim == workerA) workerA = restarted;
        else workerB = restarted;
        JsonNode done = api.await(api.tokenA, waiting, Duration.ofSeconds(60));
        assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
        assertThat(stdout(done)).isEqualTo("after restart\n");
    }

    /**
     * A worker restarted under the same id within its lease, while its previous process ran an execution: that
     * execution ends FAILED (naming the worker) within about two leases, the restarted process does not renew its
     * predecessor's row (it is gone from the queue and not held here), and the restarted worker runs new work.
     */
    @Test
    @Order(5)
    void aWorkerRestartedWithinItsLeaseDoesNotKeepItsDeadRunAlive() throws Exception {
        String[] img = runnableImage("runnable-6");
        String victimId = img[1];
        TestServer victim = worker(victimId);
        String running = api.start(api.tokenA, "/v1/instances", runBody(img[0], "sleep 120"));
        awaitStatus(api, running, "EXECUTING", Duration.ofSeconds(60));

        long killedAt = System.nanoTime();
        victim.server.crash();
        TestServer restarted = new TestServer(victim.dataDir, node(ClusterSettings.Role.WORKER, victimId));
        if (victim == workerA) workerA = restarted;
        else workerB = restarted;

        JsonNode failed = api.await(api.tokenA, running, Duration.ofSeconds(30));
        double seconds = (System.nanoTime() - killedAt) / 1e9;
        System.out.printf("run of a worker restarted within its lease FAILED after %.2f s (lease %d s)%n", seconds, LEASE.toSeconds());
        assertThat(failed.get("status").asText()).as(failed.toString()).isEqualTo("FAILED");
        assertThat(failed.get("error").asText()).contains("worker " + victimId + " stopped (lease expired");
        assertThat(seconds).as("within about two leases").isLessThan(LEASE.toSeconds() * 2 + 2);
        // Several heartbeats of the restarted process later, nothing of its predecessor is renewed or held here.
        Thread.sleep(LEASE.toMillis());
        try (PostgresStore store = PostgresStore.open(PostgresUrl.parse(url, null))) {
            assertThat(store.queue().orElseThrow().holder(running)).as("the dead run's row is gone").isEmpty();
        }
        assertThat(restarted.server.clusterHeld()).isZero();
        assertThat(api.get(api.tokenA, "/v1/operations/" + running).json().get("status").asText()).isEqualTo("FAILED");

        String after = api.start(api.tokenA, "/v1/instances", runBody(img[0], "echo alive"));
        JsonNode done = api.await(api.tokenA, after, Duration.ofSeconds(60));
        assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
        assertThat(stdout(done)).isEqualTo("alive\n");
    }

    static boolean holderOfLive(TestServer w, String image) {
        var img = w.server.services().images().get(api.accountA, image).orElseThrow();
        return img.layers().stream().allMatch(w.server.services().layers()::exists);
    }

    /** The api node holds nothing: work submitted just before it stops completes, and a new api node reads it all. */
    @Test
    @Order(6)
    void restartingTheApiNodeLosesNothing() throws Exception {
        String[] img = runnableImage("runnable-4");
        String run = api.start(api.tokenA, "/v1/instances", runBody(img[0], "sleep 2; echo done"));
        List<String> imports = new ArrayList<>();
        for (int i = 0; i < 3; i++) imports.add(api.start(api.tokenA, "/v1/images/import", importBody(push("across-restart-" + i, false))));
        api.close();
        api = new TestServer(dir.resolve("api"), node(ClusterSettings.Role.API, "api-1"));
        JsonNode done = api.await(api.tokenA, run, Duration.ofSeconds(60));
        assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
        assertThat(stdout(done)).isEqualTo("done\n");
        for (String op : imports) assertThat(api.await(api.tokenA, op, Duration.ofSeconds(120)).get("status").asText()).isEqualTo("SUCCESS");
    }

    /**
     * Claims are fair between accounts cluster-wide: the account holding the fewest claimed operations goes first,
     * round robin among equals, whatever the submission order (4 of alice's, then 2 of bob's). Run on a database of
     * its own, through the queue's API, so no worker takes part.
     */
    @Test
    @Order(7)
    void claimsAreFairBetweenAccounts() throws Exception {
        try (PostgresStore store = PostgresStore.open(PostgresUrl.parse(pg.createDatabase(), null))) {
            QueueRecords queue = store.queue().orElseThrow();
            String alice = store.tokens().register("hash-alice", "alice", "t", null).accountId();
            String bob = store.tokens().register("hash-bob", "bob", "t", null).accountId();
            java.util.Map<String, String> owner = new java.util.HashMap<>();
            for (String account : List.of(alice, alice, alice, alice, bob, bob)) {
                var op = store.operations().create(account, dev.contree.operations.OperationKind.IMAGE_IMPORT, null,
                        new dev.contree.imports.ImportRequest("docker://example/x:1", "", "", null, 300));
                queue.enqueue(op.uuid(), account, op.kind(), null, null);
                owner.put(op.uuid(), account.equals(alice) ? "alice" : "bob");
            }
            List<String> order = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                var c = queue.claim(W1, Set.of(dev.contree.operations.OperationKind.IMAGE_IMPORT), Duration.ofMinutes(1), 32, u -> true);
                order.add(owner.get(c.orElseThrow().operationUuid()));
            }
            assertThat(order).containsExactly("alice", "bob", "alice", "bob", "alice", "alice");
            assertThat(queue.claim(W1, Set.of(dev.contree.operations.OperationKind.IMAGE_IMPORT), Duration.ofMinutes(1), 32, u -> true))
                    .isEmpty();
            assertThat(queue.heartbeat(W1, Duration.ofMinutes(1))).hasSize(6);
        }
    }

    /**
     * A claim belongs to the process that made it, not just its worker id: another process under the same id (a
     * restart) neither renews nor releases it; hand-back and removal of a lapsed row re-check, in the same statement,
     * that the lease is still lapsed, the holder the same and (hand-back) the operation still PENDING. Stdin counts
     * against the queue bound only while its row waits. Through the queue's API on a database of its own.
     */
    @Test
    @Order(9)
    void claimsBelongToOneProcessAndLapsedRowsAreRecheckedWhenTaken() throws Exception {
        try (PostgresStore store = PostgresStore.open(PostgresUrl.parse(pg.createDatabase(), null))) {
            QueueRecords queue = store.queue().orElseThrow();
            String account = store.tokens().register("hash-carol", "carol", "t", null).accountId();
            var kinds = Set.of(dev.contree.operations.OperationKind.IMAGE_IMPORT);
            var op = store.operations().create(account, dev.contree.operations.OperationKind.IMAGE_IMPORT, null,
                    new dev.contree.imports.ImportRequest("docker://example/x:1", "", "", null, 300));
            queue.enqueue(op.uuid(), account, op.kind(), new byte[1000], null);
            assertThat(queue.counts(account).stdinBytes()).isEqualTo(1000);
            QueueRecords.Claimant old = new QueueRecords.Claimant("w", "boot-old");
            QueueRecords.Claimant restarted = new QueueRecords.Claimant("w", "boot-new");
            assertThat(queue.claim(old, kinds, Duration.ofMinutes(1), 32, u -> true)).isPresent();
            assertThat(queue.counts(account).stdinBytes()).as("a claimed row's stdin no longer waits").isZero();

            assertThat(queue.heartbeat(restarted, Duration.ofMinutes(1))).as("another process's claim is not renewed").isEmpty();
            assertThat(queue.heartbeat(old, Duration.ofMinutes(1))).hasSize(1);
            assertThat(queue.release(op.uuid(), restarted)).as("nor released by it").isFalse();
            assertThat(queue.handBack(op.uuid(), old)).as("a live lease is not handed back").isFalse();
            assertThat(queue.removeLapsed(op.uuid(), old)).as("nor removed").isFalse();
            assertThat(queue.holder(op.uuid())).contains("w");

            queue.expire("w");
            var lapsed = queue.lapsed(10);
            assertThat(lapsed).hasSize(1);
            assertThat(lapsed.getFirst().holder()).isEqualTo(old);
            assertThat(queue.handBack(op.uuid(), restarted)).isFalse();
            assertThat(queue.removeLapsed(op.uuid(), restarted)).isFalse();
            // Renewed between the sweeper's read and its action: the row stays with its holder.
            queue.heartbeat(old, Duration.ofMinutes(1));
            assertThat(queue.handBack(op.uuid(), lapsed.getFirst().holder())).isFalse();
            assertThat(queue.removeLapsed(op.uuid(), lapsed.getFirst().holder())).isFalse();
            assertThat(queue.holder(op.uuid())).contains("w");

            // Started meanwhile (no longer PENDING): not handed back, but removed once lapsed.
            assertThat(store.operations().transition(op.uuid(), Set.of(dev.contree.operations.OperationStatus.PENDING),
                    dev.contree.operations.OperationStatus.ASSIGNED)).isTrue();
            queue.expire("w");
            assertThat(queue.handBack(op.uuid(), old)).isFalse();
            assertThat(queue.removeLapsed(op.uuid(), old)).isTrue();
            assertThat(queue.holder(op.uuid())).isEmpty();

            // A PENDING one whose lease lapsed goes back, and its own holder releases it.
            var op2 = store.operations().create(account, dev.contree.operations.OperationKind.IMAGE_IMPORT, null,
                    new dev.contree.imports.ImportRequest("docker://example/y:1", "", "", null, 300));
            queue.enqueue(op2.uuid(), account, op2.kind(), null, null);
            assertThat(queue.claim(old, kinds, Duration.ofMinutes(1), 32, u -> true)).isPresent();
            queue.expire("w");
            assertThat(queue.handBack(op2.uuid(), old)).isTrue();
            assertThat(queue.claim(restarted, kinds, Duration.ofMinutes(1), 32, u -> true)).isPresent();
            assertThat(queue.release(op2.uuid(), old)).as("the old process lost it").isFalse();
            assertThat(queue.release(op2.uuid(), restarted)).isTrue();
            assertThat(queue.holder(op2.uuid())).isEmpty();
        }
    }

    /**
     * Without the object store no worker can read a file uploaded to the api node: work that needs one is refused
     * there (503 with the reason), not left PENDING forever. Roles other than {@code all} need PostgreSQL.
     */
    @Test
    @Order(8)
    void anApiNodeRefusesWorkOnFilesUploadedToItAndRolesNeedPostgres() throws Exception {
        String file = api.upload(api.tokenA, "content\n".getBytes(StandardCharsets.UTF_8)).json().get("uuid").asText();
        TestServer.Reply imp = api.json(api.tokenA, "POST", "/v1/images/import", importBody("rootfs+file://" + file));
        assertThat(imp.status()).isEqualTo(503);
        assertThat(imp.json().get("error").asText()).contains("upload the file to, and import it on, a worker node");
        String[] img = runnableImage("runnable-5");
        TestServer.Reply run = api.json(api.tokenA, "POST", "/v1/instances", "{\"image\":\"" + img[0]
                + "\",\"command\":\"cat /f\",\"shell\":true,\"files\":{\"/f\":{\"uuid\":\"" + file + "\"}}}");
        assertThat(run.status()).isEqualTo(503);
        assertThat(run.json().get("error").asText()).contains("spawn on, a worker node");

        for (ClusterSettings.Role role : List.of(ClusterSettings.Role.API, ClusterSettings.Role.WORKER)) {
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> ServerConfig.defaults(dir.resolve("x"))
                            .withCluster(new ClusterSettings(role, LEASE, null)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("needs a PostgreSQL database");
        }
    }
}
