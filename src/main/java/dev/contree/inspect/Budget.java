package dev.contree.inspect;

import dev.contree.inspect.InspectException.Kind;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What one inspect request may cost: wall time, entries visited and bytes read. Loops call {@link #check}
 * (and the counters) often, so a hostile tree or an abandoned request stops within one step: past a limit
 * an {@link InspectException} TOO_LARGE (413) names it; after {@link #cancel} (the client went away) a
 * CANCELLED one unwinds the work. Thread-safe: cancel comes from another thread.
 */
public final class Budget {
    private final long deadline;
    private final Duration timeout;
    private final long maxEntries, maxBytes;
    private final String entriesWhat, bytesWhat;
    private final AtomicLong entries = new AtomicLong(), bytes = new AtomicLong();
    private volatile boolean cancelled;
    private volatile int maxDirEntries = DEFAULT_DIR_ENTRIES;

    /** Host entries one directory read may hold, summed over its layers (a listing of 1M files: 413). */
    public static final int DEFAULT_DIR_ENTRIES = 100_000;

    /**
     * @param entriesWhat what the entries limit is called in the 413 message (e.g. "archive entries")
     * @param bytesWhat   likewise for the byte limit
     */
    public Budget(Duration timeout, long maxEntries, String entriesWhat, long maxBytes, String bytesWhat) {
        this.timeout = timeout;
        this.deadline = System.nanoTime() + timeout.toNanos();
        this.maxEntries = maxEntries;
        this.maxBytes = maxBytes;
        this.entriesWhat = entriesWhat;
        this.bytesWhat = bytesWhat;
    }

    /** For server-internal callers (executions read a few files of an image). */
    public static Budget unlimited() {
        return new Budget(Duration.ofDays(3650), Long.MAX_VALUE, "entries", Long.MAX_VALUE, "bytes").dirEntries(Integer.MAX_VALUE - 1);
    }

    /** Sets the per-directory limit; returns this. */
    public Budget dirEntries(int max) {
        this.maxDirEntries = max;
        return this;
    }

    public int maxDirEntries() { return maxDirEntries; }
    public void cancel() { cancelled = true; }
    public boolean cancelled() { return cancelled; }
    public boolean expired() { return System.nanoTime() - deadline > 0; }
    public long entries() { return entries.get(); }
    public long bytes() { return bytes.get(); }
    public long maxBytes() { return maxBytes; }
    public long maxEntries() { return maxEntries; }

    /** Throws once the client is gone or the time is up. */
    public void check() {
        if (cancelled) throw new InspectException(Kind.CANCELLED, null, "the client went away");
        if (expired()) throw new InspectException(Kind.TOO_LARGE, null,
                "the request took longer than the " + timeout.toSeconds() + " s limit for inspect work");
    }

    /** Counts {@code n} entries visited; past the limit: 413. */
    public void countEntries(long n) {
        if (entries.addAndGet(n) > maxEntries) throw new InspectException(Kind.TOO_LARGE, null,
                "more than " + maxEntries + " " + entriesWhat + " (the server's limit)");
        check();
    }

    /** Counts {@code n} bytes read; past the limit: 413. */
    public void countBytes(long n) {
        if (bytes.addAndGet(n) > maxBytes) throw new InspectException(Kind.TOO_LARGE, null,
                "more than " + maxBytes + " " + bytesWhat + " (the server's limit)");
        check();
    }

    /** Whether {@code n} more bytes would still fit (callers that truncate instead of failing). */
    public boolean bytesFit(long n) {
        return bytes.get() + n <= maxBytes;
    }
}
