package dev.contree.network;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.LongPredicate;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The cgroups uplinks run in: one per uplink ({@code <parent>/contree-uplink-<uid>}, beside the sandboxes' own under
 * their parent, so the parent's usage, which admission reads, counts the uplinks too), with the cpu, memory and pids
 * controllers (cgroup v1 hierarchies; a controller v1 does not have is taken from a cgroup v2 mount when that offers
 * it). A controller neither has is left out with a warning at start-up: the uplinks are then not bounded by it (their
 * rlimits still apply), and every uplink's cgroup still has the others.
 */
final class UplinkCgroups {
    private static final Logger log = LoggerFactory.getLogger(UplinkCgroups.class);
    static final String PREFIX = "contree-uplink-";
    static final List<String> CONTROLLERS = List.of("cpu", "cpuacct", "memory", "pids");
    /** What the cgroup parent may contain: it ends up in the launchers' shell scripts. */
    private static final Pattern SAFE = Pattern.compile("[A-Za-z0-9._/-]+");
    static final long CPU_PERIOD_US = 100_000;

    /**
     * Per uplink: slirp4netns at idle is ~3.3 MiB resident, ~6.4 MiB while moving 100 MiB files back to back at
     * 0.2 CPU and ~11 MiB at 1 CPU (docs/security.md §2b); 64 MiB leaves about six times that for many connections. Past it the
     * kernel's OOM killer ends the uplink, and with it only this sandbox's network. Processes: the holder, slirp4netns,
     * its short-lived setup child and the launcher's own short commands, as {@link SlirpUplink#MAX_PROCESSES}.
     */
    static final long MEMORY_BYTES = 64L << 20, PIDS = SlirpUplink.MAX_PROCESSES;

    /** Where one controller lives: its hierarchy's mount point, and whether that is cgroup v2. */
    record Hierarchy(Path mount, boolean v2) {}

    private final Map<String, Hierarchy> controllers;
    private final String parent;

    private UplinkCgroups(Map<String, Hierarchy> controllers, String parent) {
        this.controllers = Map.copyOf(controllers);
        this.parent = parent;
    }

    /**
     * The host's hierarchies (from {@code /proc/self/mountinfo}); warns about each controller there is none for.
     *
     * @param parent the sandboxes' cgroup parent, relative to each hierarchy's root
     */
    static UplinkCgroups open(String parent) throws IOException {
        parent = parent.replaceAll("^/+|/+$", "");
        if (parent.isEmpty() || !SAFE.matcher(parent).matches() || parent.contains(".."))
            throw new IOException("the sandboxes' cgroup parent '" + parent + "' must be a relative path of letters, digits, '.', '_', '-' and '/'");
        String mountinfo = Files.readString(Path.of("/proc/self/mountinfo"), StandardCharsets.UTF_8);
        Map<String, Hierarchy> found = find(mountinfo, mount -> readOrNull(mount.resolve("cgroup.controllers")));
        List<String> missing = new ArrayList<>(CONTROLLERS.stream().filter(c -> !found.containsKey(c)).toList());
        for (String c : List.copyOf(found.keySet())) { // the launcher's script names the path in single quotes
            String m = found.get(c).mount().toString();
            if (m.indexOf('\'') < 0 && m.indexOf('\n') < 0) continue;
            found.remove(c);
            missing.add(c + " (its mount point's name cannot be quoted)");
        }
        // cgroup v2 hands a controller to a child only when every ancestor's subtree_control enables it.
        for (String c : List.copyOf(found.keySet())) {
            if (!found.get(c).v2() || c.equals("cpuacct") || enableV2(found.get(c).mount(), parent, c)) continue;
            found.remove(c);
            missing.add(c + " (cgroup v2, cannot be enabled under " + parent + ")");
        }
        if (!missing.isEmpty())
            log.warn("networking: no cgroup controller {} for the sandboxes' uplinks: they run without that bound ({}); the CPU, memory and pids limits of docs/security.md §2b need cgroup v1 hierarchies or cgroup v2 with them",
                    missing, String.join(", ", missing.stream().map(UplinkCgroups::consequence).toList()));
        UplinkCgroups cg = new UplinkCgroups(found, parent);
        return cg;
    }

    private static String consequence(String controller) {
        if (controller.startsWith("cpuacct")) return "no uplink CPU time in results";
        if (controller.startsWith("cpu")) return "a busy uplink may take a whole core";
        if (controller.startsWith("memory")) return "an uplink's memory is bounded by its 512 MiB address space only and not counted by admission";
        return "an uplink's processes are bounded by RLIMIT_NPROC only";
    }

    /**
     * The hierarchy of each of {@link #CONTROLLERS} in a mountinfo text: a v1 mount naming it, else a v2 mount whose
     * {@code cgroup.controllers} (read through {@code controllersOf}) lists it. (cpuacct's usage is in v2's
     * {@code cpu.stat} whether or not the cpu controller is enabled.)
     */
    static Map<String, Hierarchy> find(String mountinfo, java.util.function.Function<Path, String> controllersOf) {
        Map<String, Hierarchy> v1 = new LinkedHashMap<>();
        Path v2 = null;
        for (String line : mountinfo.split("\n")) {
            int dash = line.indexOf(" - ");
            if (dash < 0) continue;
            String[] before = line.substring(0, dash).split(" "), after = line.substring(dash + 3).split(" ");
            if (before.length < 5 || after.length < 3) continue;
            Path mount = Path.of(unescape(before[4]));
            if (after[0].equals("cgroup")) {
                for (String opt : after[2].split(","))
                    if (CONTROLLERS.contains(opt)) v1.putIfAbsent(opt, new Hierarchy(mount, false));
            } else if (after[0].equals("cgroup2") && v2 == null) {
                v2 = mount;
            }
        }
        Map<String, Hierarchy> out = new LinkedHashMap<>();
        Set<String> v2Offers = new LinkedHashSet<>();
        if (v2 != null) {
            String text = controllersOf.apply(v2);
            if (text != null) v2Offers.addAll(List.of(text.strip().split("\\s+")));
        }
        for (String c : CONTROLLERS) {
            if (v1.containsKey(c)) out.put(c, v1.get(c));
            else if (v2 != null && (v2Offers.contains(c) || c.equals("cpuacct") && !v1.containsKey("cpu") && v2Offers.contains("cpu")))
                out.put(c, new Hierarchy(v2, true));
        }
        return out;
    }

    private static String unescape(String mountinfoField) {
        return mountinfoField.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\");
    }

    private static boolean enableV2(Path mount, String parent, String controller) {
        Path dir = mount;
        try {
            for (String part : parent.split("/")) {
                String control = readOrNull(dir.resolve("cgroup.subtree_control"));
                if (control == null || !List.of(control.strip().split("\\s+")).contains(controller))
                    Files.writeString(dir.resolve("cgroup.subtree_control"), "+" + controller);
                dir = dir.resolve(part);
                Files.createDirectories(dir);
            }
            String control = readOrNull(dir.resolve("cgroup.subtree_control"));
            if (control == null || !List.of(control.strip().split("\\s+")).contains(controller))
                Files.writeString(dir.resolve("cgroup.subtree_control"), "+" + controller);
            return true;
        } catch (IOException | RuntimeException e) {
            log.debug("cgroup v2 {} under {}: {}", controller, dir, e.toString());
            return false;
        }
    }

    /** The controllers found (for the log and tests). */
    Set<String> controllers() {
        return controllers.keySet();
    }

    /** The distinct directories an uplink of {@code uid} has, one per hierarchy. */
    List<Path> dirs(int uid) {
        Set<Path> out = new LinkedHashSet<>();
        for (Hierarchy h : controllers.values()) out.add(h.mount().resolve(parent).resolve(PREFIX + uid));
        return List.copyOf(out);
    }

    private Path dir(String controller, int uid) {
        Hierarchy h = controllers.get(controller);
        return h == null ? null : h.mount().resolve(parent).resolve(PREFIX + uid);
    }

    private boolean v2(String controller) {
        Hierarchy h = controllers.get(controller);
        return h != null && h.v2();
    }

    /**
     * The uplink quota for a sandbox of {@code cpus} CPUs (negative: none): as much CPU as the sandbox itself may
     * use, at most one core (slirp4netns is one thread); so a networked sandbox costs at most twice its own setting.
     */
    static long quotaMicros(double cpus) {
        double c = cpus <= 0 || cpus > 1 ? 1 : cpus;
        return Math.max(1000, Math.round(c * CPU_PERIOD_US)); // the kernel's smallest quota is 1 ms
    }

    /**
     * A fresh cgroup for the uplink of {@code uid} with its limits set and nothing in it yet (a leftover of the same
     * name is emptied and replaced first). A failure is an IOException: the uplink is then not started.
     */
    Cgroup create(int uid, double cpus) throws IOException {
        remove(uid, true);
        List<Path> dirs = dirs(uid);
        Cgroup cg = new Cgroup(uid, dirs);
        try {
            for (Path d : dirs) {
                if (!Files.isDirectory(d.getParent())) Files.createDirectories(d.getParent());
                Files.createDirectory(d);
            }
            long quota = quotaMicros(cpus);
            if (controllers.containsKey("cpu")) {
                if (v2("cpu")) {
                    write(dir("cpu", uid), "cpu.max", quota + " " + CPU_PERIOD_US);
                } else {
                    write(dir("cpu", uid), "cpu.cfs_period_us", Long.toString(CPU_PERIOD_US));
                    write(dir("cpu", uid), "cpu.cfs_quota_us", Long.toString(quota));
                }
            }
            if (controllers.containsKey("memory")) {
                Path m = dir("memory", uid);
                if (v2("memory")) {
                    write(m, "memory.max", Long.toString(MEMORY_BYTES));
                    if (Files.exists(m.resolve("memory.swap.max"))) write(m, "memory.swap.max", "0");
                } else {
                    write(m, "memory.limit_in_bytes", Long.toString(MEMORY_BYTES));
                    // memsw ≥ limit: set after it; equal means no swap beyond the limit
                    if (Files.exists(m.resolve("memory.memsw.limit_in_bytes"))) write(m, "memory.memsw.limit_in_bytes", Long.toString(MEMORY_BYTES));
                }
            }
            if (controllers.containsKey("pids")) write(dir("pids", uid), "pids.max", Long.toString(PIDS));
            return cg;
        } catch (IOException | RuntimeException e) {
            cg.remove();
            throw new IOException("cannot make the uplink's cgroup under " + parent + ": " + e.getMessage(), e);
        }
    }

    private static void write(Path dir, String file, String value) throws IOException {
        Files.writeString(dir.resolve(file), value, StandardCharsets.US_ASCII);
    }

    /**
     * Removes the uplink cgroups of every uid {@code stale} says is no longer in use (a crashed server's, at start-up):
     * what is still in them is killed first. Returns how many uplinks' cgroups went.
     */
    int removeStale(LongPredicate stale) {
        Set<Integer> uids = new LinkedHashSet<>();
        for (Hierarchy h : controllers.values()) {
            Path p = h.mount().resolve(parent);
            if (!Files.isDirectory(p)) continue;
            try (Stream<Path> s = Files.list(p)) {
                for (Path d : (Iterable<Path>) s::iterator) {
                    String name = d.getFileName().toString();
                    if (!name.startsWith(PREFIX) || !Files.isDirectory(d)) continue;
                    try {
                        int uid = Integer.parseInt(name.substring(PREFIX.length()));
                        if (stale.test(uid)) uids.add(uid);
                    } catch (NumberFormatException ignored) {
                        // not ours
                    }
                }
            } catch (IOException e) {
                log.warn("networking: cannot list {}: {}", p, e.toString());
            }
        }
        int n = 0;
        for (int uid : uids) if (remove(uid, true)) n++;
        return n;
    }

    /** Removes the cgroups of {@code uid}'s uplink, killing what is left in them when {@code kill}; whether all went. */
    boolean remove(int uid, boolean kill) {
        return new Cgroup(uid, dirs(uid)).removeDirs(kill);
    }

    /** One uplink's cgroup: a directory per hierarchy. */
    final class Cgroup {
        private final int uid;
        private final List<Path> dirs;

        private Cgroup(int uid, List<Path> dirs) {
            this.uid = uid;
            this.dirs = dirs;
        }

        /** Each hierarchy's {@code cgroup.procs}: a process joins the cgroup by writing its pid to each. */
        List<Path> procsFiles() {
            return dirs.stream().map(d -> d.resolve("cgroup.procs")).toList();
        }

        List<Path> dirs() {
            return dirs;
        }

        /** CPU time of everything that ran in it, ms; -1 when the host does not tell. */
        long cpuMillis() {
            Path d = dir("cpuacct", uid);
            if (d == null) return -1;
            try {
                if (v2("cpuacct")) {
                    for (String line : Files.readAllLines(d.resolve("cpu.stat")))
                        if (line.startsWith("usage_usec ")) return Long.parseLong(line.substring(11).strip()) / 1000;
                    return -1;
                }
                return Long.parseLong(Files.readString(d.resolve("cpuacct.usage")).strip()) / 1_000_000;
            } catch (IOException | RuntimeException e) {
                return -1;
            }
        }

        /** rmdir of each directory, killing anything still in it; whether all went (else a warning is logged). */
        boolean remove() {
            return removeDirs(true);
        }

        private boolean removeDirs(boolean kill) {
            // A task that is still exiting keeps its cgroup busy for a moment: a few short retries, then its pids killed.
            for (int attempt = 0; attempt < 12; attempt++) {
                boolean left = false;
                for (Path d : dirs) {
                    try {
                        Files.deleteIfExists(d);
                    } catch (NoSuchFileException ignored) {
                    } catch (IOException e) {
                        left = true;
                        if (kill && attempt >= 2) killAll(d);
                    }
                }
                if (!left) return true;
                try {
                    Thread.sleep(Math.min(500, 5L << attempt));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            log.warn("networking: the cgroup of uplink uid {} could not be removed: {}", uid, dirs.stream().filter(Files::isDirectory).toList());
            return false;
        }

        private void killAll(Path d) {
            try {
                for (String pid : Files.readAllLines(d.resolve("cgroup.procs"))) {
                    if (!pid.isBlank()) ProcessHandle.of(Long.parseLong(pid.strip())).ifPresent(ProcessHandle::destroyForcibly);
                }
            } catch (IOException | RuntimeException e) {
                log.debug("cgroup.procs of {}: {}", d, e.toString());
            }
        }
    }

    private static String readOrNull(Path p) {
        try {
            return Files.readString(p, StandardCharsets.US_ASCII);
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }
}
