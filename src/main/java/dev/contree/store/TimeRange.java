package dev.contree.store;

import java.time.Instant;

/** An optional {@code created_at} filter: {@code since <= t <= until}; either end may be null. */
public record TimeRange(Instant since, Instant until) {
    public static final TimeRange ANY = new TimeRange(null, null);
}
