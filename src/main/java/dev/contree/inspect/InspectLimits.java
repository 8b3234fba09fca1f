package dev.contree.inspect;

import java.time.Duration;

/**
 * What one inspect request may cost, and how many run at once. Defaults suit one machine; every value can be
 * set with a system property {@code contree.inspect.NAME} or an environment variable
 * {@code CONTREE_INSPECT_NAME} (NAME as below, upper-cased with '_' for '.'). Documented in docs/inspect.md.
 *
 * @param threads           inspect requests running at once, server-wide (platform threads; the rest: 429)
 * @param perAccount        inspect requests running at once per account (the rest: 429)
 * @param listMaxEntries    entries in one {@code list} answer; larger directories need {@code limit}/{@code offset}
 * @param dirMaxEntries     host entries one directory read may hold, summed over the layers (413 past it)
 * @param walkMaxEntries    entries an archive, grep or diff may visit (413; grep: truncated)
 * @param archiveMaxBytes   file bytes in one archive (413 before the first byte)
 * @param downloadMaxBytes  size of a file {@code download} serves (413)
 * @param grepMaxBytes      file bytes one grep reads (then truncated)
 * @param diffMaxBytes      file bytes one diff compares (both sides counted; holes are free; 413)
 * @param diffMaxChanges    changed paths in one diff answer (413)
 * @param timeout           wall time of list, grep and diff (grep: truncated; others: 413)
 * @param streamTimeout     wall time of an archive or download stream (then the connection is cut)
 */
public record InspectLimits(int threads, int perAccount, int listMaxEntries, int dirMaxEntries, long walkMaxEntries,
                            long archiveMaxBytes, long downloadMaxBytes, long grepMaxBytes, long diffMaxBytes,
                            int diffMaxChanges, Duration timeout, Duration streamTimeout) {

    public static final InspectLimits DEFAULTS = new InspectLimits(4, 2, 10_000, Budget.DEFAULT_DIR_ENTRIES, 1_000_000,
            8L << 30, 8L << 30, 1L << 30, 4L << 30, Differ.MAX_CHANGES, Duration.ofSeconds(30), Duration.ofMinutes(30));

    public InspectLimits {
        if (threads < 1 || perAccount < 1) throw new IllegalArgumentException("inspect concurrency must be at least 1");
        if (listMaxEntries < 1 || dirMaxEntries < 1 || walkMaxEntries < 1 || diffMaxChanges < 1)
            throw new IllegalArgumentException("inspect entry limits must be at least 1");
    }

    /** {@link #DEFAULTS} overridden by {@code contree.inspect.*} system properties / {@code CONTREE_INSPECT_*} variables. */
    public static InspectLimits fromEnvironment() {
        InspectLimits d = DEFAULTS;
        return new InspectLimits((int) get("threads", d.threads), (int) get("per.account", d.perAccount),
                (int) get("list.max.entries", d.listMaxEntries), (int) get("dir.max.entries", d.dirMaxEntries),
                get("walk.max.entries", d.walkMaxEntries), get("archive.max.bytes", d.archiveMaxBytes),
                get("download.max.bytes", d.downloadMaxBytes), get("grep.max.bytes", d.grepMaxBytes),
                get("diff.max.bytes", d.diffMaxBytes), (int) get("diff.max.changes", d.diffMaxChanges),
                Duration.ofMillis(get("timeout.ms", d.timeout.toMillis())),
                Duration.ofMillis(get("stream.timeout.ms", d.streamTimeout.toMillis())));
    }

    private static long get(String name, long fallback) {
        String v = System.getProperty("contree.inspect." + name);
        if (v == null) v = System.getenv("CONTREE_INSPECT_" + name.toUpperCase(java.util.Locale.ROOT).replace('.', '_'));
        if (v == null || v.isBlank()) return fallback;
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("contree.inspect." + name + " must be an integer: " + v);
        }
    }
}
