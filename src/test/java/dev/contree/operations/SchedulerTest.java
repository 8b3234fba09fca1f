package dev.contree.operations;

import dev.contree.store.sqlite.SqliteStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/** The scheduler with a real SQLite store and jobs that record when they ran. */
class SchedulerTest {
    @TempDir Path dir;
    SqliteStore db;
    OperationService ops;

    @BeforeEach
    void open() throws Exception {
        db = SqliteStore.open(dir.resolve("t.db"));
        ops = new OperationService(db);
        // Accounts with short ids the tests name (the store itself only makes accounts with a token).
        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + dir.resolve("t.db"));
             var insert = c.prepareStatement("INSERT INTO accounts (id, name, created_at) VALUES (?, ?, 0)")) {
            for (String a : List.of("a", "b", "c")) {
                insert.setString(1, a);
                insert.setString(2, a);
                insert.executeUpdate();
            }
        }
    }

    @AfterEach
    void close() {
        db.close();
    }

    Operation op(String account) {
        return ops.create(account, OperationKind.INSTANCE, null, dev.contree.TestRequests.execution("true", null));
    }

    static JobOutcome success() {
        return new JobOutcome.Succeeded(new JobOutcome.Discarded(), 0, null, null);
    }

    @Test
    void accountsTakeTurns() throws Exception {
        List<String> order = Collections.synchronizedList(new ArrayList<>());
        CountDownLatch gate = new CountDownLatch(1);
        CountDownLatch all = new CountDownLatch(7);
        try (Scheduler s = new Scheduler(ops, 1)) {
            // The first job holds the only slot until everything is queued.
            s.submit(op("a"), ctx -> {
                gate.await();
                order.add("a0");
                all.countDown();
                return success();
            });
            for (int i = 1; i <= 5; i++) {
                String name = "a" + i;
                s.submit(op("a"), ctx -> { order.add(name); all.countDown(); return success(); });
            }
            s.submit(op("b"), ctx -> { order.add("b0"); all.countDown(); return success(); });
            gate.countDown();
            assertThat(all.await(10, TimeUnit.SECONDS)).isTrue();
        }
        // Bob's single job does not wait behind Alice's whole queue.
        assertThat(order.indexOf("b0")).isLessThanOrEqualTo(2);
    }

    @Test
    void concurrencyLimitHolds() throws Exception {
        AtomicInteger running = new AtomicInteger();
        AtomicInteger peak = new AtomicInteger();
        List<Operation> submitted = new ArrayList<>();
        try (Scheduler s = new Scheduler(ops, 3)) {
            for (int i = 0; i < 12; i++) {
                Operation o = op(i % 2 == 0 ? "a" : "b");
                submitted.add(o);
                s.submit(o, ctx -> {
                    ctx.executing();
                    peak.accumulateAndGet(running.incrementAndGet(), Math::max);
                    Thread.sleep(50);
                    running.decrementAndGet();
                    return success();
                });
            }
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (submitted.stream().anyMatch(o -> !ops.get(o.uuid()).orElseThrow().status().terminal())) {
                assertThat(System.nanoTime()).isLessThan(deadline);
                Thread.sleep(20);
            }
        }
        assertThat(peak.get()).isEqualTo(3);
        for (Operation o : submitted) {
            Operation done = ops.get(o.uuid()).orElseThrow();
            assertThat(done.status()).isEqualTo(OperationStatus.SUCCESS);
            assertThat(done.startedAt()).isNotNull();
            assertThat(ops.events(o.uuid(), -1)).extracting(OperationEvent::type).containsExactly("completion");
        }
    }

    @Test
    void cancelWhileQueuedNeverRunsAndFailingJobsAreFailed() throws Exception {
        CountDownLatch gate = new CountDownLatch(1);
        AtomicInteger ran = new AtomicInteger();
        Operation queued = op("a");
        try (Scheduler s = new Scheduler(ops, 1)) {
            Operation blocker = op("a");
            s.submit(blocker, ctx -> { gate.await(); return success(); });
            s.submit(queued, ctx -> { ran.incrementAndGet(); return success(); });
            Operation failing = op("b");
            s.submit(failing, ctx -> { throw new IllegalStateException("boom: disk on fire"); });
            assertThat(ops.cancel("a", queued.uuid())).isEqualTo(OperationService.CancelOutcome.CANCELLED);
            gate.countDown();
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (!ops.get(failing.uuid()).orElseThrow().status().terminal()) {
                assertThat(System.nanoTime()).isLessThan(deadline);
                Thread.sleep(20);
            }
            assertThat(ops.get(failing.uuid()).orElseThrow().error()).isEqualTo("boom: disk on fire");
            assertThat(ops.get(failing.uuid()).orElseThrow().status()).isEqualTo(OperationStatus.FAILED);
        }
        assertThat(ran.get()).isZero();
        assertThat(ops.get(queued.uuid()).orElseThrow().status()).isEqualTo(OperationStatus.CANCELLED);
    }

    /**
     * The hog: account a fills the server with runs that never end on their own. Account b's run still starts at once,
     * because no account holds more than its share of slots (4 slots, 3 per account).
     */
    @Test
    void oneAccountCannotHoldEverySlot() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger aRunning = new AtomicInteger();
        AtomicInteger aPeak = new AtomicInteger();
        CountDownLatch bStarted = new CountDownLatch(1);
        try (Scheduler s = new Scheduler(ops, 4, 3)) {
            for (int i = 0; i < 8; i++) {
                s.submit(op("a"), ctx -> {
                    aPeak.accumulateAndGet(aRunning.incrementAndGet(), Math::max);
                    release.await();
                    aRunning.decrementAndGet();
                    return success();
                });
            }
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (aRunning.get() < 3) {
                assertThat(System.nanoTime()).isLessThan(deadline);
                Thread.sleep(10);
            }
            Thread.sleep(200); // a fourth of a's runs would have started by now if it could
            assertThat(aRunning.get()).as("a holds at most its share").isEqualTo(3);
            s.submit(op("b"), ctx -> { bStarted.countDown(); return success(); });
            assertThat(bStarted.await(5, TimeUnit.SECONDS)).as("b starts while a's runs still hold their slots").isTrue();
            release.countDown();
        }
        assertThat(aPeak.get()).isEqualTo(3);
    }

    /** With one tenant there is nobody to keep a reserve for: its one account may use every slot. */
    @Test
    void aSingleTenantUsesEverySlot() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger running = new AtomicInteger();
        try (Scheduler s = new Scheduler(ops, 4, 3, () -> 1)) {
            for (int i = 0; i < 6; i++) {
                s.submit(op("a"), ctx -> { running.incrementAndGet(); release.await(); return success(); });
            }
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (running.get() < 4) {
                assertThat(System.nanoTime()).as("all 4 slots in use").isLessThan(deadline);
                Thread.sleep(10);
            }
            Thread.sleep(200);
            assertThat(running.get()).as("never more than the slots").isEqualTo(4);
            release.countDown();
        }
    }

    /**
     * Slots are shared between the accounts that wait, not taken in queue order: when a slot frees it goes to the
     * waiting account holding the fewest. Account a holds 3 of 4 slots; b and c queue work; as a's runs end, the
     * freed slots go to b and c before a gets any back.
     */
    @Test
    void freedSlotsGoToTheAccountHoldingTheFewest() throws Exception {
        List<String> started = Collections.synchronizedList(new ArrayList<>());
        List<CountDownLatch> aRuns = new ArrayList<>();
        CountDownLatch others = new CountDownLatch(1);
        try (Scheduler s = new Scheduler(ops, 4, 3)) {
            for (int i = 0; i < 6; i++) {
                CountDownLatch done = new CountDownLatch(1);
                aRuns.add(done);
                String name = "a" + i;
                s.submit(op("a"), ctx -> { started.add(name); done.await(); return success(); });
            }
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (started.size() < 3) {
                assertThat(System.nanoTime()).isLessThan(deadline);
                Thread.sleep(10);
            }
            for (String acct : List.of("b", "c")) {
                for (int i = 0; i < 2; i++) {
                    String name = acct + i;
                    s.submit(op(acct), ctx -> { started.add(name); others.await(); return success(); });
                }
            }
            while (started.size() < 4) { // the fourth slot: b or c
                assertThat(System.nanoTime()).isLessThan(deadline);
                Thread.sleep(10);
            }
            // One slot at a time: two slots freed together are dispatched together, and which of their jobs records
            // its start first would be a race of threads, not the scheduler's choice.
            aRuns.get(0).countDown();
            while (started.size() < 5) {
                assertThat(System.nanoTime()).isLessThan(deadline);
                Thread.sleep(10);
            }
            aRuns.get(1).countDown();
            while (started.size() < 6) {
                assertThat(System.nanoTime()).isLessThan(deadline);
                Thread.sleep(10);
            }
            Thread.sleep(100);
            // b and c each got a slot before a got one back; then a (earliest in the rotation) takes the tie at 1-1-1.
            assertThat(started.subList(3, 5)).as(started.toString()).noneMatch(n -> n.startsWith("a"))
                    .anyMatch(n -> n.startsWith("b")).anyMatch(n -> n.startsWith("c"));
            others.countDown();
            aRuns.forEach(CountDownLatch::countDown);
        }
    }
}
