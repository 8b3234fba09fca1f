package dev.contree.store.jdbc;

import dev.contree.store.StoreException;

import java.sql.Connection;
import java.sql.SQLException;

/** How every engine runs work on a connection it holds: a failure of the database becomes a {@link StoreException}. */
public final class Transactions {
    private Transactions() {}

    /** {@code work} in a transaction on {@code c}: committed on success, rolled back on any exception. */
    public static <T> T inTransaction(Connection c, Engine.Work<T> work) {
        try {
            c.setAutoCommit(false);
            try {
                T result = work.run(c);
                c.commit();
                return result;
            } catch (Throwable t) {
                c.rollback();
                throw t;
            } finally {
                c.setAutoCommit(true);
            }
        } catch (SQLException e) {
            throw failure(e);
        }
    }

    /** {@code work} on {@code c} as it is (a query, or statements that commit one by one). */
    public static <T> T run(Connection c, Engine.Work<T> work) {
        try {
            return work.run(c);
        } catch (SQLException e) {
            throw failure(e);
        }
    }

    private static StoreException failure(SQLException e) {
        return dev.contree.store.StoreUnavailableException.of("database error: " + e.getMessage(), e);
    }
}
