package dev.contree.store.jdbc;

import java.sql.Connection;
import java.sql.SQLException;

/**
 * What the shared record stores need of an SQL engine: its connections and transactions, and the one place where
 * concurrent writers must be ordered by hand. SQLite has a single writer, so its transactions never interleave;
 * PostgreSQL runs many at once under READ COMMITTED, where a read-then-write needs a lock of its own.
 */
public interface Engine extends AutoCloseable {
    /** Runs {@code work} in a transaction; commits on success, rolls back on any exception. */
    <T> T write(Work<T> work);

    /**
     * Runs {@code work} with the engine's next group of writes, for a write nobody waits for (an operation's move to
     * EXECUTING, a kept layer): it comes before any later {@link #write}, but may not be readable when this returns,
     * and a crash may lose it. An engine without group commit writes it now.
     */
    default void writeLater(Work<?> work) {
        write(work);
    }

    /** Runs a read-only query (no transaction of its own is promised). */
    <T> T read(Work<T> work);

    /**
     * Holds, until the transaction on {@code c} ends, a lock that only another transaction locking the same
     * {@code (scope, key)} waits for: makes a check followed by a write (a tag move, finding an identical image)
     * atomic against its twin on another connection or node.
     */
    void lock(Connection c, String scope, String key) throws SQLException;

    /** Now in microseconds on the engine's clock: the database's where several nodes share it, else this node's. */
    default long nowMicros(Connection c) throws SQLException {
        return Times.toMicros(Times.now());
    }

    /**
     * Runs {@code work} unless another holder of {@code name} (on any node sharing the database) runs its own now;
     * returns false then, without waiting. The holder's death frees it. An engine only one process uses (SQLite)
     * needs only this process's lock.
     */
    default boolean exclusive(String name, Runnable work) {
        java.util.concurrent.locks.ReentrantLock lock = Exclusive.LOCKS.computeIfAbsent(name, n -> new java.util.concurrent.locks.ReentrantLock());
        if (!lock.tryLock()) return false;
        try {
            work.run();
            return true;
        } finally {
            lock.unlock();
        }
    }

    @Override
    void close();

    /** The process-wide locks of {@link #exclusive} for an engine one process uses. */
    final class Exclusive {
        static final java.util.concurrent.ConcurrentHashMap<String, java.util.concurrent.locks.ReentrantLock> LOCKS =
                new java.util.concurrent.ConcurrentHashMap<>();

        private Exclusive() {}
    }

    @FunctionalInterface
    interface Work<T> {
        T run(Connection c) throws SQLException;
    }
}
