package dev.contree.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * What a process tree costs the host, read from /proc: the descendants of one process (the sandboxes' runtime
 * processes, never the root itself), their RSS and PSS (smaps_rollup) and open fds, grouped by command name,
 * plus the root's own RSS and fds and the host's MemAvailable. Two snapshots subtracted and divided by the
 * number of sandboxes started between them give the per-sandbox cost.
 */
record HostCost(int processes, long threads, long rssKiB, long pssKiB, long fds, Map<String, long[]> byName, long rootRssKiB, long rootFds, long memAvailableKiB) {

    /** byName values: {processes, rssKiB, pssKiB, fds, threads}. */
    static HostCost of(long root) throws IOException {
        Map<Long, List<Long>> children = new HashMap<>();
        for (var p : dev.contree.TestProcesses.all().values())
            children.computeIfAbsent((long) p.ppid(), k -> new ArrayList<>()).add((long) p.pid());
        int procs = 0;
        long rss = 0, pss = 0, fds = 0, threads = 0;
        Map<String, long[]> byName = new TreeMap<>();
        ArrayDeque<Long> todo = new ArrayDeque<>(children.getOrDefault(root, List.of()));
        Map<Long, String> names = new HashMap<>();
        while (!todo.isEmpty()) {
            long pid = todo.poll();
            for (long c : children.getOrDefault(pid, List.of())) {
                todo.add(c);
                names.put(c, name(c, names.get(pid)));
            }
            names.putIfAbsent(pid, name(pid, null));
            long[] m = memory(pid);
            long fd = fds(pid), th = threads(pid);
            if (m == null) continue;
            procs++;
            threads += th;
            rss += m[0];
            pss += m[1];
            fds += fd;
            long[] g = byName.computeIfAbsent(names.get(pid), k -> new long[5]);
            g[0]++;
            g[1] += m[0];
            g[2] += m[1];
            g[3] += fd;
            g[4] += th;
        }
        long[] rootMem = memory(root);
        return new HostCost(procs, threads, rss, pss, fds, byName, rootMem == null ? 0 : rootMem[0], fds(root), memAvailable());
    }

    /** {Rss, Pss} in KiB, or null when the process is gone or has no memory map (a zombie). */
    static long[] memory(long pid) {
        try {
            long rss = -1, pss = -1;
            for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/smaps_rollup"))) {
                if (line.startsWith("Rss:")) rss = kib(line);
                else if (line.startsWith("Pss:")) pss = kib(line);
            }
            return rss < 0 ? null : new long[] {rss, pss};
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    static long fds(long pid) {
        try (Stream<Path> s = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            return s.count();
        } catch (IOException | RuntimeException e) {
            return 0;
        }
    }

    static long threads(long pid) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) if (line.startsWith("Threads:")) return kib(line);
        } catch (IOException | RuntimeException e) {
            // gone
        }
        return 0;
    }

    /**
     * The command name; runsc re-executes itself (comm "exe") as runsc-sandbox (the sentry) and runsc-gofer,
     * named by argv[0]; under ptrace the sentry's stub processes (one per address space) have none.
     */
    static String name(long pid, String parent) {
        String comm = comm(pid);
        if (!comm.equals("exe")) return comm;
        try {
            String argv0 = Files.readString(Path.of("/proc/" + pid + "/cmdline")).split("\0", 2)[0];
            String n = argv0.substring(argv0.lastIndexOf('/') + 1);
            if (n.isEmpty()) return "ptrace stub"; // the sentry's forked stubs clear their argv
            return parent != null && parent.startsWith(n) ? n + " fork" : n;
        } catch (IOException | RuntimeException e) {
            return comm;
        }
    }

    static String comm(long pid) {
        try {
            return Files.readString(Path.of("/proc/" + pid + "/comm")).trim();
        } catch (IOException e) {
            return "?";
        }
    }

    static long memAvailable() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) if (line.startsWith("MemAvailable:")) return kib(line);
        return -1;
    }

    private static long kib(String line) {
        return Long.parseLong(line.replaceAll("\\D+", ""));
    }

    /** (after - before) / n, as one line; the per-name breakdown follows. */
    static String perSandbox(HostCost before, HostCost after, int n) {
        StringBuilder b = new StringBuilder(String.format(java.util.Locale.ROOT,
                "per sandbox: %.2f processes (%.1f threads), RSS %.2f MiB, PSS %.2f MiB, %.1f fds in them; server JVM %+.2f MiB RSS,"
                        + " %+.1f fds; MemAvailable %+.2f MiB (host-wide: other work moves it)",
                (after.processes - before.processes) / (double) n, (after.threads - before.threads) / (double) n, (after.rssKiB - before.rssKiB) / 1024.0 / n,
                (after.pssKiB - before.pssKiB) / 1024.0 / n, (after.fds - before.fds) / (double) n,
                (after.rootRssKiB - before.rootRssKiB) / 1024.0 / n, (after.rootFds - before.rootFds) / (double) n,
                (after.memAvailableKiB - before.memAvailableKiB) / 1024.0 / n));
        for (var e : after.byName.entrySet()) {
            long[] a = e.getValue(), z = before.byName.getOrDefault(e.getKey(), new long[5]);
            b.append(String.format(java.util.Locale.ROOT, "%n    %-16s %6.2f procs %6.1f threads  RSS %7.2f MiB  PSS %7.2f MiB  %6.1f fds", e.getKey(),
                    (a[0] - z[0]) / (double) n, (a[4] - z[4]) / (double) n, (a[1] - z[1]) / 1024.0 / n, (a[2] - z[2]) / 1024.0 / n,
                    (a[3] - z[3]) / (double) n));
        }
        return b.toString();
    }
}
