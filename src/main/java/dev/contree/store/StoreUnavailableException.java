package dev.contree.store;

import java.sql.SQLException;

/**
 * The database cannot be reached right now (down, restarting, no connection within the pool's timeout): a request
 * answers 503 and may be retried, unlike a {@link StoreException} that says something is wrong with the data.
 */
public class StoreUnavailableException extends StoreException {
    public StoreUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }

    /** Whether {@code e} says the connection, not the statement, failed. */
    public static boolean isConnectionFailure(SQLException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof java.sql.SQLTransientConnectionException || t instanceof java.sql.SQLNonTransientConnectionException
                    || t instanceof java.sql.SQLRecoverableException) return true;
            if (t instanceof SQLException s && s.getSQLState() != null) {
                String state = s.getSQLState();
                // 08: connection exception; 57P01-03: the server is shutting down, crashed, or not accepting yet.
                if (state.startsWith("08") || state.equals("57P01") || state.equals("57P02") || state.equals("57P03")) return true;
            }
            if (t instanceof java.io.IOException) return true;
        }
        return false;
    }

    /** A {@link StoreException} for a failed database call: this class when the connection failed. */
    public static StoreException of(String message, SQLException e) {
        return isConnectionFailure(e) ? new StoreUnavailableException(message, e) : new StoreException(message, e);
    }
}
