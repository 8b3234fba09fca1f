package dev.contree.store.sqlite;

import dev.contree.store.StoreException;
import dev.contree.store.jdbc.Engine;
import dev.contree.store.jdbc.Schema;
import dev.contree.store.jdbc.Sql;
import dev.contree.store.jdbc.Transactions;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.sqlite.SQLiteConfig;
import org.sqlite.SQLiteOpenMode;

/**
 * The embedded SQLite metadata database (WAL mode) with versioned migrations.
 *
 * <p>One writer connection guarded by a lock (SQLite serialises writers anyway, and one connection
 * keeps transactions simple) and a small pool of reader connections, which WAL lets run beside the
 * writer, so polling clients never queue behind an execution's event inserts. The record stores go
 * through {@link #read} and {@link #write}; work inside {@code write} uses the connection it is given. Every
 * connection keeps its statements prepared ({@link Sql#cacheStatements}).
 *
 * <p>Group commit: writes nobody waits for (an operation's events, its move to EXECUTING) are {@link #defer}red and
 * written together, by the next {@link #write} of anyone (first in its transaction, so they keep their order with
 * every later write) or by the group writer {@link #LINGER_MILLIS} after the first of them was queued. A transaction
 * costs a commit, a WAL append of every page it touched and a round of JDBC; an execution used to make about ten
 * of them, one per event and transition. A crash loses what was deferred and not yet written: events of running
 * operations, never a finished operation's record (finishing is a {@code write}, which takes every deferred write
 * of the operation with it).
 */
final class Database implements Engine {
    private static final Logger LOG = LoggerFactory.getLogger(Database.class);
    private static final int READERS = 4;
    /**
     * How long a deferred write may wait for others to join it: what a follower of an event stream may wait for an
     * event beyond its commit, and long enough that an execution's first events (init, spawn) share one transaction.
     */
    static final long LINGER_MILLIS = 10;

    /** A write for the next transaction: {@link #run} inside it, {@link #committed} once it is durable. */
    interface Deferred {
        void run(Connection c) throws SQLException;

        /** Called after the commit, under the writer lock, in the order the writes were deferred: must not block. */
        default void committed() {}
    }

    private final Connection connection;
    private final boolean readOnly;
    private final ReentrantLock lock = new ReentrantLock();
    private final BlockingQueue<Connection> readers = new ArrayBlockingQueue<>(READERS);
    /** Deferred writes in the order they came; guarded by {@link #queueLock}. */
    private final ArrayList<Deferred> deferred = new ArrayList<>();
    private final ReentrantLock queueLock = new ReentrantLock();
    private final Condition queued = queueLock.newCondition();
    /** Deferred writes run by {@link #runDeferredHere} in the current transaction; guarded by {@link #lock}. */
    private final ArrayList<Deferred> lateDeferred = new ArrayList<>();
    private Thread groupWriter;
    private volatile boolean closing;

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
            Sql.cacheStatements(c);
            for (int i = 0; i < READERS; i++) {
                Connection r = connect(file);
                try (Statement s = r.createStatement()) {
                    s.execute("PRAGMA query_only=1");
                }
                Sql.cacheStatements(r);
                db.readers.add(r);
            }
            db.groupWriter = Thread.ofPlatform().daemon().name("sqlite-group-commit").start(db::writeDeferred);
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

    /**
     * Runs {@code work} in a transaction, after every deferred write (so they keep their order with it); commits on
     * success, and on any exception rolls back what {@code work} did (the deferred writes are kept) and rethrows.
     */
    @Override
    public <T> T write(Work<T> work) {
        if (readOnly) throw new StoreException("database opened read-only");
        lock.lock();
        try {
            connection.setAutoCommit(false);
            List<Deferred> done = List.of();
            try {
                done = runDeferred();
                Savepoint mine = done.isEmpty() ? null : connection.setSavepoint();
                T result;
                try {
                    result = work.run(connection);
                    if (mine != null) connection.releaseSavepoint(mine);
                } catch (Throwable t) {
                    if (!lateDeferred.isEmpty()) requeue(lateDeferred); // rolled back with the work
                    lateDeferred.clear();
                    if (mine == null) throw t;
                    connection.rollback(mine);
                    connection.commit();
                    committed(done);
                    done = List.of();
                    throw t;
                }
                connection.commit();
                committed(done);
                done = List.of();
                committed(lateDeferred);
                lateDeferred.clear();
                return result;
            } catch (Throwable t) {
                if (!lateDeferred.isEmpty()) requeue(lateDeferred);
                lateDeferred.clear();
                if (!done.isEmpty()) requeue(done);
                if (!connection.getAutoCommit()) connection.rollback();
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

    /**
     * Inside a {@link #write}: runs what was deferred since it began, now, in it (a write that must come after every
     * deferred write so far, like an operation's last event, calls this first).
     */
    void runDeferredHere() throws SQLException {
        if (!lock.isHeldByCurrentThread()) throw new IllegalStateException("not inside a write");
        lateDeferred.addAll(runDeferred());
    }

    /** Deferred: written with the next group of writes (see the class comment). */
    @Override
    public void writeLater(Work<?> work) {
        defer(work::run);
    }

    /** Queues {@code d} for the next transaction; the group writer commits it within {@link #LINGER_MILLIS} if nobody else does. */
    void defer(Deferred d) {
        if (readOnly) throw new StoreException("database opened read-only");
        queueLock.lock();
        try {
            deferred.add(d);
            if (deferred.size() == 1) queued.signal();
        } finally {
            queueLock.unlock();
        }
    }

    /** Commits every deferred write now. */
    void flush() {
        queueLock.lock();
        try {
            if (deferred.isEmpty()) return;
        } finally {
            queueLock.unlock();
        }
        write(c -> null);
    }

    /**
     * Runs the queued deferred writes in the current transaction and returns those that ran. One savepoint for all;
     * if one fails, each again in a savepoint of its own, and a failing one is dropped (logged): one bad write
     * never takes the others, or the transaction it rides in, with it.
     */
    private List<Deferred> runDeferred() throws SQLException {
        List<Deferred> batch;
        queueLock.lock();
        try {
            if (deferred.isEmpty()) return List.of();
            batch = new ArrayList<>(deferred);
            deferred.clear();
        } finally {
            queueLock.unlock();
        }
        Savepoint all = connection.setSavepoint();
        try {
            for (Deferred d : batch) d.run(connection);
            connection.releaseSavepoint(all);
            return batch;
        } catch (SQLException | RuntimeException e) {
            connection.rollback(all);
        }
        List<Deferred> ran = new ArrayList<>();
        for (Deferred d : batch) {
            Savepoint one = connection.setSavepoint();
            try {
                d.run(connection);
                connection.releaseSavepoint(one);
                ran.add(d);
            } catch (SQLException | RuntimeException e) {
                connection.rollback(one);
                LOG.warn("a deferred database write failed and is dropped", e);
            }
        }
        return ran;
    }

    private static void committed(List<Deferred> done) {
        for (Deferred d : done) {
            try {
                d.committed();
            } catch (RuntimeException e) {
                LOG.warn("a listener of a committed write failed", e);
            }
        }
    }

    /** Puts writes whose transaction did not commit back at the head of the queue, in their order. */
    private void requeue(List<Deferred> done) {
        queueLock.lock();
        try {
            deferred.addAll(0, done);
        } finally {
            queueLock.unlock();
        }
    }

    /** The group writer: waits for a deferred write, lets others join it for {@link #LINGER_MILLIS}, commits them. */
    private void writeDeferred() {
        while (!closing) {
            queueLock.lock();
            try {
                while (deferred.isEmpty() && !closing) queued.await();
            } catch (InterruptedException e) {
                return;
            } finally {
                queueLock.unlock();
            }
            try {
                Thread.sleep(LINGER_MILLIS);
                flush();
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException e) {
                LOG.warn("writing deferred database writes failed; retrying", e);
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException ie) {
                    return;
                }
            }
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
        closing = true;
        if (groupWriter != null) {
            groupWriter.interrupt();
            try {
                groupWriter.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            try {
                flush(); // what was deferred is written before the database closes
            } catch (RuntimeException e) {
                LOG.warn("deferred database writes lost at close", e);
            }
        }
        lock.lock();
        try {
            for (Connection r : readers) {
                Sql.forget(r);
                r.close();
            }
            Sql.forget(connection);
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
