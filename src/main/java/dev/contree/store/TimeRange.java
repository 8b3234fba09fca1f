package dev.contree.store;

import java.time.Instant;

/** An optional {@code created_at} filter: {@code since <= t <= until}; either end may be null. */
public record TimeRange(Instant since, Instant until) {
    public static final TimeRange ANY = new TimeRange(null, null);

    /** Appends SQL conditions for {@code column} to {@code where} and their parameters to {@code params}. */
    public void appendTo(String column, StringBuilder where, java.util.List<Object> params) {
        if (since != null) {
            where.append(" AND ").append(column).append(" >= ?");
            params.add(Times.toMicros(since));
        }
        if (until != null) {
            where.append(" AND ").append(column).append(" <= ?");
            params.add(Times.toMicros(until));
        }
    }
}
