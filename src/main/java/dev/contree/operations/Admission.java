package dev.contree.operations;

import java.util.Iterator;
import java.util.LinkedHashSet;

/**
 * Whether the host can hold one more sandbox now, by memory and by pids.
 *
 * <p>The policy: admit while {@code MemAvailable − reserve − heap headroom − unseen × estimate ≥ estimate}, and the
 * same for tasks against the kernel's pid/thread limit. A sandbox's cgroup memory limit is a ceiling it may reach, not
 * what it costs (a sleeping runc sandbox costs ~6 MiB, its limit is 1 GiB), so it is not charged. What the host really
 * spends is in {@code MemAvailable} once a sandbox is up; only a sandbox admitted too recently to show there (the last
 * {@link #SETTLE_NANOS}) is charged the estimate, so a burst cannot overshoot between two readings. The estimate is the
 * configured per-sandbox cost or, when larger, what the running sandboxes' cgroups use on average. The JVM's own heap
 * headroom (max minus committed) is kept free too: it is the one growth we know will come from the same pool.
 * Overcommit remains, as with the kernel's own: sandboxes that all grow towards their limits later can still press the
 * host, and then the kernel's cgroup limits and the reserve are what stand between them and the server.
 *
 * <p>Not thread-safe: the {@link Scheduler} calls it under its lock. Readings are taken at most every
 * {@link #REFRESH_NANOS}, never per dispatch.
 */
public final class Admission {
    /** A reading older than this is refreshed before a decision. */
    static final long REFRESH_NANOS = 250_000_000L;
    /** A sandbox admitted less than this before a reading may not show in it yet (runtime start-up, first pages). */
    static final long SETTLE_NANOS = 5_000_000_000L;

    /**
     * The operator's side of the policy.
     *
     * @param memoryReserveBytes memory kept free for the server, the page cache and the kernel
     * @param sandboxBytes       what one sandbox is assumed to cost the host until it shows in a reading
     * @param sandboxTasks       the tasks (pids) one sandbox is assumed to take, runtime processes included
     * @param taskReserve        pids kept free for everything else on the host
     */
    public record Settings(long memoryReserveBytes, long sandboxBytes, long sandboxTasks, long taskReserve) {
        public Settings {
            if (memoryReserveBytes < 0) throw new IllegalArgumentException("admission memory reserve must not be negative");
            if (sandboxBytes < (1L << 20)) throw new IllegalArgumentException("sandbox memory estimate must be at least 1 MiB");
            if (sandboxTasks < 1 || taskReserve < 0) throw new IllegalArgumentException("sandbox task estimate must be at least 1");
        }

        /**
         * Measured with detached containers ({@code bench/density.sh}, docs/benchmarks.md; busybox {@code sleep}): a
         * sleeping runc sandbox is 3 tasks and 3.7 MiB RSS, a runsc one (gofer + sentry) 7 processes with ~57 tasks and
         * ~48 MiB RSS; a networked one adds its uplink and holder (2 tasks, ~5 MiB). The estimates round those up.
         */
        public static Settings defaults(boolean runsc, long memoryReserveBytes) {
            return new Settings(memoryReserveBytes, runsc ? 64L << 20 : 12L << 20, runsc ? 64 : 8, 1024);
        }

        /** 5% of RAM, at least 512 MiB: the server's off-heap buffers, SQLite and btrfs page cache, the kernel. */
        public static long defaultReserve(long memTotalBytes) {
            return Math.max(512L << 20, memTotalBytes < 0 ? 0 : memTotalBytes / 20);
        }
    }

    /** One admitted sandbox, until it ends. */
    public static final class Ticket {
        private final long admittedAt;

        private Ticket(long admittedAt) {
            this.admittedAt = admittedAt;
        }
    }

    private final HostCapacity host;
    private final Settings settings;
    private final LinkedHashSet<Ticket> young = new LinkedHashSet<>(); // in admission order
    private HostCapacity.Reading reading;
    private long readAt;
    private String lastBlock = "";

    private Admission(HostCapacity host, Settings settings) {
        this.host = host;
        this.settings = settings;
    }

    /** Admission by what {@code host} reports. */
    public static Admission byHost(HostCapacity host, Settings settings) {
        return new Admission(host, settings);
    }

    /** No host bound: only the scheduler's slot count limits (tests of fairness, and hosts that tell nothing). */
    public static Admission unbounded() {
        return new Admission(null, null);
    }

    /**
     * How many more sandboxes the host could take now, beyond the {@code running} ones (0 = none);
     * {@link Integer#MAX_VALUE} when unbounded.
     */
    int room(int running, long now) {
        if (host == null) return Integer.MAX_VALUE;
        if (reading == null || now - readAt >= REFRESH_NANOS) {
            reading = host.read();
            readAt = now;
        }
        for (Iterator<Ticket> it = young.iterator(); it.hasNext(); ) {
            if (readAt - it.next().admittedAt < SETTLE_NANOS) break;
            it.remove(); // the reading has it
        }
        int unseen = young.size();
        long byMemory = Integer.MAX_VALUE;
        if (reading.memAvailableBytes() >= 0) {
            long each = estimate(settings.sandboxBytes(), reading.sandboxBytes(), running);
            long free = reading.memAvailableBytes() - settings.memoryReserveBytes() - reading.heapHeadroomBytes() - unseen * each;
            byMemory = free < each ? 0 : free / each;
        }
        long byTasks = Integer.MAX_VALUE;
        if (reading.tasks() >= 0 && reading.taskLimit() > 0) {
            long each = estimate(settings.sandboxTasks(), reading.sandboxTasks(), running);
            long free = reading.taskLimit() - reading.tasks() - settings.taskReserve() - unseen * each;
            byTasks = free < each ? 0 : free / each;
        }
        if (byMemory == 0 || byTasks == 0) lastBlock = byMemory == 0 ? "memory" : "pids";
        return (int) Math.min(Integer.MAX_VALUE, Math.min(byMemory, byTasks));
    }

    /** The configured cost, or the running sandboxes' measured mean when that is larger. */
    private static long estimate(long configured, long measuredTotal, int running) {
        return running > 0 && measuredTotal > 0 ? Math.max(configured, measuredTotal / running) : configured;
    }

    /** Records a sandbox admitted at {@code now}; charged the estimate until readings show it. */
    Ticket admit(long now) {
        Ticket t = new Ticket(now);
        if (host != null) young.add(t);
        return t;
    }

    /** The sandbox ended: it is no longer charged. */
    void release(Ticket t) {
        young.remove(t);
    }

    /** What stopped the last refusal: "memory" or "pids" (for the log). */
    String lastBlock() {
        return lastBlock;
    }

    /** True when this admission consults the host (false for {@link #unbounded}). */
    boolean bounded() {
        return host != null;
    }
}
