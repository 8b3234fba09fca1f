package dev.contree.operations;

import dev.contree.images.Image;
import dev.contree.store.Database;
import dev.contree.store.Page;
import dev.contree.store.Sql;
import dev.contree.store.TimeRange;
import dev.contree.store.Times;
import dev.contree.store.sqlite.OperationCodec;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * Operation records, their state machine and event logs. Transitions are conditional updates, so a
 * cancel that wins the race is never overwritten by a late completion.
 */
public final class OperationService {
    private static final Set<OperationStatus> ACTIVE = EnumSet.of(OperationStatus.PENDING, OperationStatus.ASSIGNED, OperationStatus.EXECUTING);

    private final Database db;
    private final List<Consumer<String>> cancelListeners = new CopyOnWriteArrayList<>();
    private final List<Consumer<OperationEvent>> eventListeners = new CopyOnWriteArrayList<>();
    private final Map<String, Long> nextEventId = new java.util.concurrent.ConcurrentHashMap<>();

    public OperationService(Database db) {
        this.db = db;
    }

    public Database database() {
        return db;
    }

    public Operation create(String accountId, OperationKind kind, String imageUuid, OperationRequest request) {
        String uuid = UUID.randomUUID().toString();
        return db.write(c -> {
            Sql.update(c, "INSERT INTO operations (uuid, account_id, kind, status, created_at, image_uuid, metadata) VALUES (?,?,?,?,?,?,?)",
                    uuid, accountId, kind.wire, OperationStatus.PENDING.name(), Times.toMicros(Times.now()), imageUuid,
                    OperationCodec.metadata(request, null));
            return get(c, uuid);
        });
    }

    public Optional<Operation> get(String accountId, String uuid) {
        return Optional.ofNullable(db.read(c -> get(c, uuid))).filter(o -> o.accountId().equals(accountId));
    }

    /** Any account's operation, for the scheduler and workers. */
    public Optional<Operation> get(String uuid) {
        return Optional.ofNullable(db.read(c -> get(c, uuid)));
    }

    public record Query(OperationStatus status, OperationKind kind, TimeRange range) {}

    public List<Operation> list(String accountId, Query q, Page page) {
        StringBuilder where = new StringBuilder("account_id = ?");
        List<Object> params = new ArrayList<>(List.of(accountId));
        if (q.status() != null) {
            where.append(" AND status = ?");
            params.add(q.status().name());
        }
        if (q.kind() != null) {
            where.append(" AND kind = ?");
            params.add(q.kind().wire);
        }
        q.range().appendTo("created_at", where, params);
        params.add(page.limit());
        params.add(page.offset());
        return db.read(c -> Sql.query(c, "SELECT * FROM operations WHERE " + where
                + " ORDER BY created_at DESC, uuid DESC LIMIT ? OFFSET ?", OperationService::row, params.toArray()));
    }

    /** Count of the account's operations per status, for whoami. */
    public Map<String, Long> countByStatus(String accountId) {
        Map<String, Long> out = new LinkedHashMap<>();
        db.read(c -> Sql.query(c, "SELECT status, COUNT(*) AS n FROM operations WHERE account_id = ? GROUP BY status ORDER BY status",
                rs -> out.put(rs.getString("status"), rs.getLong("n")), accountId));
        return out;
    }

    /** Operations not yet finished, oldest first (for the scheduler and restart recovery). */
    public List<Operation> active() {
        return db.read(c -> Sql.query(c, "SELECT * FROM operations WHERE status IN ('PENDING','ASSIGNED','EXECUTING') ORDER BY created_at, uuid",
                OperationService::row));
    }

    /** Moves from one of {@code from} to {@code to}; false if the operation was elsewhere (e.g. cancelled). */
    public boolean transition(String uuid, Set<OperationStatus> from, OperationStatus to) {
        return db.write(c -> transition(c, uuid, from, to));
    }

    public boolean transition(Connection c, String uuid, Set<OperationStatus> from, OperationStatus to) throws SQLException {
        StringBuilder in = new StringBuilder();
        for (OperationStatus s : from) in.append(in.isEmpty() ? "" : ",").append('\'').append(s.name()).append('\'');
        String started = to == OperationStatus.EXECUTING ? ", started_at = COALESCE(started_at, " + Times.toMicros(Times.now()) + ")" : "";
        String finished = to.terminal() ? ", finished_at = " + Times.toMicros(Times.now()) : "";
        return Sql.update(c, "UPDATE operations SET status = ?" + started + finished + " WHERE uuid = ? AND status IN (" + in + ")",
                to.name(), uuid) == 1;
    }

    /**
     * Records the outcome if the operation is still active; false if it already ended (e.g. cancelled).
     *
     * @param created the image recorded in this transaction for a {@link JobOutcome.Created} outcome, else null
     */
    public boolean complete(Connection c, String uuid, JobOutcome outcome, Image created) throws SQLException {
        String error = null, resultImage = null, resultTag = null, metadata = null;
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
                if (done.result() != null) {
                    Operation op = get(c, uuid);
                    if (op != null) metadata = OperationCodec.metadata(op.request(), done.result());
                }
            }
        }
        if (!transition(c, uuid, ACTIVE, status)) return false;
        Sql.update(c, "UPDATE operations SET error = ?, result_image_uuid = ?, result_tag = ?, image_size = ?, consumed_cpu = ?,"
                        + " consumed_memory = ?, metadata = COALESCE(?, metadata) WHERE uuid = ?",
                error, resultImage, resultTag, imageSize, cpu, memory, metadata, uuid);
        return true;
    }

    /** {@link #complete(Connection, String, JobOutcome, Image)} in its own transaction, for outcomes that create no image. */
    public boolean complete(String uuid, JobOutcome outcome) {
        return db.write(c -> complete(c, uuid, outcome, null));
    }

    /** Result of a cancel request. */
    public enum CancelOutcome { CANCELLED, NOT_FOUND, ALREADY_FINISHED }

    public CancelOutcome cancel(String accountId, String uuid) {
        CancelOutcome outcome = db.write(c -> {
            Operation op = get(c, uuid);
            if (op == null || !op.accountId().equals(accountId)) return CancelOutcome.NOT_FOUND;
            if (!transition(c, uuid, ACTIVE, OperationStatus.CANCELLED)) return CancelOutcome.ALREADY_FINISHED;
            Sql.update(c, "UPDATE operations SET error = ? WHERE uuid = ?", "cancelled by request", uuid);
            return CancelOutcome.CANCELLED;
        });
        if (outcome == CancelOutcome.CANCELLED) cancelListeners.forEach(l -> l.accept(uuid));
        return outcome;
    }

    /** Called with the uuid of every operation that a client cancelled. */
    public void onCancel(Consumer<String> listener) {
        cancelListeners.add(listener);
    }

    /** Called with every appended event (for live SSE followers). */
    public void onEvent(Consumer<OperationEvent> listener) {
        eventListeners.add(listener);
    }

    public void removeEventListener(Consumer<OperationEvent> listener) {
        eventListeners.remove(listener);
    }

    /** Appends an event to the operation's log and notifies followers. */
    public OperationEvent appendEvent(String operationUuid, int spid, EventPayload payload) {
        OperationEvent event = db.write(c -> {
            long id = nextEventId.computeIfAbsent(operationUuid, k -> {
                try {
                    Long max = Sql.one(c, "SELECT MAX(id) FROM operation_events WHERE operation_uuid = ?", rs -> {
                        long v = rs.getLong(1);
                        return rs.wasNull() ? -1L : v;
                    }, k);
                    return max == null ? 0L : max + 1;
                } catch (SQLException e) {
                    throw new IllegalStateException(e);
                }
            });
            nextEventId.put(operationUuid, id + 1);
            Instant ts = Times.now();
            Sql.update(c, "INSERT INTO operation_events (operation_uuid, id, ts, spid, type, data) VALUES (?,?,?,?,?,?)",
                    operationUuid, id, Times.toMicros(ts), spid, payload.type(), OperationCodec.eventData(payload));
            return new OperationEvent(operationUuid, id, ts, spid, payload);
        });
        eventListeners.forEach(l -> l.accept(event));
        return event;
    }

    /** Forget per-operation counters once an operation's log is complete. */
    public void eventsClosed(String operationUuid) {
        nextEventId.remove(operationUuid);
    }

    public List<OperationEvent> events(String operationUuid, long afterId) {
        return db.read(c -> Sql.query(c, "SELECT * FROM operation_events WHERE operation_uuid = ? AND id > ? ORDER BY id",
                rs -> new OperationEvent(operationUuid, rs.getLong("id"), Sql.instant(rs, "ts"), rs.getInt("spid"),
                        OperationCodec.event(rs.getString("type"), rs.getString("data"))), operationUuid, afterId));
    }

    private static Operation get(Connection c, String uuid) throws SQLException {
        return Sql.one(c, "SELECT * FROM operations WHERE uuid = ?", OperationService::row, uuid);
    }

    static Operation row(ResultSet rs) throws SQLException {
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
