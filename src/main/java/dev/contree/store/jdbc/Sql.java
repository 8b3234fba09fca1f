package dev.contree.store.jdbc;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** Small JDBC helpers shared by the record stores of every engine: bind parameters, map rows. */
public final class Sql {
    private Sql() {}

    @FunctionalInterface
    public interface RowMapper<T> {
        T map(ResultSet rs) throws SQLException;
    }

    /**
     * A statement with every value bound. A U+0000 in a text value is bound as U+FFFD: PostgreSQL's text cannot hold
     * it, a value carrying one (an error message quoting a registry or an image) must not fail the write, and both
     * engines must store the same text.
     */
    public static PreparedStatement prepare(Connection c, String sql, Object... params) throws SQLException {
        PreparedStatement ps = c.prepareStatement(sql);
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
            ps.close();
            throw e;
        }
    }

    /** {@code s} as stored: U+0000 replaced by U+FFFD (see {@link #prepare}). */
    public static String text(String s) {
        return s.indexOf('\0') < 0 ? s : s.replace('\0', '\uFFFD');
    }

    public static int update(Connection c, String sql, Object... params) throws SQLException {
        try (PreparedStatement ps = prepare(c, sql, params)) {
            return ps.executeUpdate();
        }
    }

    public static <T> List<T> query(Connection c, String sql, RowMapper<T> mapper, Object... params) throws SQLException {
        try (PreparedStatement ps = prepare(c, sql, params); ResultSet rs = ps.executeQuery()) {
            List<T> out = new ArrayList<>();
            while (rs.next()) out.add(mapper.map(rs));
            return out;
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
