package dev.contree.store;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The embedded SQLite metadata database (WAL mode) with versioned migrations.
 *
 * <p>One writer connection guarded by a lock (SQLite serialises writers anyway, and one connection
 * keeps transactions simple) and a small pool of reader connections, which WAL lets run beside the
 * writer, so polling clients never queue behind an execution's event inserts. Repositories go
 * through {@link #read} and {@link #write}; work inside {@code write} uses the connection it is given.
 */
public final class Database implements AutoCloseable {
    /** Migration scripts under {@code /db/}, applied in order; append only. */
    private static final String[] MIGRATIONS = {"V1__init.sql", "V2__layers.sql", "V3__digest_proofs.sql"};

    private static final int READERS = 4;

    private final Connection connection;
    private final ReentrantLock lock = new ReentrantLock();
    private final java.util.concurrent.BlockingQueue<Connection> readers = new java.util.concurrent.ArrayBlockingQueue<>(READERS);

    private Database(Connection connection) {
        this.connection = connection;
    }

    public static Database open(Path file) {
        try {
            Connection c = connect(file);
            try (Statement s = c.createStatement()) {
                s.execute("PRAGMA journal_mode=WAL");
                s.execute("PRAGMA synchronous=NORMAL");
            }
            Database db = new Database(c);
            db.migrate();
            for (int i = 0; i < READERS; i++) {
                Connection r = connect(file);
                try (Statement s = r.createStatement()) {
                    s.execute("PRAGMA query_only=1");
                }
                db.readers.add(r);
            }
            return db;
        } catch (SQLException e) {
            throw new StoreException("cannot open database " + file + ": " + e.getMessage(), e);
        }
    }

    private static Connection connect(Path file) throws SQLException {
        Connection c = DriverManager.getConnection("jdbc:sqlite:" + file.toAbsolutePath());
        try (Statement s = c.createStatement()) {
            s.execute("PRAGMA foreign_keys=ON");
            s.execute("PRAGMA busy_timeout=10000");
        }
        return c;
    }

    private void migrate() throws SQLException {
        write(c -> {
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
                int current;
                try (var rs = s.executeQuery("SELECT COALESCE(MAX(version), 0) FROM schema_version")) {
                    current = rs.next() ? rs.getInt(1) : 0;
                }
                if (current > MIGRATIONS.length) {
                    throw new StoreException("database schema version " + current
                            + " is newer than this server understands (" + MIGRATIONS.length + ")");
                }
                for (int v = current + 1; v <= MIGRATIONS.length; v++) {
                    for (String statement : script(MIGRATIONS[v - 1]).split(";\\s*\\n")) {
                        if (!statement.isBlank()) s.execute(statement);
                    }
                    s.execute("INSERT INTO schema_version (version) VALUES (" + v + ")");
                }
            }
            return null;
        });
    }

    private static String script(String name) {
        try (InputStream in = Database.class.getResourceAsStream("/db/" + name)) {
            if (in == null) throw new StoreException("missing migration " + name);
            return new String(in.readAllBytes(), StandardCharsets.UTF_8)
                    .lines().filter(l -> !l.trim().startsWith("--")).reduce("", (a, b) -> a + b + "\n");
        } catch (IOException e) {
            throw new StoreException("cannot read migration " + name, e);
        }
    }

    /** Runs {@code work} in a transaction; commits on success, rolls back on any exception. */
    public <T> T write(SqlWork<T> work) {
        lock.lock();
        try {
            connection.setAutoCommit(false);
            try {
                T result = work.run(connection);
                connection.commit();
                return result;
            } catch (Throwable t) {
                connection.rollback();
                throw t;
            } finally {
                connection.setAutoCommit(true);
            }
        } catch (SQLException e) {
            throw new StoreException("database error: " + e.getMessage(), e);
        } finally {
            lock.unlock();
        }
    }

    /** Runs a read-only query. */
    public <T> T read(SqlWork<T> work) {
        Connection r;
        try {
            r = readers.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new StoreException("interrupted while waiting for a database connection", e);
        }
        try {
            return work.run(r);
        } catch (SQLException e) {
            throw new StoreException("database error: " + e.getMessage(), e);
        } finally {
            readers.add(r);
        }
    }

    @Override
    public void close() {
        lock.lock();
        try {
            for (Connection r : readers) r.close();
            connection.close();
        } catch (SQLException ignored) {
            // closing at shutdown; nothing useful to do
        } finally {
            lock.unlock();
        }
    }

    @FunctionalInterface
    public interface SqlWork<T> {
        T run(Connection c) throws SQLException;
    }
}
