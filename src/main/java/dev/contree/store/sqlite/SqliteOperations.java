package dev.contree.store.sqlite;

import dev.contree.operations.EventPayload;
import dev.contree.operations.OperationEvent;
import dev.contree.store.codec.OperationCodec;
import dev.contree.store.jdbc.JdbcOperations;
import dev.contree.store.jdbc.Sql;
import dev.contree.store.jdbc.Times;

import java.time.Instant;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** {@link JdbcOperations} with SQLite's event numbering: under its single writer, a counter in memory. */
final class SqliteOperations extends JdbcOperations {
    /** The next event id per open log, so an append does not look up the log's last id each time. */
    private final Map<String, Long> nextEventId = new ConcurrentHashMap<>();

    SqliteOperations(Database db) {
        super(db);
    }

    @Override
    public OperationEvent append(String operationUuid, int spid, EventPayload payload) {
        return db.write(c -> {
            Long next = nextEventId.get(operationUuid);
            if (next == null) {
                next = Sql.one(c, "SELECT COALESCE(MAX(id) + 1, 0) FROM operation_events WHERE operation_uuid = ?",
                        rs -> rs.getLong(1), operationUuid);
            }
            Instant ts = Times.now();
            Sql.update(c, "INSERT INTO operation_events (operation_uuid, id, ts, spid, type, data) VALUES (?,?,?,?,?,?)",
                    operationUuid, next, Times.toMicros(ts), spid, payload.type(), OperationCodec.eventData(payload));
            // Under the writer lock, after the insert: a failed insert leaves the counter as it was.
            nextEventId.put(operationUuid, next + 1);
            return new OperationEvent(operationUuid, next, ts, spid, payload);
        });
    }

    @Override
    public void logClosed(String operationUuid) {
        nextEventId.remove(operationUuid);
    }
}
