package dev.contree.operations;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What the host has free right now, read from the kernel's own files: available memory, thread/pid headroom, and
 * what the sandboxes' parent cgroup (v1) says they use together. Each {@link #read} is a handful of small file reads;
 * the {@link Admission} policy decides how often.
 */
public final class HostCapacity {
    private static final Path MEMINFO = Path.of("/proc/meminfo");
    private static final Path LOADAVG = Path.of("/proc/loadavg");
    private static final Path PID_MAX = Path.of("/proc/sys/kernel/pid_max");
    private static final Path THREADS_MAX = Path.of("/proc/sys/kernel/threads-max");
    private static final Path NR_OPEN = Path.of("/proc/sys/fs/nr_open");

    private final Path sandboxMemory;
    private final Path sandboxMemoryStat;
    private final Path sandboxTasks;

    /**
     * What one reading found. -1 where the host does not tell (no cgroup v1 hierarchy, say).
     *
     * @param memAvailableBytes {@code MemAvailable}: what can be allocated without swapping, page cache counted as free
     * @param tasks             threads the kernel runs now (every one takes a pid)
     * @param taskLimit         the lower of {@code kernel.pid_max} and {@code kernel.threads-max}
     * @param sandboxBytes      memory charged to all sandbox cgroups together, less their file page cache: the kernel
     *                          reclaims that (MemAvailable counts it as free), and on cgroup v1 the cache of every
     *                          sandbox that ever ran stays charged to the parent after its cgroup is gone
     * @param sandboxTasks      tasks in all sandbox cgroups together
     * @param heapHeadroomBytes what this JVM's heap may still grow by (max minus committed): it will take that memory
     *                          from the same pool as the sandboxes
     */
    public record Reading(long memAvailableBytes, long tasks, long taskLimit, long sandboxBytes, long sandboxTasks,
                          long heapHeadroomBytes) {}

    /** @param cgroupParent the sandboxes' cgroup, relative to each v1 hierarchy's root (e.g. {@code contree}) */
    public HostCapacity(String cgroupParent) {
        this.sandboxMemory = Path.of("/sys/fs/cgroup/memory", cgroupParent, "memory.usage_in_bytes");
        this.sandboxMemoryStat = Path.of("/sys/fs/cgroup/memory", cgroupParent, "memory.stat");
        this.sandboxTasks = Path.of("/sys/fs/cgroup/pids", cgroupParent, "pids.current");
    }

    public Reading read() {
        long avail = -1;
        String meminfo = text(MEMINFO);
        if (meminfo != null) {
            int at = meminfo.indexOf("MemAvailable:");
            if (at >= 0) {
                int end = meminfo.indexOf('\n', at);
                String kb = meminfo.substring(at + "MemAvailable:".length(), end < 0 ? meminfo.length() : end).replace("kB", "").strip();
                avail = parse(kb) < 0 ? -1 : parse(kb) * 1024;
            }
        }
        long tasks = -1;
        String load = text(LOADAVG); // "0.10 0.20 0.30 3/412 1234": running/total scheduling entities
        if (load != null) {
            String[] f = load.strip().split("\\s+");
            if (f.length >= 4 && f[3].contains("/")) tasks = parse(f[3].substring(f[3].indexOf('/') + 1));
        }
        long pidMax = number(PID_MAX);
        long threadsMax = number(THREADS_MAX);
        long limit = pidMax < 0 ? threadsMax : threadsMax < 0 ? pidMax : Math.min(pidMax, threadsMax);
        Runtime rt = Runtime.getRuntime();
        return new Reading(avail, tasks, limit, sandboxMemory(), number(sandboxTasks),
                Math.max(0, rt.maxMemory() - rt.totalMemory()));
    }

    /**
     * The sandboxes' usage without file page cache ({@code total_active_file + total_inactive_file}); anonymous memory,
     * shmem and kernel memory stay in. Without this, a few GiB that finished sandboxes wrote would make every new one
     * look that expensive, and admission would hold runs back while the host has plenty free.
     */
    private long sandboxMemory() {
        long usage = number(sandboxMemory);
        String stat = usage < 0 ? null : text(sandboxMemoryStat);
        if (stat == null) return usage;
        long file = 0;
        for (String line : stat.split("\n")) {
            if (line.startsWith("total_active_file ") || line.startsWith("total_inactive_file ")) {
                long v = parse(line.substring(line.indexOf(' ') + 1).strip());
                if (v > 0) file += v;
            }
        }
        return Math.max(0, usage - file);
    }

    /** Total RAM in bytes ({@code MemTotal}), or -1. */
    public static long memTotalBytes() {
        String meminfo = text(MEMINFO);
        if (meminfo == null || !meminfo.startsWith("MemTotal:")) return -1;
        long kb = parse(meminfo.substring("MemTotal:".length(), meminfo.indexOf('\n')).replace("kB", "").strip());
        return kb < 0 ? -1 : kb * 1024;
    }

    private static long number(Path p) {
        String t = text(p);
        return t == null ? -1 : parse(t.strip());
    }

    private static long parse(String s) {
        try {
            return Long.parseLong(s);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static String text(Path p) {
        // A stream, not Files.readAllBytes: procfs sysctl files report a size of 0 and that read returns one byte.
        try (var in = Files.newInputStream(p)) {
            return new String(in.readAllBytes(), StandardCharsets.US_ASCII);
        } catch (IOException | SecurityException e) {
            return null;
        }
    }

    /** This process's open-file limit before and after {@link #raiseFileLimit}. */
    public record FileLimit(long softBefore, long soft, long hard) {}

    private static final int RLIMIT_NOFILE = 7; // Linux, every architecture the server runs on

    /**
     * Raises this process's soft RLIMIT_NOFILE to its hard limit (each sandbox holds descriptors in the server, and the
     * soft limit is often 1024). The JVM usually did so already ({@code -XX:+MaxFDLimit}); this makes it hold whatever
     * the launcher passed. Returns the limits, or null where they cannot be read.
     */
    public static FileLimit raiseFileLimit() {
        try (Arena a = Arena.ofConfined()) {
            Linker linker = Linker.nativeLinker();
            FunctionDescriptor fd = FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS);
            MethodHandle get = linker.downcallHandle(linker.defaultLookup().find("getrlimit").orElseThrow(), fd);
            MethodHandle set = linker.downcallHandle(linker.defaultLookup().find("setrlimit").orElseThrow(), fd);
            MemorySegment rl = a.allocate(16, 8); // struct rlimit { rlim_t cur; rlim_t max; }
            if ((int) get.invokeExact(RLIMIT_NOFILE, rl) != 0) return null;
            long soft = rl.get(ValueLayout.JAVA_LONG, 0);
            long hard = rl.get(ValueLayout.JAVA_LONG, 8);
            // RLIM_INFINITY (-1) is not a valid descriptor count: the kernel caps it at fs.nr_open.
            long target = hard < 0 ? number(NR_OPEN) : hard;
            if (soft == target || target < 0) return new FileLimit(soft, soft, hard);
            rl.set(ValueLayout.JAVA_LONG, 0, target);
            if ((int) set.invokeExact(RLIMIT_NOFILE, rl) != 0) return new FileLimit(soft, soft, hard);
            return new FileLimit(soft, target, hard);
        } catch (Throwable e) {
            return null;
        }
    }
}
