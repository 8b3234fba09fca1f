package dev.contree.store.sqlite;

import dev.contree.operations.EventPayload;
import dev.contree.operations.Operation;
import dev.contree.operations.OperationEvent;
import dev.contree.operations.OperationKind;
import dev.contree.operations.OperationRequest;
import dev.contree.operations.OperationResult;
import dev.contree.store.codec.OperationCodec;
import dev.contree.store.jdbc.JdbcOperations;
import dev.contree.store.jdbc.Sql;
import dev.contree.store.jdbc.Times;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

/**
 * {@link JdbcOperations} with SQLite's event numbering (under its single writer, a counter in memory) and group
 * commit: an append is {@link Database#defer}red, and a read of its log commits it first.
 */
final class SqliteOperations extends JdbcOperations {
    private final Database db;
    /**
     * The next event id per open log, so an append does not look up the log's last id each time; guarded by
     * {@link #ids}, which also keeps the deferred inserts of one log in id order.
     */
    private final Map<String, Long> nextEventId = new HashMap<>();
    private final ReentrantLock ids = new ReentrantLock();
    /** Per log, its appended events not yet committed; guarded by {@link #ids}. A read of the log commits them first. */
    private final Map<String, Integer> uncommitted = new HashMap<>();

    SqliteOperations(Database db) {
        super(db);
        this.db = db;
    }

    @Override
    public Operation create(String accountId, OperationKind kind, String imageUuid, OperationRequest request) {
        Operation op = super.create(accountId, kind, imageUuid, request);
        ids.lock();
        try {
            nextEventId.put(op.uuid(), 0L); // a new log: its first append needs no lookup
        } finally {
            ids.unlock();
        }
        return op;
    }

    /** The result set into the stored metadata in place: the request there is not read back and written again. */
    @Override
    protected MetadataWithResult metadataWithResult(Connection c, String uuid, OperationResult result) {
        return new MetadataWithResult("json_set(metadata, '$.result', json(?))", List.of(OperationCodec.result(result)));
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
    @Override
    protected OperationEvent appendIn(Connection c, String operationUuid, int spid, EventPayload payload) throws SQLException {
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

    /** A read of a log sees every event appended before it: the log's deferred events are committed first. */
    @Override
    protected void beforeRead(String operationUuid) {
        boolean pending;
        ids.lock();
        try {
            pending = uncommitted.containsKey(operationUuid);
        } finally {
            ids.unlock();
        }
        if (pending) db.flush();
    }

    @Override
    protected String jsonAt(String... keys) {
        return "json_extract(m, '$." + String.join(".", keys) + "')";
    }

    @Override
    protected String metadataDocument() {
        return "metadata";
    }
}
