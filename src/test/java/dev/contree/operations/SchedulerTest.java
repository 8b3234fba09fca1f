package dev.contree.operations;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.contree.images.ImageService;
import dev.contree.store.Database;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
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
    Database db;
    OperationService ops;

    @BeforeEach
    void open() {
        db = Database.open(dir.resolve("t.db"));
        ops = new OperationService(db);
        db.write(c -> {
            for (String a : List.of("a", "b")) {
                c.createStatement().execute("INSERT INTO accounts (id, name, created_at) VALUES ('" + a + "', '" + a + "', 0)");
            }
            return null;
        });
    }

    @AfterEach
    void close() {
        db.close();
    }

    Operation op(String account) {
        return ops.create(account, OperationKind.INSTANCE, null, JsonNodeFactory.instance.objectNode());
    }

    static Job.Result success() {
        return new Job.Result(new OperationService.Completion(OperationStatus.SUCCESS, null, null, null, null, null, null, null), null);
    }

    @Test
    void accountsTakeTurns() throws Exception {
        List<String> order = Collections.synchronizedList(new ArrayList<>());
        CountDownLatch gate = new CountDownLatch(1);
        CountDownLatch all = new CountDownLatch(7);
        try (Scheduler s = new Scheduler(ops, new ImageService(db), 1)) {
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
        try (Scheduler s = new Scheduler(ops, new ImageService(db), 3)) {
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
        try (Scheduler s = new Scheduler(ops, new ImageService(db), 1)) {
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
}
