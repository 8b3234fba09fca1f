package dev.contree.network;

import dev.contree.TestDirs;
import dev.contree.operations.HostCapacity;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * An uplink's cgroup without a sandbox around it ({@link SlirpNetworks#attach} directly): its processes are in it
 * from the start, with the limits; a download through it as fast as it goes is held to the quota its sandbox's CPU
 * setting gives (0.2 CPU here, measured as the cgroup's CPU time over the wall time of the download, not as a
 * duration); the cgroup goes with the uplink, and a leftover of a crashed server goes at the next start, with what
 * is still in it.
 */
class UplinkCgroupTest {
    static final String PARENT = "contree-test-uplink";
    static final long BLOB = 100L << 20;
    static RemoteHost remote;
    static Path dir;

    @BeforeAll
    static void setUp() throws Exception {
        remote = RemoteHost.start(48, BLOB);
        dir = Files.createTempDirectory("uplink-cgroup");
    }

    @AfterAll
    static void tearDown() throws Exception {
        if (remote != null) remote.close();
        TestDirs.removeWithMounts(dir);
        for (String c : UplinkCgroups.CONTROLLERS) { // the test's parent, once empty
            try {
                Files.deleteIfExists(Path.of("/sys/fs/cgroup", c, PARENT));
            } catch (java.io.IOException ignored) {
            }
        }
    }

    static List<Path> uplinkCgroups(Path dataDir, String parent) throws Exception {
        return NetworkingTestBase.uplinkCgroups(dataDir, parent);
    }

    /** controller → cgroup path of a process, from /proc/PID/cgroup (v1 lines). */
    static Map<String, String> cgroupsOf(long pid) throws Exception {
        Map<String, String> out = new java.util.HashMap<>();
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/cgroup"))) {
            String[] f = line.split(":", 3);
            for (String c : f[1].split(",")) out.put(c, f[2]);
        }
        return out;
    }

    static String read(String controller, String cgroup, String file) throws Exception {
        return Files.readString(Path.of("/sys/fs/cgroup", controller).resolve(cgroup.substring(1)).resolve(file)).strip();
    }

    @Test
    void anUplinkRunsInACgroupOfItsOwnWhoseCpuQuotaHoldsABusyDownloadAndItGoesWithTheUplink() throws Exception {
        Path data = dir.resolve("data");
        try (SlirpNetworks networks = SlirpNetworks.start(NetworkingTestBase.policy(remote), dir.resolve("state"), data, PARENT)) {
            SlirpUplink up = (SlirpUplink) networks.attach("cg", 0.2);
            String expected = "/" + PARENT + "/" + UplinkCgroups.PREFIX + up.uid();
            for (long pid : up.pids()) {
                Map<String, String> cg = cgroupsOf(pid);
                for (String c : UplinkCgroups.CONTROLLERS) assertThat(cg.get(c)).as(pid + " in " + c + ": " + cg).isEqualTo(expected);
            }
            assertThat(read("cpu", expected, "cpu.cfs_quota_us")).isEqualTo("20000");
            assertThat(read("cpu", expected, "cpu.cfs_period_us")).isEqualTo("100000");
            assertThat(read("memory", expected, "memory.limit_in_bytes")).isEqualTo(Long.toString(UplinkCgroups.MEMORY_BYTES));
            assertThat(read("pids", expected, "pids.max")).isEqualTo("16");
            assertThat(Long.parseLong(read("pids", expected, "pids.current"))).isBetween(2L, 16L);
            long idleRss = NetworkBench.rssKiB(up.pids()[0]);
            // Admission reads the parent: the uplink is in its counts (this parent holds nothing else).
            HostCapacity.Reading host = new HostCapacity(PARENT).read();
            assertThat(host.sandboxTasks()).as("tasks under " + PARENT).isEqualTo(Long.parseLong(read("pids", expected, "pids.current")));
            assertThat(host.sandboxBytes()).as("memory under " + PARENT).isPositive();
            assertThat(Files.readString(Path.of("/sys/fs/cgroup/memory", PARENT, "memory.use_hierarchy")).strip()).isEqualTo("1");

            // 100 MiB downloads one after the other, as fast as the uplink goes, for 5 s, from inside its namespace (root there, so the test's own wget).
            long cpu0 = Long.parseLong(read("cpuacct", expected, "cpuacct.usage"));
            long received0 = up.usage().bytesReceived();
            long t0 = System.nanoTime();
            Process wget = new ProcessBuilder("nsenter", "--net=" + up.namespace(), "timeout", "5", "/bin/sh", "-c",
                    "while busybox wget -q -O /dev/null " + remote.url(remote.allowed, "blob") + "; do :; done")
                    .redirectErrorStream(true).start();
            long peakRss = idleRss;
            while (!wget.waitFor(50, TimeUnit.MILLISECONDS)) peakRss = Math.max(peakRss, NetworkBench.rssKiB(up.pids()[0]));
            assertThat(wget.waitFor(60, TimeUnit.SECONDS)).isTrue();
            double wall = (System.nanoTime() - t0) / 1e9;
            double cpu = (Long.parseLong(read("cpuacct", expected, "cpuacct.usage")) - cpu0) / 1e9;
            long received = up.usage().bytesReceived() - received0;
            String output = new String(wget.getInputStream().readAllBytes());
            String stat = read("cpu", expected, "cpu.stat").replace('\n', ' ');
            long memPeak = Long.parseLong(read("memory", expected, "memory.max_usage_in_bytes"));
            String measured = String.format(Locale.ROOT, "uplink at 0.2 CPU: %.1f MiB in %.2f s (%.1f MiB/s), CPU %.2f s = %.2f of the wall time;"
                            + " slirp4netns RSS idle %d KiB, peak %d KiB; cgroup memory peak %d KiB; cpu.stat %s; wget: %s",
                    received / 1048576.0, wall, received / 1048576.0 / wall, cpu, cpu / wall, idleRss, peakRss, memPeak >> 10, stat, output);
            System.out.println(measured);
            assertThat(received).as(measured).isGreaterThan(1L << 20); // it moved data, so it was busy
            assertThat(cpu / wall).as(measured).isLessThanOrEqualTo(0.2 * 1.5);
            assertThat(memPeak).as(measured).isLessThan(UplinkCgroups.MEMORY_BYTES);
            assertThat(up.usage().uplinkCpuMillis()).as("the uplink's CPU in its usage").isGreaterThanOrEqualTo((long) (cpu * 1000) - 1);

            up.close();
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (!uplinkCgroups(data, PARENT).isEmpty() && System.nanoTime() < deadline) Thread.sleep(50);
            assertThat(uplinkCgroups(data, PARENT)).as("the uplink's cgroup after it closed").isEmpty();
        }
    }

    @Test
    void aCrashedServersUplinkCgroupsGoAtTheNextStartWithWhatIsInThem() throws Exception {
        Path data = dir.resolve("data-crash");
        int uid;
        try (SlirpNetworks networks = SlirpNetworks.start(NetworkingTestBase.policy(remote), dir.resolve("state-crash"), data, PARENT)) {
            uid = networks.uids().first() + 11;
        }
        // What a kill -9 leaves: a cgroup of one of the block's uids with a process still in it (a launcher killed
        // before it dropped root would be such a one: no uid of the block to find it by).
        Path pids = Path.of("/sys/fs/cgroup/pids", PARENT, UplinkCgroups.PREFIX + uid);
        Path memory = Path.of("/sys/fs/cgroup/memory", PARENT, UplinkCgroups.PREFIX + uid);
        Files.createDirectories(pids);
        Files.createDirectories(memory);
        Process stray = new ProcessBuilder("/bin/sh", "-c", "echo $$ > " + pids.resolve("cgroup.procs") + " && exec sleep 300").start();
        try {
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (!Files.readString(pids.resolve("cgroup.procs")).contains(Long.toString(stray.pid())) && System.nanoTime() < deadline)
                Thread.sleep(20);
            assertThat(Files.readString(pids.resolve("cgroup.procs"))).contains(Long.toString(stray.pid()));
            try (SlirpNetworks networks = SlirpNetworks.start(NetworkingTestBase.policy(remote), dir.resolve("state-crash"), data, PARENT)) {
                assertThat(stray.waitFor(30, TimeUnit.SECONDS)).as("the process in the stale cgroup was killed").isTrue();
                assertThat(Files.exists(pids)).as(pids.toString()).isFalse();
                assertThat(Files.exists(memory)).as(memory.toString()).isFalse();
                assertThat(uplinkCgroups(data, PARENT)).isEmpty();
            }
        } finally {
            stray.destroyForcibly();
        }
    }

    @Test
    void hierarchiesComeFromTheMountsAndAMissingControllerIsLeftOut() {
        String hybrid = """
                31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
                32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
                35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
                41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
                """;
        var found = UplinkCgroups.find(hybrid, p -> "hugetlb\n");
        assertThat(found.keySet()).containsExactly("cpu", "cpuacct", "memory"); // no pids: left out (start-up warns)
        assertThat(found.get("cpu").mount()).isEqualTo(Path.of("/sys/fs/cgroup/cpu,cpuacct"));
        assertThat(found.get("cpuacct")).isEqualTo(found.get("cpu"));
        String v2only = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        var v2 = UplinkCgroups.find(v2only, p -> p.equals(Path.of("/sys/fs/cgroup")) ? "cpuset cpu io memory pids\n" : null);
        assertThat(v2.keySet()).containsExactly("cpu", "cpuacct", "memory", "pids");
        assertThat(v2.values()).allMatch(UplinkCgroups.Hierarchy::v2);
        assertThat(UplinkCgroups.find(v2only, p -> "memory\n").keySet()).containsExactly("memory");
        assertThat(UplinkCgroups.quotaMicros(0.2)).isEqualTo(20_000);
        assertThat(UplinkCgroups.quotaMicros(4)).isEqualTo(100_000);
        assertThat(UplinkCgroups.quotaMicros(-1)).isEqualTo(100_000);
        assertThat(UplinkCgroups.quotaMicros(0.001)).isEqualTo(1_000);
    }
}
