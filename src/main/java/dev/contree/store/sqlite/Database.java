package dev.contree.store.sqlite;

import dev.contree.store.StoreException;
import dev.contree.store.jdbc.Engine;
import dev.contree.store.jdbc.Schema;
import dev.contree.store.jdbc.Transactions;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.locks.ReentrantLock;

import org.sqlite.SQLiteConfig;
import org.sqlite.SQLiteOpenMode;

/**
 * The embedded SQLite metadata database (WAL mode) with versioned migrations.
 *
 * <p>One writer connection guarded by a lock (SQLite serialises writers anyway, and one connection
 * keeps transactions simple) and a small pool of reader connections, which WAL lets run beside the
 * writer, so polling clients never queue behind an execution's event inserts. The record stores go
 * through {@link #read} and {@link #write}; work inside {@code write} uses the connection it is given.
 */
final class Database implements Engine {
    private static final int READERS = 4;

    private final Connection connection;
    private final boolean readOnly;
    private final ReentrantLock lock = new ReentrantLock();
    private final BlockingQueue<Connection> readers = new ArrayBlockingQueue<>(READERS);

    private Database(Connection connection, boolean readOnly) {
        this.connection = connection;
        this.readOnly = readOnly;
    }

    static Database open(Path file) {
        try {
            Connection c = connect(file);
            try (Statement s = c.createStatement()) {
                s.execute("PRAGMA journal_mode=WAL");
                s.execute("PRAGMA synchronous=NORMAL");
            }
            Database db = new Database(c, false);
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

    /**
     * Opens an existing database for reading only, changing nothing on disk: no journal mode change, no
     * migration, and a schema version other than the current one is refused. Without a {@code -wal}
     * file SQLite's read-only mode would still create {@code -wal} and {@code -shm}; {@code immutable=1} avoids
     * that and is safe because the caller holds the data dir lock (nobody writes meanwhile). With a {@code -wal}
     * (a crash) it is needed to see the last transactions, so plain read-only mode is used.
     */
    static Database openReadOnly(Path file) {
        Path abs = file.toAbsolutePath();
        if (!Files.isRegularFile(abs)) throw new StoreException("no database at " + abs);
        boolean wal = Files.exists(abs.resolveSibling(abs.getFileName() + "-wal"));
        SQLiteConfig config = new SQLiteConfig();
        config.setReadOnly(true);
        config.setOpenMode(SQLiteOpenMode.OPEN_URI);
        String url = "jdbc:sqlite:file:" + uriPath(abs) + "?mode=ro" + (wal ? "" : "&immutable=1");
        try {
            Connection c = DriverManager.getConnection(url, config.toProperties());
            try {
                int version;
                try {
                    version = Schema.recorded(c);
                } catch (SQLException e) {
                    throw new StoreException(abs + " is not a ConTree database (no schema version: " + e.getMessage() + ")", e);
                }
                int expected = Migrations.SCHEMA.current();
                if (version != expected) {
                    throw new StoreException("database schema version " + version + ", expected " + expected
                            + (version < expected ? " (older: a server start or fsck --repair migrates it)" : " (newer than this build)"));
                }
            } catch (RuntimeException e) {
                c.close();
                throw e;
            }
            Database db = new Database(c, true);
            db.readers.add(c);
            return db;
        } catch (SQLException e) {
            throw new StoreException("cannot open database " + abs + " read-only: " + e.getMessage(), e);
        }
    }

    /** A path as an SQLite URI filename: the characters URIs give a meaning to are escaped. */
    private static String uriPath(Path p) {
        return p.toString().replace("%", "%25").replace("?", "%3f").replace("#", "%23");
    }

    private static Connection connect(Path file) throws SQLException {
        Connection c = DriverManager.getConnection("jdbc:sqlite:" + file.toAbsolutePath());
        try (Statement s = c.createStatement()) {
            s.execute("PRAGMA foreign_keys=ON");
            s.execute("PRAGMA busy_timeout=10000");
        }
        return c;
    }

    private void migrate() {
        write(c -> {
            Migrations.SCHEMA.apply(c);
            return null;
        });
    }

    @Override
    public <T> T write(Work<T> work) {
        if (readOnly) throw new StoreException("database opened read-only");
        lock.lock();
        try {
            return Transactions.inTransaction(connection, work);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public <T> T read(Work<T> work) {
        Connection r;
        try {
            r = readers.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new StoreException("interrupted while waiting for a database connection", e);
        }
        try {
            return Transactions.run(r, work);
        } finally {
            readers.add(r);
        }
    }

    @Override
    public void close() {
        lock.lock();
        try {
            for (Connection r : readers) r.close();
            if (!connection.isClosed()) connection.close();
        } catch (SQLException ignored) {
            // closing at shutdown; nothing useful to do
        } finally {
            lock.unlock();
        }
    }

    /** Nothing to take: there is one writer connection, and every write holds it. */
    @Override
    public void lock(Connection c, String scope, String key) {}
}
