package dev.contree.store.jdbc;

import java.time.Instant;
import java.time.temporal.ChronoUnit;

/**
 * Timestamps are stored as microseconds since the epoch, in every engine: sortable, no finer than the wire allows,
 * and read by one row mapping.
 */
public final class Times {
    private Times() {}

    public static long toMicros(Instant t) {
        return ChronoUnit.MICROS.between(Instant.EPOCH, t);
    }

    public static Instant fromMicros(long micros) {
        return Instant.EPOCH.plus(micros, ChronoUnit.MICROS);
    }

    /** The current time at microsecond precision, so what we return equals what we store. */
    public static Instant now() {
        return Instant.now().truncatedTo(ChronoUnit.MICROS);
    }
}
