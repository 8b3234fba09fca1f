package dev.contree.store.jdbc;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/** Small JDBC helpers shared by the record stores of every engine: bind parameters, map rows. */
public final class Sql {
    private Sql() {}

    @FunctionalInterface
    public interface RowMapper<T> {
        T map(ResultSet rs) throws SQLException;
    }

    /**
     * Statements kept prepared per connection, the SQL text the key: compiling a statement costs more than running
     * most of ours. An engine opts a connection in ({@link #cacheStatements}) when it is only ever used by one thread
     * at a time (SQLite's writer under its lock, a reader taken from its pool); pooled PostgreSQL connections are not
     * (its driver keeps server-side statements itself). Kept statements are reset after each use (result set closed,
     * parameters cleared), so none holds a read transaction open between uses.
     */
    private static final Map<Connection, StatementCache> CACHES = new ConcurrentHashMap<>();
    /** Distinct statements kept per connection; past it the least recently used is closed. */
    private static final int CACHED_PER_CONNECTION = 96;

    private static final class StatementCache extends LinkedHashMap<String, PreparedStatement> {
        /** Kept statements in use now: a nested use of the same SQL gets a statement of its own. */
        final Set<PreparedStatement> busy = Collections.newSetFromMap(new IdentityHashMap<>());

        StatementCache() {
            super(32, 0.75f, true);
        }

        @Override
        protected boolean removeEldestEntry(Map.Entry<String, PreparedStatement> eldest) {
            if (size() <= CACHED_PER_CONNECTION || busy.contains(eldest.getValue())) return false;
            closeQuietly(eldest.getValue());
            return true;
        }
    }

    /** Keeps {@code c}'s statements prepared from now on ({@link #forget} before closing it). */
    public static void cacheStatements(Connection c) {
        CACHES.put(c, new StatementCache());
    }

    /** Closes the statements kept for {@code c}. */
    public static void forget(Connection c) {
        StatementCache cache = CACHES.remove(c);
        if (cache != null) cache.values().forEach(Sql::closeQuietly);
    }

    private static void closeQuietly(PreparedStatement ps) {
        try {
            ps.close();
        } catch (SQLException ignored) {
            // a statement of a connection being closed
        }
    }

    /**
     * A statement with every value bound, given back by {@link #release}. A U+0000 in a text value is bound as
     * U+FFFD: PostgreSQL's text cannot hold it, a value carrying one (an error message quoting a registry or an
     * image) must not fail the write, and both engines must store the same text.
     */
    private static PreparedStatement prepare(Connection c, String sql, Object... params) throws SQLException {
        StatementCache cache = CACHES.get(c);
        PreparedStatement ps = cache == null ? null : cache.get(sql);
        if (ps == null || cache.busy.contains(ps)) {
            boolean keep = cache != null && ps == null;
            ps = c.prepareStatement(sql);
            if (keep) cache.put(sql, ps);
        }
        if (cache != null && cache.get(sql) == ps) cache.busy.add(ps);
        try {
            for (int i = 0; i < params.length; i++) {
                Object p = params[i];
                if (p == null) ps.setNull(i + 1, Types.NULL);
                else if (p instanceof Long l) ps.setLong(i + 1, l);
                else if (p instanceof Integer n) ps.setInt(i + 1, n);
                else if (p instanceof Double d) ps.setDouble(i + 1, d);
                else if (p instanceof Boolean b) ps.setBoolean(i + 1, b);
                else ps.setString(i + 1, text(p.toString()));
            }
            return ps;
        } catch (SQLException | RuntimeException e) {
            release(c, ps);
            throw e;
        }
    }

    /** Done with a statement of {@link #prepare}: a kept one is cleared for its next use, any other closed. */
    private static void release(Connection c, PreparedStatement ps) throws SQLException {
        StatementCache cache = CACHES.get(c);
        if (cache != null && cache.busy.remove(ps)) {
            ps.clearParameters();
        } else {
            ps.close();
        }
    }

    /** {@code s} as stored: U+0000 replaced by U+FFFD (see {@link #prepare}). */
    public static String text(String s) {
        return s.indexOf('\0') < 0 ? s : s.replace('\0', '\uFFFD');
    }

    public static int update(Connection c, String sql, Object... params) throws SQLException {
        PreparedStatement ps = prepare(c, sql, params);
        try {
            return ps.executeUpdate();
        } finally {
            release(c, ps);
        }
    }

    public static <T> List<T> query(Connection c, String sql, RowMapper<T> mapper, Object... params) throws SQLException {
        PreparedStatement ps = prepare(c, sql, params);
        try (ResultSet rs = ps.executeQuery()) {
            List<T> out = new ArrayList<>();
            while (rs.next()) out.add(mapper.map(rs));
            return out;
        } finally {
            release(c, ps);
        }
    }

    public static <T> T one(Connection c, String sql, RowMapper<T> mapper, Object... params) throws SQLException {
        List<T> rows = query(c, sql, mapper, params);
        return rows.isEmpty() ? null : rows.getFirst();
    }

    /** {@code n} comma-separated placeholders, for an {@code IN (...)} whose values are bound. */
    public static String placeholders(int n) {
        return String.join(",", Collections.nCopies(n, "?"));
    }

    public static Long nullableLong(ResultSet rs, String column) throws SQLException {
        long v = rs.getLong(column);
        return rs.wasNull() ? null : v;
    }

    public static Instant instant(ResultSet rs, String column) throws SQLException {
        Long micros = nullableLong(rs, column);
        return micros == null ? null : Times.fromMicros(micros);
    }

    public static Long micros(Instant t) {
        return t == null ? null : Times.toMicros(t);
    }

    public static Double nullableDouble(ResultSet rs, String column) throws SQLException {
        double v = rs.getDouble(column);
        return rs.wasNull() ? null : v;
    }
}
