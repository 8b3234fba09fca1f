package dev.contree.operations;

import dev.contree.TestPostgres;
import dev.contree.TestRequests;
import dev.contree.store.QueueRecords;
import dev.contree.store.postgres.PostgresStore;
import dev.contree.store.postgres.PostgresUrl;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The cluster queue's hand-over paths on a real PostgreSQL 15 ({@link TestPostgres}): each node is its own store (its own
 * pool), {@link OperationService}, {@link Scheduler} and {@link ClusterQueue}, as in separate processes. Jobs are the
 * test's own ({@link WorkQueue.JobFactory} is the extension point the services implement), so a worker can be held at
 * the moment under test: a claim being prepared, a job waiting behind a busy slot.
 */
class ClusterHandBackTest {
    /** Long, so that nothing here can pass by waiting for a lease to lapse. */
    private static final Duration LEASE = Duration.ofSeconds(60);
    private static final Duration PROMPTLY = Duration.ofSeconds(20);

    static TestPostgres pg;
    String url;
    final List<AutoCloseable> open = new ArrayList<>();

    @BeforeAll
    static void startPostgres() throws Exception {
        pg = TestPostgres.start();
    }

    @AfterAll
    static void stopPostgres() throws Exception {
        if (pg != null) pg.close();
    }

    @BeforeEach
    void database() throws Exception {
        url = pg.createDatabase();
        PostgresStore.open(PostgresUrl.parse(url, null)).close(); // migrated
        try (Connection c = pg.connect(TestPostgres.name(url)); Statement s = c.createStatement()) {
            s.execute("INSERT INTO accounts (id, name, created_at) VALUES ('a', 'a', 0)");
        }
    }

    @AfterEach
    void closeAll() {
        for (int i = open.size() - 1; i >= 0; i--) {
            try {
                open.get(i).close();
            } catch (Exception ignored) {
                // closing what a test left
            }
        }
        open.clear();
    }

    /** One node's parts. */
    record Node(PostgresStore store, OperationService ops, Scheduler scheduler, ClusterQueue cluster) {}

    Node node(String id, ClusterSettings.Role role, WorkQueue.JobFactory factory, boolean start) {
        PostgresStore store = PostgresStore.open(PostgresUrl.parse(url, null));
        open.add(store);
        OperationService ops = new OperationService(store);
        Scheduler scheduler = role.runsWork()
                ? new Scheduler(ops, new Scheduler.Bounds(1, 1, 1, 100), () -> 1, Admission.unbounded(), false) : null;
        if (scheduler != null) open.add(scheduler);
        ClusterQueue cluster = new ClusterQueue(ops, store.queue().orElseThrow(), new ClusterSettings(role, LEASE, id), scheduler,
                1000, 1 << 20, () -> 1);
        open.add(cluster);
        if (factory != null) cluster.register(OperationKind.INSTANCE, factory);
        if (start) cluster.start();
        return new Node(store, ops, scheduler, cluster);
    }

    static JobOutcome success() {
        return new JobOutcome.Succeeded(new JobOutcome.Discarded(), 0, null, null);
    }

    /** Queues an execution through {@code node}, as an api node accepts one. */
    static Operation submit(Node node) throws RequestRejected {
        Operation op = node.ops().create("a", OperationKind.INSTANCE, null, TestRequests.execution("true", null));
        node.cluster().submit(node.cluster().reserve("a", 0), op, WorkQueue.StoredInput.NONE);
        return op;
    }

    static void await(String what, Duration within, BooleanSupplier condition, java.util.function.Supplier<String> diagnostics)
            throws InterruptedException {
        long deadline = System.nanoTime() + within.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError(what + " within " + within.toSeconds() + " s; " + diagnostics.get());
            Thread.sleep(20);
        }
    }

    String row(String uuid) {
        try (Connection c = pg.connect(TestPostgres.name(url)); Statement s = c.createStatement();
             var rs = s.executeQuery("SELECT q.claimed_by, q.lease_expires, o.status FROM operations o"
                     + " LEFT JOIN queue q ON q.operation_uuid = o.uuid WHERE o.uuid = '" + uuid + "'")) {
            return rs.next() ? "row claimed_by=" + rs.getString(1) + " lease_expires=" + rs.getString(2) + " status=" + rs.getString(3) : "no operation";
        } catch (Exception e) {
            return "cannot read the row: " + e;
        }
    }

    /** Records where each operation ran, and holds worker A's preparation of one until the test lets it go. */
    static final class Factory implements WorkQueue.JobFactory {
        final String name;
        final Map<String, String> ranOn;
        final CountDownLatch preparing = new CountDownLatch(1);
        final CountDownLatch proceed;

        Factory(String name, Map<String, String> ranOn, boolean hold) {
            this.name = name;
            this.ranOn = ranOn;
            this.proceed = new CountDownLatch(hold ? 1 : 0);
        }

        @Override
        public Job rebuild(Operation op, WorkQueue.StoredInput input) {
            preparing.countDown();
            try {
                if (!proceed.await(60, TimeUnit.SECONDS)) throw new IllegalStateException("the test never let the preparation go on");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return ctx -> {
                ranOn.merge(op.uuid(), name, (a, b) -> a + "," + b);
                return success();
            };
        }
    }

    /** Holds the scheduler's only slot until it is cancelled (a shutdown). */
    static Job holdSlot(CountDownLatch started) {
        return ctx -> {
            started.countDown();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!ctx.cancel().isCancelled() && System.nanoTime() < deadline) Thread.sleep(20);
            return new JobOutcome.Cancelled("stopped");
        };
    }

    @Test
    void aCleanShutdownHandsQueuedWorkBackAtOnce() throws Exception {
        Map<String, String> ranOn = new ConcurrentHashMap<>();
        Factory onA = new Factory("a", ranOn, true);
        Node api = node("api", ClusterSettings.Role.API, null, true);
        Operation x = submit(api);
        Node a = node("worker-a", ClusterSettings.Role.WORKER, onA, true);
        assertThat(onA.preparing.await(20, TimeUnit.SECONDS)).as("worker A claims the operation; %s", row(x.uuid())).isTrue();
        // While A prepares it, its only slot is taken by something else: the claimed operation will wait in A's queue.
        CountDownLatch slotTaken = new CountDownLatch(1);
        a.scheduler().submit(a.ops().create("a", OperationKind.INSTANCE, null, TestRequests.execution("true", null)), holdSlot(slotTaken));
        assertThat(slotTaken.await(20, TimeUnit.SECONDS)).isTrue();
        onA.proceed.countDown();
        await("the claimed operation waits in worker A's scheduler", PROMPTLY, () -> a.scheduler().queued() == 1, () -> row(x.uuid()));
        Node b = node("worker-b", ClusterSettings.Role.WORKER, new Factory("b", ranOn, false), true);

        long stopped = System.nanoTime();
        a.cluster().close(); // as ContreeServer.close: the cluster queue first, then the scheduler
        a.scheduler().shutdown(Duration.ofSeconds(10));
        await("worker B runs what A handed back", PROMPTLY,
                () -> b.ops().get(x.uuid()).map(o -> o.status() == OperationStatus.SUCCESS).orElse(false),
                () -> row(x.uuid()) + ", ran on " + ranOn);
        double seconds = (System.nanoTime() - stopped) / 1e9;
        assertThat(ranOn.get(x.uuid())).as("it ran once, on B").isEqualTo("b");
        assertThat(completions(b.ops(), x.uuid())).isEqualTo(1);
        System.out.printf("handed back on a clean shutdown: SUCCESS on worker B %.2f s after worker A stopped (lease %d s)%n",
                seconds, LEASE.toSeconds());
    }

    @Test
    void aClaimTheSchedulerRefusesGoesBackAtOnce() throws Exception {
        Map<String, String> ranOn = new ConcurrentHashMap<>();
        Factory onA = new Factory("a", ranOn, true);
        Node api = node("api", ClusterSettings.Role.API, null, true);
        Operation x = submit(api);
        Node a = node("worker-a", ClusterSettings.Role.WORKER, onA, true);
        assertThat(onA.preparing.await(20, TimeUnit.SECONDS)).as("worker A claims the operation; %s", row(x.uuid())).isTrue();
        Node b = node("worker-b", ClusterSettings.Role.WORKER, new Factory("b", ranOn, false), true);
        a.scheduler().shutdown(Duration.ofSeconds(1)); // A's scheduler refuses whatever comes now
        onA.proceed.countDown();
        await("worker B runs what A's scheduler refused", PROMPTLY,
                () -> b.ops().get(x.uuid()).map(o -> o.status() == OperationStatus.SUCCESS).orElse(false),
                () -> row(x.uuid()) + ", ran on " + ranOn);
        assertThat(ranOn.get(x.uuid())).isEqualTo("b");
        await("worker A holds nothing", PROMPTLY, () -> a.cluster().held() == 0, () -> "held " + a.cluster().held());
    }

    static long completions(OperationService ops, String uuid) {
        return ops.events(uuid, -1).stream().filter(e -> e.payload() instanceof EventPayload.Completion).count();
    }

    /**
     * Rows of a dead worker, lapsed, some of them over already (cancelled), swept by two nodes at once while the
     * worker itself, back for a moment, appends its cancelled runs' completion: every log ends with exactly one.
     */
    @Test
    void racingSweepersWriteOneCompletionEach() throws Exception {
        Node api = node("api", ClusterSettings.Role.API, null, false);
        Node s1 = node("sweeper-1", ClusterSettings.Role.API, null, false);
        Node s2 = node("sweeper-2", ClusterSettings.Role.API, null, false);
        Node dead = node("dead", ClusterSettings.Role.API, null, false);
        QueueRecords queue = api.store().queue().orElseThrow();
        QueueRecords.Claimant gone = new QueueRecords.Claimant("dead", "boot-1");
        int rounds = 10, rows = 30;
        for (int round = 0; round < rounds; round++) {
            List<String> cancelled = new ArrayList<>(), executing = new ArrayList<>();
            for (int i = 0; i < rows; i++) {
                Operation op = submit(api);
                assertThat(queue.claim(gone, EnumSet.of(OperationKind.INSTANCE), LEASE, 100, op.uuid()::equals)).isPresent();
                api.ops().transition(op.uuid(), EnumSet.of(OperationStatus.PENDING), OperationStatus.ASSIGNED);
                if (i % 2 == 0) {
                    api.ops().cancel("a", op.uuid());
                    cancelled.add(op.uuid());
                } else {
                    executing.add(op.uuid());
                }
            }
            queue.expire("dead");
            CyclicBarrier go = new CyclicBarrier(3);
            List<Throwable> errors = java.util.Collections.synchronizedList(new ArrayList<>());
            List<Thread> racers = new ArrayList<>();
            for (Runnable r : List.<Runnable>of(s1.cluster()::sweep, s2.cluster()::sweep,
                    () -> cancelled.forEach(u -> Scheduler.completionEvent(dead.ops(), u)))) {
                racers.add(Thread.ofPlatform().start(() -> {
                    try {
                        go.await(20, TimeUnit.SECONDS);
                        r.run();
                    } catch (Throwable t) {
                        errors.add(t);
                    }
                }));
            }
            for (Thread t : racers) t.join(60_000);
            assertThat(errors).isEmpty();
            for (String uuid : cancelled) {
                assertThat(completions(api.ops(), uuid)).as("round %d: completions of cancelled %s", round, uuid).isEqualTo(1);
            }
            for (String uuid : executing) {
                assertThat(api.ops().get(uuid).orElseThrow().status()).as("round %d: %s", round, row(uuid)).isEqualTo(OperationStatus.FAILED);
                assertThat(completions(api.ops(), uuid)).as("round %d: completions of lapsed %s", round, uuid).isEqualTo(1);
            }
            assertThat(queue.lapsed(1000)).as("round %d: nothing lapsed is left", round).isEmpty();
        }
    }

    // ------------------------------------------------------------------ an import's password in the queue row

    /** The row's stored secret: null once dropped, "no row" once the row is gone. */
    String secretOf(String uuid) {
        try (Connection c = pg.connect(TestPostgres.name(url)); Statement s = c.createStatement();
             var rs = s.executeQuery("SELECT secret FROM queue WHERE operation_uuid = '" + uuid + "'")) {
            return rs.next() ? String.valueOf(rs.getString(1)) : "no row";
        } catch (Exception e) {
            return "cannot read the row: " + e;
        }
    }

    /** A worker whose jobs do what the test says next. */
    static final class Scripted implements WorkQueue.JobFactory {
        volatile java.util.function.Function<Operation, Job> next;

        @Override
        public Job rebuild(Operation op, WorkQueue.StoredInput input) throws RequestRejected {
            if (next == null) throw new RequestRejected(RequestRejected.Reason.NOT_FOUND, "the image is gone");
            return next.apply(op);
        }
    }

    static Operation submit(Node node, String secret) throws RequestRejected {
        Operation op = node.ops().create("a", OperationKind.INSTANCE, null, TestRequests.execution("true", null));
        node.cluster().submit(node.cluster().reserve("a", 0), op, new WorkQueue.StoredInput(null, secret));
        return op;
    }

    /**
     * The password an import's queue row keeps is there while the operation waits (another worker may need it), dropped
     * from the row once its worker starts it, and gone with the row at every end: success, failure, a job that cannot be
     * rebuilt, a cancel while it waits or runs, a dead worker's lease lapsing (started or not). No log line names it.
     */
    @Test
    void anImportsPasswordLeavesTheQueueAtEveryEndAndIsNeverLogged() throws Exception {
        ch.qos.logback.classic.Logger root = (ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        ch.qos.logback.core.read.ListAppender<ch.qos.logback.classic.spi.ILoggingEvent> logged = new ch.qos.logback.core.read.ListAppender<>();
        logged.start();
        root.addAppender(logged);
        List<String> secrets = new ArrayList<>();
        try {
            Node api = node("api", ClusterSettings.Role.API, null, true);
            Scripted script = new Scripted();
            Node w = node("worker-a", ClusterSettings.Role.WORKER, script, true);
            java.util.function.Function<String, String> fresh = what -> {
                String s = "pw-" + what + "-" + java.util.UUID.randomUUID();
                secrets.add(s);
                return s;
            };
            java.util.function.Function<String, Supplier<String>> diag = uuid -> () -> row(uuid) + ", secret " + secretOf(uuid);

            // Succeeds: while it runs the row no longer holds the password; once it is over there is no row.
            CountDownLatch running = new CountDownLatch(1), finish = new CountDownLatch(1);
            script.next = op -> ctx -> {
                running.countDown();
                finish.await(30, TimeUnit.SECONDS);
                return success();
            };
            Operation ok = submit(api, fresh.apply("success"));
            assertThat(running.await(20, TimeUnit.SECONDS)).as(diag.apply(ok.uuid()).get()).isTrue();
            assertThat(secretOf(ok.uuid())).as("while it runs").isEqualTo("null");
            finish.countDown();
            await("the row goes", PROMPTLY, () -> secretOf(ok.uuid()).equals("no row"), diag.apply(ok.uuid()));

            // Fails, with the password in its message (as a registry's answer might quote it): no row, nothing logged.
            script.next = op -> ctx -> {
                throw new java.io.IOException("registry refused the login " + secrets.getLast());
            };
            Operation failed = submit(api, fresh.apply("failure"));
            await("the failed one's row goes", PROMPTLY, () -> secretOf(failed.uuid()).equals("no row"), diag.apply(failed.uuid()));
            secrets.removeLast(); // its message quoted it on purpose: only the stored ones must never be logged

            // Cannot be rebuilt here: fails, no row.
            script.next = null;
            Operation refused = submit(api, fresh.apply("refused"));
            await("the refused one's row goes", PROMPTLY, () -> secretOf(refused.uuid()).equals("no row")
                    && api.ops().get(refused.uuid()).orElseThrow().status() == OperationStatus.FAILED, diag.apply(refused.uuid()));

            // Cancelled while it runs.
            CountDownLatch started = new CountDownLatch(1);
            script.next = op -> holdSlot(started);
            Operation cancelledRunning = submit(api, fresh.apply("cancel-running"));
            assertThat(started.await(20, TimeUnit.SECONDS)).isTrue();
            api.ops().cancel("a", cancelledRunning.uuid());
            await("the cancelled run's row goes", PROMPTLY, () -> secretOf(cancelledRunning.uuid()).equals("no row"),
                    diag.apply(cancelledRunning.uuid()));

            // Cancelled while it waits (the worker stopped cleanly first, so nobody claims it).
            w.cluster().close();
            w.scheduler().shutdown(Duration.ofSeconds(5));
            Operation cancelledWaiting = submit(api, fresh.apply("cancel-waiting"));
            assertThat(secretOf(cancelledWaiting.uuid())).as("kept while it waits").isEqualTo(secrets.getLast());
            api.ops().cancel("a", cancelledWaiting.uuid());
            await("the cancelled waiting one's row goes", PROMPTLY, () -> secretOf(cancelledWaiting.uuid()).equals("no row"),
                    diag.apply(cancelledWaiting.uuid()));

            // A dead worker's lease lapses: on a started operation (it fails), and on a claimed one a client cancelled.
            QueueRecords queue = api.store().queue().orElseThrow();
            QueueRecords.Claimant gone = new QueueRecords.Claimant("dead", "boot-1");
            Operation started2 = submit(api, fresh.apply("lapsed-started"));
            assertThat(queue.claim(gone, EnumSet.of(OperationKind.INSTANCE), LEASE, 100, started2.uuid()::equals)).isPresent();
            api.ops().transition(started2.uuid(), EnumSet.of(OperationStatus.PENDING), OperationStatus.ASSIGNED);
            Operation claimedCancelled = submit(api, fresh.apply("lapsed-cancelled"));
            assertThat(queue.claim(gone, EnumSet.of(OperationKind.INSTANCE), LEASE, 100, claimedCancelled.uuid()::equals)).isPresent();
            api.ops().cancel("a", claimedCancelled.uuid());
            queue.expire("dead");
            api.cluster().sweep();
            assertThat(secretOf(started2.uuid())).as(diag.apply(started2.uuid()).get()).isEqualTo("no row");
            assertThat(api.ops().get(started2.uuid()).orElseThrow().status()).isEqualTo(OperationStatus.FAILED);
            assertThat(secretOf(claimedCancelled.uuid())).as(diag.apply(claimedCancelled.uuid()).get()).isEqualTo("no row");
            assertThat(completions(api.ops(), claimedCancelled.uuid())).isEqualTo(1);
        } finally {
            root.detachAppender(logged);
        }
        assertThat(logged.list).as("log lines were captured").isNotEmpty();
        for (var e : logged.list) {
            StringBuilder text = new StringBuilder(e.getFormattedMessage());
            for (var t = e.getThrowableProxy(); t != null; t = t.getCause()) text.append(' ').append(t.getMessage());
            for (String secret : secrets) assertThat(text.toString()).as("a log line names a stored password").doesNotContain(secret);
        }
    }

    // ------------------------------------------------------------------ a LISTEN session the network dropped

    List<Long> listenBackends() throws Exception {
        List<Long> pids = new ArrayList<>();
        try (Connection c = pg.connect(TestPostgres.name(url)); Statement s = c.createStatement();
             var rs = s.executeQuery("SELECT pid FROM pg_stat_activity WHERE application_name = 'contree-listen'"
                     + " AND datname = current_database()")) {
            while (rs.next()) pids.add(rs.getLong(1));
        }
        return pids;
    }

    static void signal(String sig, long pid) throws Exception {
        Process p = new ProcessBuilder("kill", "-" + sig, Long.toString(pid)).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor()).as("kill -%s %d: %s", sig, pid, out).isZero();
    }

    /**
     * The server side of every LISTEN session stops answering (its backend is SIGSTOPped: the TCP connection stays up,
     * nothing comes back, as when a network drops a connection without a word). The periodic check notices, the
     * sessions are opened again, and work queued after that wakes the worker through its notification (well before
     * the 30 s re-check).
     */
    @Test
    void aListenSessionThatStoppedAnsweringIsOpenedAgain() throws Exception {
        Map<String, String> ranOn = new ConcurrentHashMap<>();
        Node api = node("api", ClusterSettings.Role.API, null, true);
        Node w = node("worker-a", ClusterSettings.Role.WORKER, new Factory("a", ranOn, false), true);
        List<Long> stopped = listenBackends();
        assertThat(stopped).as("one LISTEN session per node").hasSize(2);
        int before = w.cluster().listenReconnects();
        long t0 = System.nanoTime();
        try {
            for (long pid : stopped) signal("STOP", pid);
            await("the worker's LISTEN session is opened again", Duration.ofSeconds(60),
                    () -> w.cluster().listenReconnects() > before, () -> "reconnects " + w.cluster().listenReconnects());
            double detected = (System.nanoTime() - t0) / 1e9;
            long t1 = System.nanoTime();
            Operation x = submit(api);
            await("the worker runs work queued after that, woken by its notification", Duration.ofSeconds(10),
                    () -> w.ops().get(x.uuid()).map(o -> o.status() == OperationStatus.SUCCESS).orElse(false),
                    () -> row(x.uuid()) + ", ran on " + ranOn);
            System.out.printf("a LISTEN session that stopped answering: opened again after %.1f s; work queued then ran %.2f s"
                    + " after submission%n", detected, (System.nanoTime() - t1) / 1e9);
        } finally {
            for (long pid : stopped) {
                signal("CONT", pid);
                try (Connection c = pg.connect(TestPostgres.name(url)); Statement s = c.createStatement()) {
                    s.execute("SELECT pg_terminate_backend(" + pid + ")");
                }
            }
        }
    }
}
