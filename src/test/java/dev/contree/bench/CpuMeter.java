package dev.contree.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * CPU time from /proc, in clock ticks: the whole host's busy time (/proc/stat) and one process's own and its
 * reaped children's (a server's runtimes and sandboxes once they exited). Two readings subtracted and divided by the
 * runs between them say what a run costs the host, which is what a CPU-bound burst's wall time follows.
 */
record CpuMeter(long hostBusy, long self, long children, long selfSystem) {
    /** USER_HZ: 100 on every Linux this runs on. */
    static final double TICK_MS = 10.0;

    static CpuMeter of(long pid) throws IOException {
        String[] host = Files.readAllLines(Path.of("/proc/stat")).getFirst().trim().split("\\s+");
        long busy = 0;
        for (int i = 1; i < host.length && i <= 8; i++) if (i != 4 && i != 5) busy += Long.parseLong(host[i]); // not idle, iowait
        String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        // after the comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
        return new CpuMeter(busy, Long.parseLong(f[11]) + Long.parseLong(f[12]), Long.parseLong(f[13]) + Long.parseLong(f[14]),
                Long.parseLong(f[12]));
    }

    /** The process's own CPU per run since {@code before}, ms. */
    double selfMs(CpuMeter before, int runs) {
        return (self - before.self) * TICK_MS / runs;
    }

    /** Per run between {@code before} and this reading, in ms of CPU: host, the process, its children. */
    String perRun(CpuMeter before, int runs) {
        return String.format(Locale.ROOT, "CPU per run: host %.1f ms (process %.1f ms of which system %.1f, its reaped children %.1f ms,"
                        + " the rest %.1f ms)",
                (hostBusy - before.hostBusy) * TICK_MS / runs, (self - before.self) * TICK_MS / runs, (selfSystem - before.selfSystem) * TICK_MS / runs,
                (children - before.children) * TICK_MS / runs,
                ((hostBusy - before.hostBusy) - (self - before.self) - (children - before.children)) * TICK_MS / runs);
    }
}
