package dev.contree.sandbox;

/**
 * Resources consumed by the main process ({@code wait4} rusage, which includes descendants it
 * waited for) plus cgroup figures. A value of -1 means "not measured by this runtime"
 * (gVisor's wait4 reports no faults, block I/O or context switches; see docs/sandbox.md).
 */
public record ResourceUsage(
        double userCpuSeconds,
        double systemCpuSeconds,
        long maxRssKiB,
        long minorFaults,
        long majorFaults,
        long blockInput,
        long blockOutput,
        long voluntarySwitches,
        long involuntarySwitches,
        long signals,
        long swaps,
        double elapsedSeconds,
        /** Peak memory of the whole sandbox cgroup in bytes, -1 if unknown. */
        long cgroupMemoryPeakBytes,
        /** CPU time of the whole sandbox cgroup in seconds, -1 if unknown. */
        double cgroupCpuSeconds,
        /** Processes killed by the OOM killer for the sandbox's memory limit, -1 if unknown. */
        long oomKills,
        /** Times a fork failed on the pids limit, -1 if unknown. */
        long pidsLimitHits) {

    public static final ResourceUsage UNKNOWN =
            new ResourceUsage(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);

    public ResourceUsage withElapsed(double seconds) {
        return new ResourceUsage(userCpuSeconds, systemCpuSeconds, maxRssKiB, minorFaults, majorFaults, blockInput,
                blockOutput, voluntarySwitches, involuntarySwitches, signals, swaps, seconds, cgroupMemoryPeakBytes,
                cgroupCpuSeconds, oomKills, pidsLimitHits);
    }
}
