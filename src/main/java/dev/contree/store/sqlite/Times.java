package dev.contree.store.sqlite;

import java.time.Instant;
import java.time.temporal.ChronoUnit;

/** Timestamps are stored as microseconds since the epoch: sortable, and no finer than the wire allows. */
final class Times {
    private Times() {}

    static long toMicros(Instant t) {
        return ChronoUnit.MICROS.between(Instant.EPOCH, t);
    }

    static Instant fromMicros(long micros) {
        return Instant.EPOCH.plus(micros, ChronoUnit.MICROS);
    }

    /** The current time at microsecond precision, so what we return equals what we store. */
    static Instant now() {
        return Instant.now().truncatedTo(ChronoUnit.MICROS);
    }
}
