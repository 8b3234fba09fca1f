package dev.contree.store.sqlite;

import dev.contree.images.Image;
import dev.contree.operations.EventPayload;
import dev.contree.operations.JobOutcome;
import dev.contree.operations.Operation;
import dev.contree.operations.OperationEvent;
import dev.contree.operations.OperationKind;
import dev.contree.operations.OperationRequest;
import dev.contree.operations.OperationService;
import dev.contree.operations.OperationStatus;
import dev.contree.store.OperationRecords;
import dev.contree.store.Page;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.HashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

final class SqliteOperations implements OperationRecords {
    private static final Set<OperationStatus> ACTIVE = EnumSet.copyOf(
            Arrays.stream(OperationStatus.values()).filter(s -> !s.terminal()).toList());

    private final Database db;
    /**
     * The next event id per open log, so an append does not look up the log's last id each time; guarded by
     * {@link #ids}, which also keeps the deferred inserts of one log in id order.
     */
    private final Map<String, Long> nextEventId = new HashMap<>();
    private final ReentrantLock ids = new ReentrantLock();
    /** Per log, its appended events not yet committed; guarded by {@link #ids}. A read of the log commits them first. */
    private final Map<String, Integer> uncommitted = new HashMap<>();
    private final List<Consumer<OperationEvent>> committedListeners = new CopyOnWriteArrayList<>();

    SqliteOperations(Database db) {
        this.db = db;
    }

    @Override
    public Operation create(String accountId, OperationKind kind, String imageUuid, OperationRequest request) {
        String uuid = UUID.randomUUID().toString();
        Instant created = Times.now();
        OperationRequest stored = OperationCodec.stored(request);
        db.write(c -> Sql.update(c, "INSERT INTO operations (uuid, account_id, kind, status, created_at, image_uuid, metadata) VALUES (?,?,?,?,?,?,?)",
                uuid, accountId, kind.wire, OperationStatus.PENDING.name(), Times.toMicros(created), imageUuid,
                OperationCodec.metadata(stored, null)));
        ids.lock();
        try {
            nextEventId.put(uuid, 0L); // a new log: its first append needs no lookup
        } finally {
            ids.unlock();
        }
        // What a read of the row would give, without reading it back.
        return new Operation(uuid, accountId, kind, OperationStatus.PENDING, null, created, null, null, imageUuid, null, null,
                null, null, null, stored, null);
    }

    @Override
    public Optional<Operation> get(String uuid) {
        return Optional.ofNullable(db.read(c -> get(c, uuid)));
    }

    @Override
    public List<Operation> list(String accountId, OperationService.Query q, Page page) {
        Where where = new Where().and("account_id = ?", accountId);
        if (q.status() != null) where.and("status = ?", q.status().name());
        if (q.kind() != null) where.and("kind = ?", q.kind().wire);
        where.range("created_at", q.range());
        return db.read(c -> Sql.query(c, "SELECT * FROM operations WHERE " + where.sql()
                + " ORDER BY created_at DESC, uuid DESC LIMIT ? OFFSET ?", SqliteOperations::row, where.params(page.limit(), page.offset())));
    }

    @Override
    public Map<String, Long> countByStatus(String accountId) {
        Map<String, Long> out = new LinkedHashMap<>();
        db.read(c -> Sql.query(c, "SELECT status, COUNT(*) AS n FROM operations WHERE account_id = ? GROUP BY status ORDER BY status",
                rs -> out.put(rs.getString("status"), rs.getLong("n")), accountId));
        return out;
    }

    @Override
    public List<Operation> active() {
        List<String> names = ACTIVE.stream().map(Enum::name).toList();
        return db.read(c -> Sql.query(c, "SELECT * FROM operations WHERE status IN (" + Sql.placeholders(names.size())
                + ") ORDER BY created_at, uuid", SqliteOperations::row, names.toArray()));
    }

    @Override
    public boolean transition(String uuid, Set<OperationStatus> from, OperationStatus to) {
        return db.write(c -> transition(c, uuid, from, to));
    }

    @Override
    public void executingLater(String uuid) {
        long now = Times.toMicros(Times.now());
        db.defer(c -> Sql.update(c, "UPDATE operations SET status = ?, started_at = COALESCE(started_at, ?) WHERE uuid = ? AND status = ?",
                OperationStatus.EXECUTING.name(), now, uuid, OperationStatus.ASSIGNED.name()));
    }

    private static boolean transition(Connection c, String uuid, Set<OperationStatus> from, OperationStatus to) throws SQLException {
        if (from.isEmpty()) return false;
        long now = Times.toMicros(Times.now());
        List<Object> params = new ArrayList<>(List.of(to.name()));
        String stamps = "";
        if (to == OperationStatus.EXECUTING) {
            stamps = ", started_at = COALESCE(started_at, ?)";
            params.add(now);
        } else if (to.terminal()) {
            stamps = ", finished_at = ?";
            params.add(now);
        }
        params.add(uuid);
        from.forEach(s -> params.add(s.name()));
        return Sql.update(c, "UPDATE operations SET status = ?" + stamps + " WHERE uuid = ? AND status IN ("
                + Sql.placeholders(from.size()) + ")", params.toArray()) == 1;
    }

    /**
     * Records the outcome if the operation is still active and appends its completion event, inside the caller's
     * transaction ({@link SqliteStore#finish}); the event is announced once that commits. Null, and nothing
     * recorded, if the operation already ended.
     *
     * @param created the image recorded in this transaction for a {@link JobOutcome.Created} outcome, else null
     */
    OperationEvent finish(Connection c, String uuid, JobOutcome outcome, Image created) throws SQLException {
        String error = null, resultImage = null, resultTag = null, result = null;
        Long imageSize = null, memory = null;
        Double cpu = null;
        OperationStatus status;
        switch (outcome) {
            case JobOutcome.Failed f -> {
                status = OperationStatus.FAILED;
                error = f.reason();
            }
            case JobOutcome.Cancelled x -> {
                status = OperationStatus.CANCELLED;
                error = x.reason();
            }
            case JobOutcome.Succeeded done -> {
                status = OperationStatus.SUCCESS;
                imageSize = done.imageSize();
                switch (done.image()) {
                    case JobOutcome.Created n -> {
                        if (created == null) throw new IllegalArgumentException("a created image is recorded with its outcome");
                        resultImage = created.uuid();
                        resultTag = n.image().tag() != null ? n.image().tag() : created.tag();
                    }
                    case JobOutcome.Unchanged u -> resultImage = u.imageUuid();
                    case JobOutcome.Discarded d -> { }
                }
                if (done.usage() != null) {
                    cpu = done.usage().cpuSeconds();
                    memory = done.usage().memoryKiB();
                }
                if (done.result() != null) result = OperationCodec.result(done.result());
            }
        }
        if (!transition(c, uuid, ACTIVE, status)) return null;
        // The result goes into the stored metadata in place: the request there is not read back and written again.
        Sql.update(c, "UPDATE operations SET error = ?, result_image_uuid = ?, result_tag = ?, image_size = ?, consumed_cpu = ?,"
                        + " consumed_memory = ?, metadata = CASE WHEN ? IS NULL THEN metadata ELSE json_set(metadata, '$.result', json(?)) END"
                        + " WHERE uuid = ?",
                error, resultImage, resultTag, imageSize, cpu, memory, result, result, uuid);
        Operation op = Sql.one(c, "SELECT " + SUMMARY_COLUMNS + " FROM operations WHERE uuid = ?", SqliteOperations::summary, uuid);
        OperationEvent completion = insertNow(c, uuid, 0, EventPayload.Completion.of(op));
        db.afterCommit(() -> announce(completion));
        return completion;
    }

    @Override
    public boolean cancel(String uuid, String reason) {
        return db.write(c -> {
            if (!transition(c, uuid, ACTIVE, OperationStatus.CANCELLED)) return false;
            Sql.update(c, "UPDATE operations SET error = ? WHERE uuid = ?", reason, uuid);
            return true;
        });
    }

    /**
     * Deferred: written with the next group of writes, announced to {@link #onCommitted} listeners once committed.
     * A completion is written before this returns: it is the log's last event, and followers wait for it.
     */
    @Override
    public OperationEvent append(String operationUuid, int spid, EventPayload payload) {
        String data = OperationCodec.eventData(payload);
        OperationEvent event;
        ids.lock();
        try {
            event = new OperationEvent(operationUuid, nextId(operationUuid), Times.now(), spid, payload);
            uncommitted.merge(operationUuid, 1, Integer::sum);
            // Queued under the id lock: the inserts of one log are queued, and so committed, in id order.
            db.defer(new Database.Deferred() {
                @Override
                public void run(Connection c) throws SQLException {
                    insert(c, event, data);
                }

                @Override
                public void committed() {
                    ids.lock();
                    try {
                        uncommitted.computeIfPresent(operationUuid, (k, n) -> n > 1 ? n - 1 : null);
                    } finally {
                        ids.unlock();
                    }
                    announce(event);
                }
            });
        } finally {
            ids.unlock();
        }
        if (payload instanceof EventPayload.Completion) db.flush();
        return event;
    }

    /** An event written in the caller's transaction after every event deferred so far, with the log's next id. */
    private OperationEvent insertNow(Connection c, String operationUuid, int spid, EventPayload payload) throws SQLException {
        ids.lock();
        try {
            db.runDeferredHere(); // an append that raced with this one is written before it, as its lower id says
            OperationEvent event = new OperationEvent(operationUuid, nextId(operationUuid), Times.now(), spid, payload);
            insert(c, event, OperationCodec.eventData(payload));
            return event;
        } finally {
            ids.unlock();
        }
    }

    /** The log's next event id, counted from then on; called with {@link #ids} held. */
    private long nextId(String operationUuid) {
        Long next = nextEventId.get(operationUuid);
        if (next == null) {
            // The log's first append in this process (a log it did not create): every earlier event is committed.
            next = db.read(c -> Sql.one(c, "SELECT COALESCE(MAX(id) + 1, 0) FROM operation_events WHERE operation_uuid = ?",
                    rs -> rs.getLong(1), operationUuid));
        }
        nextEventId.put(operationUuid, next + 1);
        return next;
    }

    private static void insert(Connection c, OperationEvent e, String data) throws SQLException {
        Sql.update(c, "INSERT INTO operation_events (operation_uuid, id, ts, spid, type, data) VALUES (?,?,?,?,?,?)",
                e.operationUuid(), e.id(), Times.toMicros(e.ts()), e.spid(), e.payload().type(), data);
    }

    private void announce(OperationEvent event) {
        for (Consumer<OperationEvent> l : committedListeners) l.accept(event);
    }

    @Override
    public void onCommitted(Consumer<OperationEvent> listener) {
        committedListeners.add(listener);
    }

    @Override
    public void logClosed(String operationUuid) {
        ids.lock();
        try {
            nextEventId.remove(operationUuid);
            uncommitted.remove(operationUuid);
        } finally {
            ids.unlock();
        }
    }

    /** A read of the log sees every event appended before it: those still deferred are committed first. */
    @Override
    public List<OperationEvent> events(String operationUuid, long afterId) {
        flushDeferred(operationUuid);
        return db.read(c -> Sql.query(c, "SELECT * FROM operation_events WHERE operation_uuid = ? AND id > ? ORDER BY id",
                rs -> event(operationUuid, rs), operationUuid, afterId));
    }

    @Override
    public List<OperationEvent> events(String operationUuid, long afterId, int spid) {
        flushDeferred(operationUuid);
        return db.read(c -> Sql.query(c,
                "SELECT * FROM operation_events WHERE operation_uuid = ? AND id > ? AND spid = ? ORDER BY id",
                rs -> event(operationUuid, rs), operationUuid, afterId, spid));
    }

    /** A read of a log sees every event appended before it: the log's deferred events are committed first. */
    private void flushDeferred(String operationUuid) {
        boolean pending;
        ids.lock();
        try {
            pending = uncommitted.containsKey(operationUuid);
        } finally {
            ids.unlock();
        }
        if (pending) db.flush();
    }

    private static OperationEvent event(String operationUuid, ResultSet rs) throws SQLException {
        return new OperationEvent(operationUuid, rs.getLong("id"), Sql.instant(rs, "ts"), rs.getInt("spid"),
                OperationCodec.event(rs.getString("type"), rs.getString("data")));
    }

    private static Operation get(Connection c, String uuid) throws SQLException {
        return Sql.one(c, "SELECT * FROM operations WHERE uuid = ?", SqliteOperations::row, uuid);
    }

    /** The columns of an operation but its metadata: what a completion event says. */
    private static final String SUMMARY_COLUMNS = "uuid, account_id, kind, status, error, created_at, started_at, finished_at,"
            + " image_uuid, result_image_uuid, result_tag, image_size, consumed_cpu, consumed_memory";

    /** An operation from {@link #SUMMARY_COLUMNS}: no request, no result. */
    private static Operation summary(ResultSet rs) throws SQLException {
        return new Operation(rs.getString("uuid"), rs.getString("account_id"), OperationKind.parse(rs.getString("kind")),
                OperationStatus.valueOf(rs.getString("status")), rs.getString("error"), Sql.instant(rs, "created_at"),
                Sql.instant(rs, "started_at"), Sql.instant(rs, "finished_at"), rs.getString("image_uuid"),
                rs.getString("result_image_uuid"), rs.getString("result_tag"), Sql.nullableLong(rs, "image_size"),
                Sql.nullableDouble(rs, "consumed_cpu"), Sql.nullableLong(rs, "consumed_memory"), null, null);
    }

    private static Operation row(ResultSet rs) throws SQLException {
        OperationKind kind = OperationKind.parse(rs.getString("kind"));
        OperationCodec.Metadata metadata = OperationCodec.metadata(kind, rs.getString("metadata"));
        return new Operation(rs.getString("uuid"), rs.getString("account_id"), kind,
                OperationStatus.valueOf(rs.getString("status")), rs.getString("error"), Sql.instant(rs, "created_at"),
                Sql.instant(rs, "started_at"), Sql.instant(rs, "finished_at"), rs.getString("image_uuid"),
                rs.getString("result_image_uuid"), rs.getString("result_tag"), Sql.nullableLong(rs, "image_size"),
                Sql.nullableDouble(rs, "consumed_cpu"), Sql.nullableLong(rs, "consumed_memory"),
                metadata.request(), metadata.result());
    }
}
