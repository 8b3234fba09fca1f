package dev.contree.sandbox;

import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/** Real runc and runsc (ptrace) over one temporary state dir, for tests of the sandbox layer. Needs root and busybox. */
final class TestRuntimes {
    private TestRuntimes() {}

    /** Creates the state dir and one runtime per kind into {@code into}; returns the state dir. */
    static Path open(String prefix, String cgroupParent, long memoryBytes, Map<RuntimeConfig.Kind, ? super OciSandboxRuntime> into)
            throws IOException {
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/bin/busybox")), "busybox-static missing");
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "needs root");
        Path stateDir = Files.createTempDirectory(prefix);
        for (RuntimeConfig.Kind k : List.of(RuntimeConfig.Kind.RUNSC, RuntimeConfig.Kind.RUNC)) {
            RuntimeConfig c = new RuntimeConfig(k, null, "ptrace", stateDir, memoryBytes, 256, 1.0, 1 << 20,
                    Duration.ofSeconds(10), cgroupParent, null, false);
            into.put(k, (OciSandboxRuntime) SandboxRuntimes.create(c));
        }
        return stateDir;
    }

    /** Removes what the runtimes left (containers, cgroups) and the state dir. */
    static void close(Map<RuntimeConfig.Kind, ? extends SandboxRuntime> runtimes, Path stateDir) throws IOException {
        for (SandboxRuntime r : runtimes.values()) r.cleanupStale();
        if (stateDir == null) return;
        try (Stream<Path> s = Files.walk(stateDir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
