package dev.contree.store.postgres;

import dev.contree.operations.EventPayload;
import dev.contree.operations.OperationEvent;
import dev.contree.store.StoreException;
import dev.contree.store.jdbc.JdbcOperations;
import dev.contree.store.jdbc.Sql;
import dev.contree.store.jdbc.Times;

/**
 * {@link JdbcOperations} with PostgreSQL's event numbering: the log's next id is a column of the operation's row,
 * taken by the append's own UPDATE. The row stays locked until the event row commits with it, so appends from any
 * number of connections or nodes get dense ids, and a failed append gives its id back.
 */
final class PostgresOperations extends JdbcOperations {
    PostgresOperations(PostgresDatabase db) {
        super(db);
    }

    @Override
    public OperationEvent append(String operationUuid, int spid, EventPayload payload) {
        return db.write(c -> {
            Long id = Sql.one(c, "UPDATE operations SET next_event_id = next_event_id + 1 WHERE uuid = ? RETURNING next_event_id - 1",
                    rs -> rs.getLong(1), operationUuid);
            if (id == null) throw new StoreException("no operation " + operationUuid + " to log an event for");
            OperationEvent event = new OperationEvent(operationUuid, id, Times.now(), spid, payload);
            insertEvent(c, event);
            return event;
        });
    }

    /** Nothing kept per log: the counter lives in the row. */
    @Override
    public void logClosed(String operationUuid) {}
}
