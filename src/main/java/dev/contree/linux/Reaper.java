package dev.contree.linux;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * This process as the child subreaper: the runtimes' detached processes (a container's init once {@code runc run
 * --detach} has exited, runsc's sentry and gofer) are re-parented to us instead of PID 1, so we can wait for them
 * by pidfd ({@link #adopt}), learn how they ended and make sure none is left a zombie.
 *
 * <p>Every child has exactly one reaper. Children we started ({@link SpawnedProcess}) and adopted ones
 * ({@link AdoptedChild}) are reaped by their owner; children of {@code java.lang.Process} by the JDK, which waits
 * for each by pid from the moment it starts it. Everything else that reaches us is an orphan nobody waits for,
 * and a sweep every second reaps it: a zombie child that no owner claims and that has stayed a zombie for
 * {@link #ORPHAN_GRACE_NANOS} (the JDK's reaper is blocked in waitpid on its child and takes it within
 * microseconds; /proc cannot tell its children from orphans, so the grace is what keeps their exit statuses
 * theirs). The sweep is polled, not driven by SIGCHLD: a Java signal handler starts a thread per signal, and a
 * signalfd needs SIGCHLD blocked in every thread of the JVM.
 */
public final class Reaper {
    private static final Logger log = LoggerFactory.getLogger(Reaper.class);

    static final long ORPHAN_GRACE_NANOS = TimeUnit.SECONDS.toNanos(5);
    private static final long SWEEP_EVERY_MS = 1000;
    /** How often the sweep scans /proc when the only zombie it sees is owned (an owned one can hide orphans). */
    private static final long SCAN_EVERY_NANOS = TimeUnit.SECONDS.toNanos(5);
    private static final int SELF = (int) ProcessHandle.current().pid();

    /** pid -> how many owners say they will reap it (a count, so a reused pid is never disowned by its old owner). */
    private static final Map<Integer, Integer> OWNED = new ConcurrentHashMap<>();
    private static final Map<Zombie, Long> FIRST_SEEN = new HashMap<>(); // guarded by Reaper.class
    private static final AtomicLong REAPED = new AtomicLong();
    private static volatile boolean subreaper;
    private static long lastScan; // guarded by Reaper.class

    private Reaper() {}

    /** A zombie child of ours, named by pid and start time (a pid alone may be reused). */
    record Zombie(int pid, long startTime) {}

    /** Makes this process the child subreaper and starts the orphan sweep; idempotent. */
    public static synchronized void becomeSubreaper() throws IOException {
        if (subreaper) return;
        Linux.setChildSubreaper();
        subreaper = true;
        Thread.ofPlatform().daemon().name("contree-reaper").start(Reaper::loop);
    }

    public static boolean isSubreaper() { return subreaper; }

    /** Takes over waiting for an orphan re-parented to us (see {@link AdoptedChild}). */
    public static AdoptedChild adopt(int pid) throws IOException {
        return AdoptedChild.adopt(pid);
    }

    /** How long an orphan stays a zombie before the sweep reaps it. */
    public static java.time.Duration orphanGrace() { return java.time.Duration.ofNanos(ORPHAN_GRACE_NANOS); }

    /** Orphans the sweep has reaped since start-up. */
    public static long orphansReaped() { return REAPED.get(); }

    static void own(int pid) { OWNED.merge(pid, 1, Integer::sum); }

    static void disown(int pid) { OWNED.computeIfPresent(pid, (k, n) -> n > 1 ? n - 1 : null); }

    private static void loop() {
        while (true) {
            try {
                Thread.sleep(SWEEP_EVERY_MS);
                sweep();
            } catch (InterruptedException e) {
                return;
            } catch (Throwable t) {
                log.warn("orphan sweep failed", t);
            }
        }
    }

    /** One sweep: reaps the orphans that have waited out the grace period; returns how many. */
    static synchronized int sweep() throws IOException {
        Linux.ChildStatus head;
        try {
            head = Linux.waitid(Linux.P_ALL, 0, Linux.WNOHANG | Linux.WNOWAIT); // the first zombie child, left as it is
        } catch (Linux.ErrnoException e) {
            if (e.errno() != Linux.ECHILD) throw e;
            head = null; // no children at all
        }
        long now = System.nanoTime();
        if (head == null) {
            FIRST_SEEN.clear();
            return 0;
        }
        if (OWNED.containsKey(head.pid()) && FIRST_SEEN.isEmpty() && now - lastScan < SCAN_EVERY_NANOS) return 0;
        lastScan = now;
        List<Zombie> zombies = zombieChildren();
        FIRST_SEEN.keySet().retainAll(new HashSet<>(zombies));
        int n = 0;
        for (Zombie z : zombies) {
            if (OWNED.containsKey(z.pid())) continue;
            long first = FIRST_SEEN.computeIfAbsent(z, k -> now);
            if (now - first < ORPHAN_GRACE_NANOS) continue;
            if (reapOrphan(z)) n++;
            FIRST_SEEN.remove(z);
        }
        return n;
    }

    private static boolean reapOrphan(Zombie z) {
        int fd;
        try {
            fd = Linux.pidfdOpen(z.pid());
        } catch (IOException gone) {
            return false;
        }
        try {
            // The pidfd pins the process: if /proc still shows the same zombie, the pidfd is that zombie.
            if (!z.equals(zombieChild(z.pid())) || OWNED.containsKey(z.pid())) return false;
            String comm = log.isDebugEnabled() ? comm(z.pid()) : null;
            Linux.ChildStatus s = Linux.waitid(Linux.P_PIDFD, fd, Linux.WNOHANG);
            if (s == null) return false;
            REAPED.incrementAndGet();
            if (comm != null) log.debug("reaped orphan {} ({}): {}", z.pid(), comm, s);
            return true;
        } catch (IOException e) {
            log.debug("orphan {}: {}", z.pid(), e.toString());
            return false;
        } finally {
            Linux.close(fd);
        }
    }

    /** Our zombie children, from /proc (its stat of a zombie still names its parent). */
    static List<Zombie> zombieChildren() throws IOException {
        List<Zombie> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(Path.of("/proc"))) {
            for (Path p : ds) {
                String name = p.getFileName().toString();
                if (name.isEmpty() || !Character.isDigit(name.charAt(0))) continue;
                int pid;
                try {
                    pid = Integer.parseInt(name);
                } catch (NumberFormatException e) {
                    continue;
                }
                Zombie z = zombieChild(pid);
                if (z != null) out.add(z);
            }
        }
        return out;
    }

    /** {@code pid} as a zombie child of ours, or null (alive, someone else's, or gone). */
    static Zombie zombieChild(int pid) {
        String stat;
        try {
            stat = new String(Files.readAllBytes(Path.of("/proc", Integer.toString(pid), "stat")), StandardCharsets.US_ASCII);
        } catch (IOException | RuntimeException gone) {
            return null;
        }
        int close = stat.lastIndexOf(')'); // comm may hold spaces and parentheses
        if (close < 0 || close + 2 >= stat.length()) return null;
        String[] f = stat.substring(close + 2).split(" ");
        // f[0] is field 3 (state), f[1] field 4 (ppid), f[19] field 22 (starttime).
        if (f.length < 20 || !f[0].equals("Z")) return null;
        try {
            if (Integer.parseInt(f[1]) != SELF) return null;
            return new Zombie(pid, Long.parseLong(f[19]));
        } catch (NumberFormatException e) {
            return null;
        }
    }

    private static String comm(int pid) {
        try {
            return Files.readString(Path.of("/proc", Integer.toString(pid), "comm")).strip();
        } catch (IOException | RuntimeException e) {
            return "?";
        }
    }
}
