package dev.contree.instances;

import dev.contree.operations.JobOutcome;
import dev.contree.operations.OperationResult;
import dev.contree.sandbox.ResourceUsage;
import dev.contree.sandbox.SandboxResult;

/**
 * What an execution produced: the main process's exit state, captured output and resources, and the bytes its kept
 * layer holds (0 when nothing was kept). Read back from a row an older server wrote, the sandbox result holds only
 * what the operation shows: output totals are the captured lengths, no exec error.
 */
public record ExecutionResult(SandboxResult sandbox, long layerBytes) implements OperationResult {

    /** The resources the sandbox reported, {@link ResourceUsage#UNKNOWN} when none. */
    public ResourceUsage usage() {
        return sandbox.usage() == null ? ResourceUsage.UNKNOWN : sandbox.usage();
    }

    /**
     * The operation's summary figures: CPU seconds from the cgroup when measured (covers every process), else rusage;
     * peak memory in KiB like {@code max_rss}, the main process's max RSS, else the cgroup peak.
     */
    JobOutcome.Usage consumed() {
        ResourceUsage u = sandbox.usage();
        if (u == null) return new JobOutcome.Usage(0, 0);
        double cpu = u.cgroupCpuSeconds() >= 0 ? u.cgroupCpuSeconds()
                : Math.max(0, u.userCpuSeconds()) + Math.max(0, u.systemCpuSeconds());
        long memory = u.maxRssKiB() > 0 ? u.maxRssKiB() : Math.max(0, u.cgroupMemoryPeakBytes() / 1024);
        return new JobOutcome.Usage(cpu, memory);
    }
}
