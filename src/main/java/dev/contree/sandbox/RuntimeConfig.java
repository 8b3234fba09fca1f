package dev.contree.sandbox;

import dev.contree.network.SandboxNetworks;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;

/**
 * Operator settings of a sandbox runtime.
 *
 * @param kind               RUNSC (gVisor), RUNC, or VM (a QEMU microVM per run; {@code binary} is then QEMU)
 * @param binary             runtime executable; null = "runsc"/"runc" from PATH
 * @param runscPlatform      gVisor platform: "ptrace" (works everywhere), "kvm" (real KVM hosts), "systrap" (newer gVisor)
 * @param stateDir           private directory for runtime state, bundles and the extracted init binary
 * @param defaultMemoryBytes memory limit when the spec says 0 (negative = none)
 * @param defaultPidsLimit   pids limit when the spec says 0 (negative = none)
 * @param defaultCpus        CPU quota when the spec says 0 (negative = none)
 * @param defaultOutputCap   per-stream output cap when the spec says 0
 * @param killGrace          extra time after the spec's timeout before the server kills a stuck sandbox
 * @param cgroupParent       cgroup (v1 path relative to each hierarchy root) under which sandboxes are placed
 * @param network            for spec.network=true: where a sandbox's network comes from (its own namespace and uplink,
 *                           or the deprecated shared namespace); null = networking is off and such requests fail
 *                           with an infra error, never host networking
 * @param compat32           runc: the seccomp filter also admits the 32-bit x86 ABI (32-bit binaries run, and the
 *                           kernel's compat syscall entry is reachable); false = a 32-bit system call kills the
 *                           process with SIGSYS. gVisor implements no 32-bit ABI either way.
 */
public record RuntimeConfig(Kind kind, Path binary, String runscPlatform, Path stateDir, long defaultMemoryBytes,
                            long defaultPidsLimit, double defaultCpus, long defaultOutputCap, Duration killGrace,
                            String cgroupParent, SandboxNetworks network, boolean compat32) {

    public enum Kind { RUNSC, RUNC, VM }

    public RuntimeConfig {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(stateDir, "stateDir");
        if (runscPlatform == null || runscPlatform.isBlank()) runscPlatform = "ptrace";
        if (killGrace == null) killGrace = Duration.ofSeconds(10);
        if (cgroupParent == null || cgroupParent.isBlank()) cgroupParent = "contree";
        cgroupParent = cgroupParent.replaceAll("^/+|/+$", "");
        if (defaultOutputCap <= 0) defaultOutputCap = 1 << 20;
    }

    /** 1 GiB memory, 512 pids, 1 CPU, 1 MiB output per stream. */
    public static RuntimeConfig defaults(Kind kind, Path stateDir) {
        return new RuntimeConfig(kind, null, "ptrace", stateDir, 1L << 30, 512, 1.0, 1 << 20,
                Duration.ofSeconds(10), "contree", null, false);
    }

    public RuntimeConfig withPlatform(String p) {
        return new RuntimeConfig(kind, binary, p, stateDir, defaultMemoryBytes, defaultPidsLimit, defaultCpus,
                defaultOutputCap, killGrace, cgroupParent, network, compat32);
    }

    /** The cgroup limits a sandbox gets when its spec says 0. */
    public RuntimeConfig withLimits(long memoryBytes, long pidsLimit, double cpus) {
        return new RuntimeConfig(kind, binary, runscPlatform, stateDir, memoryBytes, pidsLimit, cpus,
                defaultOutputCap, killGrace, cgroupParent, network, compat32);
    }

    public RuntimeConfig withNetwork(SandboxNetworks networks) {
        return new RuntimeConfig(kind, binary, runscPlatform, stateDir, defaultMemoryBytes, defaultPidsLimit,
                defaultCpus, defaultOutputCap, killGrace, cgroupParent, networks, compat32);
    }

    /** Whether runc sandboxes may make 32-bit x86 system calls (see {@code compat32}). */
    public RuntimeConfig withCompat32(boolean on) {
        return new RuntimeConfig(kind, binary, runscPlatform, stateDir, defaultMemoryBytes, defaultPidsLimit,
                defaultCpus, defaultOutputCap, killGrace, cgroupParent, network, on);
    }
}
