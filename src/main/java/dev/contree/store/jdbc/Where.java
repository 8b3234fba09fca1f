package dev.contree.store.jdbc;

import dev.contree.store.TimeRange;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** A WHERE clause built from fixed SQL fragments, each value a bound parameter. */
final class Where {
    private final StringBuilder sql = new StringBuilder();
    private final List<Object> params = new ArrayList<>();

    /** Adds {@code fragment} (with one {@code ?} per value) joined by AND. */
    Where and(String fragment, Object... values) {
        if (!sql.isEmpty()) sql.append(" AND ");
        sql.append(fragment);
        params.addAll(List.of(values));
        return this;
    }

    /** Adds the range's bounds on {@code column} (a fixed column name, never a value). */
    Where range(String column, TimeRange range) {
        if (range.since() != null) and(column + " >= ?", Times.toMicros(range.since()));
        if (range.until() != null) and(column + " <= ?", Times.toMicros(range.until()));
        return this;
    }

    String sql() {
        return sql.isEmpty() ? "TRUE" : sql.toString();
    }

    /** The bound values of the clause, followed by {@code more} (for fragments after it: ORDER BY, LIMIT). */
    Object[] params(Object... more) {
        List<Object> all = new ArrayList<>(params);
        all.addAll(Arrays.asList(more));
        return all.toArray();
    }
}
