package dev.contree.store.postgres;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import com.zaxxer.hikari.pool.HikariPool;
import dev.contree.store.StoreException;
import dev.contree.store.StoreUnavailableException;
import dev.contree.store.jdbc.Engine;
import dev.contree.store.jdbc.Schema;
import dev.contree.store.jdbc.Sql;
import dev.contree.store.jdbc.Transactions;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.function.Function;

/**
 * A PostgreSQL database behind a HikariCP pool. Transactions run at READ COMMITTED, many at once: every status change
 * is a conditional UPDATE (PostgreSQL re-checks its condition on the row a concurrent writer left), and the few
 * read-then-write steps take a transaction-scoped advisory lock ({@link #lock}).
 */
final class PostgresDatabase implements Engine {
    /** Connections per server: enough for the record stores' short transactions beside each other. */
    static final int POOL_SIZE = 16;
    /**
     * How long a caller waits for a pooled connection (HikariCP's default is 30 s): while the database is down a
     * request answers 503 after this, and a worker's heartbeat fails well within a third of the lease.
     */
    static final long CONNECTION_TIMEOUT_MILLIS = 5_000;
    /** Opening a TCP connection to the database, and reads on the LISTEN session, give up after this. */
    static final int CONNECT_TIMEOUT_SECONDS = 5;
    /** The advisory lock (one bigint key) under which a node migrates; record locks use the two-int keys, a separate space. */
    private static final long MIGRATION_LOCK = 0x436f6e5472656531L;
    /** The advisory lock a serving server holds for as long as it runs (see {@link #lockServer}). */
    private static final long SERVER_LOCK = 0x436f6e5472656532L;

    private final HikariDataSource pool;
    private final PostgresUrl url;
    /** The session holding {@link #SERVER_LOCK}, or null. */
    private Connection serverLock;

    private PostgresDatabase(HikariDataSource pool, PostgresUrl url) {
        this.pool = pool;
        this.url = url;
    }

    /** A connection outside the pool, for a session that lives as long as its user (LISTEN). */
    Connection dedicatedConnection() throws SQLException {
        java.util.Properties p = new java.util.Properties();
        if (url.user() != null) p.setProperty("user", url.user());
        if (url.password() != null) p.setProperty("password", url.password());
        p.setProperty("ApplicationName", "contree-listen");
        p.setProperty("connectTimeout", String.valueOf(CONNECT_TIMEOUT_SECONDS));
        p.setProperty("tcpKeepAlive", "true");
        // A read on this session (the listener's periodic check) fails past this on a connection the network dropped.
        p.setProperty("socketTimeout", String.valueOf(3 * CONNECT_TIMEOUT_SECONDS));
        return java.sql.DriverManager.getConnection(url.jdbcUrl(), p);
    }

    static PostgresDatabase open(PostgresUrl url, Schema schema) {
        HikariConfig config = new HikariConfig();
        config.setPoolName("contree-metadata");
        config.setJdbcUrl(url.jdbcUrl());
        if (url.user() != null) config.setUsername(url.user());
        if (url.password() != null) config.setPassword(url.password());
        config.setMaximumPoolSize(POOL_SIZE);
        config.setConnectionTimeout(CONNECTION_TIMEOUT_MILLIS);
        config.setValidationTimeout(Math.min(3_000, CONNECTION_TIMEOUT_MILLIS - 1_000));
        config.addDataSourceProperty("connectTimeout", String.valueOf(CONNECT_TIMEOUT_SECONDS));
        config.addDataSourceProperty("tcpKeepAlive", "true");
        config.addDataSourceProperty("ApplicationName", "contree");
        config.addDataSourceProperty("reWriteBatchedInserts", "true");
        HikariDataSource pool;
        try {
            pool = new HikariDataSource(config);
        } catch (HikariPool.PoolInitializationException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            throw new StoreException("cannot connect to the database " + url + ": " + cause.getMessage(), e);
        }
        PostgresDatabase db = new PostgresDatabase(pool, url);
        try {
            db.write(c -> {
                // Nodes starting at once migrate one after the other; the later ones find nothing left to apply.
                Sql.query(c, "SELECT pg_advisory_xact_lock(?)", rs -> null, MIGRATION_LOCK);
                schema.apply(c);
                return null;
            });
        } catch (RuntimeException e) {
            db.close();
            throw e;
        }
        return db;
    }

    @Override
    public <T> T write(Work<T> work) {
        return withConnection(c -> Transactions.inTransaction(c, work));
    }

    @Override
    public <T> T read(Work<T> work) {
        return withConnection(c -> Transactions.run(c, work));
    }

    /** {@code use} on a pooled connection, given back afterwards. */
    private <T> T withConnection(Function<Connection, T> use) {
        try (Connection c = connection()) {
            return use.apply(c);
        } catch (SQLException e) {
            throw StoreUnavailableException.of("database error: " + e.getMessage(), e);
        }
    }

    /** An advisory lock on the hashes of {@code scope} and {@code key}; a collision only orders two unrelated writers. */
    @Override
    public void lock(Connection c, String scope, String key) throws SQLException {
        Sql.query(c, "SELECT pg_advisory_xact_lock(hashtext(?), hashtext(?))", rs -> null, scope, key);
    }

    @Override
    public long nowMicros(Connection c) throws SQLException {
        return Sql.one(c, "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint", rs -> rs.getLong(1));
    }

    /**
     * A session advisory lock on a pooled connection held for the work (the work's own statements use other
     * connections); a holder that dies ends its session and with it the lock.
     */
    @Override
    public boolean exclusive(String name, Runnable work) {
        try (Connection c = connection()) {
            if (!Boolean.TRUE.equals(Sql.one(c, "SELECT pg_try_advisory_lock(hashtext('contree-exclusive'), hashtext(?))",
                    rs -> rs.getBoolean(1), name))) return false;
            try {
                work.run();
                return true;
            } finally {
                Sql.one(c, "SELECT pg_advisory_unlock(hashtext('contree-exclusive'), hashtext(?))", rs -> null, name);
            }
        } catch (SQLException e) {
            throw new StoreException("database error: " + e.getMessage(), e);
        }
    }

    /**
     * Takes, on a connection kept for it until {@link #close}, the session lock one serving server holds; false if
     * another session holds it. The lock ends with that session, so a server that died frees it.
     */
    synchronized boolean lockServer() {
        if (serverLock != null) return true;
        Connection c = connection();
        try {
            if (Boolean.TRUE.equals(Sql.one(c, "SELECT pg_try_advisory_lock(?)", rs -> rs.getBoolean(1), SERVER_LOCK))) {
                serverLock = c;
                return true;
            }
            c.close();
            return false;
        } catch (SQLException e) {
            try {
                c.close();
            } catch (SQLException ignored) {
                // the failure that matters is the first
            }
            throw new StoreException("database error: " + e.getMessage(), e);
        }
    }

    private Connection connection() {
        try {
            return pool.getConnection();
        } catch (SQLException e) {
            // The pool waited its connectionTimeout for one: the database is down or unreachable.
            throw new StoreUnavailableException("the database is unavailable (no connection within "
                    + CONNECTION_TIMEOUT_MILLIS / 1000 + " s): " + e.getMessage(), e);
        }
    }

    @Override
    public synchronized void close() {
        if (serverLock != null) {
            try {
                serverLock.close(); // back to the pool, which closes it: the session and its lock end
            } catch (SQLException ignored) {
                // closing at shutdown; the session ends with the pool anyway
            }
            serverLock = null;
        }
        pool.close();
    }
}
