package dev.contree.store.sqlite;

import dev.contree.operations.EventPayload;
import dev.contree.operations.JobOutcome;
import dev.contree.operations.Operation;
import dev.contree.operations.OperationEvent;
import dev.contree.operations.OperationKind;
import dev.contree.operations.OperationService;
import dev.contree.operations.OperationStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Events and the move to EXECUTING are written in groups (deferred): with a real SQLite file, they become readable
 * and announced in id order, each announced only once another connection can read it; a finish writes every earlier
 * event and the completion in its own transaction; one failing deferred write takes nothing else with it.
 */
class GroupCommitTest {
    @TempDir Path dir;
    SqliteStore store;
    OperationService ops;
    String account;

    @BeforeEach
    void open() {
        store = SqliteStore.open(dir.resolve("t.db"));
        ops = new OperationService(store);
        account = store.tokens().register("hash", "acct", "t", null).accountId();
    }

    @AfterEach
    void close() {
        store.close();
    }

    /** A connection of its own: it sees what was committed, nothing else. */
    Connection other() throws Exception {
        return DriverManager.getConnection("jdbc:sqlite:" + dir.resolve("t.db"));
    }

    static List<Long> storedIds(Connection c, String op) throws Exception {
        List<Long> ids = new ArrayList<>();
        try (var ps = c.prepareStatement("SELECT id FROM operation_events WHERE operation_uuid = ? ORDER BY id")) {
            ps.setString(1, op);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) ids.add(rs.getLong(1));
            }
        }
        return ids;
    }

    Operation executing() {
        Operation op = ops.create(account, OperationKind.INSTANCE, null, dev.contree.TestRequests.execution("true", null));
        assertThat(ops.transition(op.uuid(), EnumSet.of(OperationStatus.PENDING), OperationStatus.ASSIGNED)).isTrue();
        ops.executingLater(op.uuid());
        return op;
    }

    static EventPayload.Output out(String text) {
        return new EventPayload.Output(EventPayload.Stream.STDOUT, text.getBytes());
    }

    @Test
    void eventsOfConcurrentWritersAreAnnouncedInIdOrderOnceAnotherConnectionCanReadThem() throws Exception {
        Operation op = executing();
        int n = 200;
        List<Long> announced = Collections.synchronizedList(new ArrayList<>());
        List<Long> unreadableWhenAnnounced = Collections.synchronizedList(new ArrayList<>());
        CountDownLatch all = new CountDownLatch(n);
        try (Connection reader = other()) {
            ops.onEvent(e -> {
                try {
                    if (!storedIds(reader, op.uuid()).contains(e.id())) unreadableWhenAnnounced.add(e.id());
                } catch (Exception ex) {
                    unreadableWhenAnnounced.add(-1L);
                }
                announced.add(e.id());
                all.countDown();
            });
            // Two writers at once, as a sandbox's stdout and stderr readers are.
            Thread a = Thread.ofVirtual().start(() -> { for (int i = 0; i < n / 2; i++) ops.appendEvent(op.uuid(), 1, out("a" + i)); });
            Thread b = Thread.ofVirtual().start(() -> { for (int i = 0; i < n / 2; i++) ops.appendEvent(op.uuid(), 1, out("b" + i)); });
            a.join();
            b.join();
            // Nothing else writes: the group writer commits them by itself.
            assertThat(all.await(30, TimeUnit.SECONDS)).isTrue();
        }
        List<Long> expected = new ArrayList<>();
        for (long i = 0; i < n; i++) expected.add(i);
        assertThat(announced).containsExactlyElementsOf(expected);
        assertThat(unreadableWhenAnnounced).isEmpty();
        assertThat(ops.events(op.uuid(), -1).stream().map(OperationEvent::id).toList()).containsExactlyElementsOf(expected);
        // Each writer's own events kept their order too.
        List<String> texts = ops.events(op.uuid(), -1).stream().map(e -> new String(((EventPayload.Output) e.payload()).bytes())).toList();
        assertThat(texts.stream().filter(t -> t.startsWith("a")).toList())
                .containsExactlyElementsOf(java.util.stream.IntStream.range(0, n / 2).mapToObj(i -> "a" + i).toList());
    }

    @Test
    void aFinishWritesEveryEarlierEventAndTheCompletionBeforeItReturns() throws Exception {
        Operation op = executing();
        ops.appendEvent(op.uuid(), 0, new EventPayload.Init(Instant.now(), "/.contree/init", false, 1));
        ops.appendEvent(op.uuid(), 1, out("hello\n"));
        ops.appendEvent(op.uuid(), 0, new EventPayload.Shutdown(Instant.now(), EventPayload.Shutdown.Reason.JOB_COMPLETE));
        assertThat(ops.complete(op.uuid(), new JobOutcome.Succeeded(new JobOutcome.Discarded(), 0, null, null))).isTrue();
        // Read by another connection right away: committed, not merely queued.
        try (Connection c = other()) {
            assertThat(storedIds(c, op.uuid())).containsExactly(0L, 1L, 2L, 3L);
            try (var ps = c.prepareStatement("SELECT status, started_at, finished_at FROM operations WHERE uuid = ?")) {
                ps.setString(1, op.uuid());
                try (ResultSet rs = ps.executeQuery()) {
                    assertThat(rs.next()).isTrue();
                    assertThat(rs.getString(1)).isEqualTo("SUCCESS");
                    assertThat(rs.getObject(2)).as("started_at of the deferred move to EXECUTING").isNotNull();
                    assertThat(rs.getLong(3)).isGreaterThanOrEqualTo(rs.getLong(2));
                }
            }
        }
        OperationEvent last = ops.events(op.uuid(), -1).getLast();
        assertThat(last.payload()).isInstanceOf(EventPayload.Completion.class);
        EventPayload.Completion done = (EventPayload.Completion) last.payload();
        assertThat(done.status()).isEqualTo(OperationStatus.SUCCESS);
        assertThat(done.durationMillis()).isEqualTo(Math.round(ops.get(op.uuid()).orElseThrow().durationSeconds() * 1000));
    }

    @Test
    void aLostFinishKeepsTheDeferredWritesThatRodeInItsTransaction() throws Exception {
        Operation op = executing();
        assertThat(ops.cancel(account, op.uuid())).isEqualTo(OperationService.CancelOutcome.CANCELLED);
        ops.appendEvent(op.uuid(), 1, out("late\n"));
        assertThat(ops.complete(op.uuid(), new JobOutcome.Succeeded(new JobOutcome.Discarded(), 0, null, null))).isFalse();
        try (Connection c = other()) {
            assertThat(storedIds(c, op.uuid())).containsExactly(0L); // the output, written though the finish lost
        }
        Operation cancelled = ops.get(op.uuid()).orElseThrow();
        assertThat(cancelled.status()).isEqualTo(OperationStatus.CANCELLED);
        assertThat(cancelled.startedAt()).as("EXECUTING was written before the cancel").isNotNull();
    }

    @Test
    void aFailingDeferredWriteIsDroppedAlone() throws Exception {
        Operation op = executing();
        try (Connection c = other(); var ps = c.prepareStatement(
                "INSERT INTO operation_events (operation_uuid, id, ts, spid, type, data) VALUES (?, 1, 0, 1, 'stdout', '{}')")) {
            ps.setString(1, op.uuid());
            ps.executeUpdate(); // takes the id the second append will get
        }
        ops.appendEvent(op.uuid(), 1, out("zero\n"));
        ops.appendEvent(op.uuid(), 1, out("one\n")); // its insert fails: the id is taken
        ops.appendEvent(op.uuid(), 1, out("two\n"));
        assertThat(ops.complete(op.uuid(), new JobOutcome.Failed("x"))).isTrue();
        try (Connection c = other()) {
            assertThat(storedIds(c, op.uuid())).containsExactly(0L, 1L, 2L, 3L);
        }
        List<OperationEvent> events = ops.events(op.uuid(), -1);
        assertThat(new String(((EventPayload.Output) events.get(0).payload()).bytes())).isEqualTo("zero\n");
        assertThat(new String(((EventPayload.Output) events.get(2).payload()).bytes())).isEqualTo("two\n");
        assertThat(events.get(3).payload()).isInstanceOf(EventPayload.Completion.class);
    }

    @Test
    void aReadOfTheLogSeesEveryEventAppendedBeforeIt() throws Exception {
        Operation op = executing();
        for (int i = 0; i < 3; i++) {
            ops.appendEvent(op.uuid(), 1, out("line " + i + "\n"));
            assertThat(ops.events(op.uuid(), -1)).hasSize(i + 1); // at once: the read commits what was deferred
        }
        try (Connection c = other()) {
            assertThat(storedIds(c, op.uuid())).containsExactly(0L, 1L, 2L);
        }
    }

    @Test
    void whatWasDeferredIsWrittenAtClose() throws Exception {
        Operation op = executing();
        ops.appendEvent(op.uuid(), 1, out("kept\n"));
        store.close();
        store = SqliteStore.open(dir.resolve("t.db"));
        ops = new OperationService(store);
        assertThat(ops.events(op.uuid(), -1)).hasSize(1);
        assertThat(ops.get(op.uuid()).orElseThrow().status()).isEqualTo(OperationStatus.EXECUTING);
    }

    @Test
    void readersSeeEachNewWriteThroughTheirKeptStatements() {
        Operation op = ops.create(account, OperationKind.INSTANCE, null, dev.contree.TestRequests.execution("true", null));
        // More reads than reader connections between writes: every reader reuses its statement and must not keep an
        // old snapshot with it.
        for (int i = 0; i < 8; i++) assertThat(ops.get(op.uuid()).orElseThrow().status()).isEqualTo(OperationStatus.PENDING);
        ops.transition(op.uuid(), EnumSet.of(OperationStatus.PENDING), OperationStatus.ASSIGNED);
        for (int i = 0; i < 8; i++) assertThat(ops.get(op.uuid()).orElseThrow().status()).isEqualTo(OperationStatus.ASSIGNED);
        ops.complete(op.uuid(), new JobOutcome.Failed("x"));
        for (int i = 0; i < 8; i++) assertThat(ops.get(op.uuid()).orElseThrow().status()).isEqualTo(OperationStatus.FAILED);
    }
}
