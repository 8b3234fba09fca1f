package dev.contree.sandbox;

import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The opt-in microVM suite: it runs when {@code CONTREE_VM_TESTS=1} (or {@code -Dcontree.vm.tests=true}), which
 * .ci/run sets; it needs root, qemu-system-x86, busybox-static and an apt source with the Debian 12 kernel. Each
 * VM test class boots a handful of guests one at a time (2-5 s each under TCG).
 */
final class VmTests {
    static final String CGROUP_PARENT = "contree-vmtest";

    private VmTests() {}

    static boolean enabled() {
        return "true".equals(System.getProperty("contree.vm.tests")) || "1".equals(System.getenv("CONTREE_VM_TESTS"));
    }

    static void assumeEnabled() {
        Assumptions.assumeTrue(enabled(), "microVM tests are opt-in: CONTREE_VM_TESTS=1");
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "needs root");
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/bin/busybox")), "busybox-static missing");
    }

    /** A vm runtime over {@code stateDir}; the guest assets are cached in a shared dir so the suite fetches once. */
    static VmSandboxRuntime runtime(Path stateDir, long memoryBytes) throws IOException {
        RuntimeConfig c = new RuntimeConfig(RuntimeConfig.Kind.VM, null, "ptrace", stateDir, memoryBytes, 256, 1.0, 1 << 20,
                Duration.ofSeconds(10), CGROUP_PARENT, null, false);
        // One kernel download for every test class and run: the cache outlives the state dir.
        Path shared = Path.of(System.getProperty("java.io.tmpdir"), "contree-vm-test-cache");
        Files.createDirectories(shared);
        Files.createDirectories(stateDir);
        Path link = stateDir.resolve("vm-cache");
        if (!Files.exists(link)) Files.createSymbolicLink(link, shared);
        return new VmSandboxRuntime(c, System.getProperty("contree.vm.accel", "auto"));
    }

    /** No QEMU or virtiofsd of this runtime alive, no run directory, no cgroup. */
    static void assertNothingLeft(VmSandboxRuntime vm) throws IOException {
        Path runs = vm.runsDir();
        List<String> procs = new ArrayList<>();
        try (Stream<Path> s = Files.list(Path.of("/proc"))) {
            s.filter(p -> p.getFileName().toString().matches("\\d+")).forEach(p -> {
                try {
                    String cmd = new String(Files.readAllBytes(p.resolve("cmdline")), StandardCharsets.UTF_8);
                    if (cmd.contains(runs.toString())) procs.add(p.getFileName() + ": " + cmd.replace('\0', ' '));
                } catch (IOException ignored) {
                }
            });
        }
        assertThat(procs).as("processes of the run").isEmpty();
        try (Stream<Path> s = Files.list(runs)) {
            assertThat(s.toList()).as("run directories").isEmpty();
        }
        for (String c : List.of("memory", "cpu", "cpuacct", "pids")) {
            Path dir = Path.of("/sys/fs/cgroup", c, CGROUP_PARENT);
            if (!Files.isDirectory(dir)) continue;
            try (Stream<Path> s = Files.list(dir)) {
                assertThat(s.filter(Files::isDirectory).toList()).as("cgroups in " + dir).isEmpty();
            }
        }
    }

    /** A host process of a run: its command line, status, uid and memory cgroup. */
    record HostProcess(String cmdline, String status, long uid, String memoryCgroup, String runId) {}

    /** QEMU and virtiofsd of the runtime's live runs. */
    static List<HostProcess> hostProcesses(VmSandboxRuntime vm) {
        String runs = vm.runsDir().toString();
        List<HostProcess> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(Path.of("/proc"))) {
            for (Path p : s.filter(x -> x.getFileName().toString().matches("\\d+")).toList()) {
                try {
                    String cmd = new String(Files.readAllBytes(p.resolve("cmdline")), StandardCharsets.UTF_8).replace('\0', ' ');
                    int at = cmd.indexOf(runs + "/contree-");
                    if (at < 0 || cmd.startsWith("/bin/sh") || cmd.startsWith("setpriv")) continue;
                    String rest = cmd.substring(at + runs.length() + "/contree-".length());
                    String runId = rest.substring(0, rest.indexOf('/'));
                    String status = Files.readString(p.resolve("status"));
                    long uid = Long.parseLong(status.lines().filter(l -> l.startsWith("Uid:")).findFirst().orElseThrow().split("\\s+")[1]);
                    String mem = Files.readAllLines(p.resolve("cgroup")).stream().filter(l -> l.contains(":memory:")).findFirst()
                            .map(l -> l.substring(l.indexOf(":memory:") + 8)).orElse("");
                    out.add(new HostProcess(cmd, status, uid, mem, runId));
                } catch (IOException | RuntimeException ignored) {
                }
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return out;
    }

    /** What a test's runtime leaves: stale runs (none, if the test passed) and its empty directory under /run. */
    static void dispose(VmSandboxRuntime vm) throws IOException {
        if (vm == null) return;
        vm.cleanupStale();
        try (Stream<Path> s = Files.list(vm.runsDir())) {
            if (s.findAny().isEmpty()) Files.delete(vm.runsDir());
        }
    }

    static void deleteTree(Path p) throws IOException {
        if (p == null || !Files.exists(p)) return;
        try (Stream<Path> s = Files.walk(p)) {
            s.sorted(Comparator.reverseOrder()).forEach(x -> x.toFile().delete());
        }
    }
}
