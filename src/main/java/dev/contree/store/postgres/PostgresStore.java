package dev.contree.store.postgres;

import dev.contree.store.QueueRecords;
import dev.contree.store.jdbc.JdbcStore;
import dev.contree.store.jdbc.Schema;
import dev.contree.store.jdbc.Sql;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The metadata store in a PostgreSQL database (for several nodes sharing one store): the shared record stores over a
 * connection pool ({@link PostgresDatabase}), a schema of its own under {@code /db/postgres/}, event ids numbered in
 * the operation's row ({@link PostgresOperations}). Everything PostgreSQL-specific stays in this package.
 */
public final class PostgresStore extends JdbcStore {
    static final Schema SCHEMA = new Schema("/db/postgres/", "V1__init.sql", "V2__queue.sql", "V3__layer_objects.sql",
            "V4__object_marks.sql");

    private final PostgresDatabase db;
    private final PostgresQueue queue;

    private PostgresStore(PostgresDatabase db) {
        super(db, new PostgresOperations(db));
        this.db = db;
        this.queue = new PostgresQueue(db);
    }

    @Override
    public Optional<QueueRecords> queue() {
        return Optional.of(queue);
    }

    /** Connects to the database and migrates its schema (once, whichever node comes first). */
    public static PostgresStore open(PostgresUrl url) {
        return new PostgresStore(PostgresDatabase.open(url, SCHEMA));
    }

    /**
     * Claims the database for one session-holder until {@link #close}; false if another holds it. {@code serve} no
     * longer takes it (any number of nodes share a database: the queue and its leases are rows), it stays for a tool
     * that must be the only one at work.
     */
    public boolean claimForServer() {
        return db.lockServer();
    }

    /** The schema version this code writes and expects. */
    public static int schemaVersion() {
        return SCHEMA.current();
    }

    /**
     * PostgreSQL checks its own pages and constraints as it goes; what is left to look at: the schema version this
     * code expects, indexes left invalid (a failed {@code CREATE INDEX CONCURRENTLY} run by hand), and, where the
     * {@code amcheck} extension is installed in the database, the structure of every B-tree index of the store.
     */
    @Override
    public Optional<String> integrityProblem() {
        return db.read(c -> {
            List<String> problems = new ArrayList<>();
            int version = Schema.recorded(c);
            if (version != SCHEMA.current()) problems.add("schema version " + version + ", expected " + SCHEMA.current());
            String indexes = "SELECT c.oid, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                    + " JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am am ON am.oid = c.relam"
                    + " WHERE n.nspname = current_schema()";
            for (String name : Sql.query(c, indexes + " AND NOT i.indisvalid ORDER BY c.relname", rs -> rs.getString(2))) {
                problems.add("index " + name + " is invalid");
            }
            if (Sql.one(c, "SELECT 1 FROM pg_extension WHERE extname = 'amcheck'", rs -> Boolean.TRUE) != null) {
                for (String name : Sql.query(c, indexes + " AND i.indisvalid AND am.amname = 'btree' ORDER BY c.relname",
                        rs -> rs.getString(2))) {
                    String problem = btreeProblem(c, name);
                    if (problem != null) problems.add("index " + name + ": " + problem);
                }
            }
            return problems.isEmpty() ? Optional.empty() : Optional.of(String.join("; ", problems));
        });
    }

    /** What amcheck finds wrong with one index (an error it raises), else null. */
    private static String btreeProblem(Connection c, String index) throws SQLException {
        try {
            Sql.query(c, "SELECT bt_index_check(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    + " WHERE n.nspname = current_schema() AND c.relname = ?", rs -> null, index);
            return null;
        } catch (SQLException e) {
            if (e.getSQLState() != null && e.getSQLState().startsWith("XX")) return e.getMessage();
            throw e;
        }
    }
}
