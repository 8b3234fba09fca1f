package dev.contree.instances;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.operations.StreamRepr;
import dev.contree.sandbox.ResourceUsage;
import dev.contree.sandbox.SandboxResult;

/** A sandbox result in the wire shapes: {@code metadata.result} ({@code InstanceResult}) and the {@code exit} event. */
final class InstanceResults {
    private InstanceResults() {}

    static ObjectNode result(SandboxResult r, long layerBytes) {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        ObjectNode state = o.putObject("state");
        state.put("exit_code", r.exitCode());
        state.put("pid", r.pid());
        state.put("signal", r.signal());
        state.put("timed_out", r.timedOut());
        state.put("core_dump", r.coreDump());
        state.put("stopped", false);
        state.put("continued", false);
        o.set("stdout", StreamRepr.repr(r.stdout(), r.stdoutTruncated()));
        o.set("stderr", StreamRepr.repr(r.stderr(), r.stderrTruncated()));
        ResourceUsage u = r.usage() == null ? ResourceUsage.UNKNOWN : r.usage();
        ObjectNode res = o.putObject("resources");
        res.put("elapsed_time", u.elapsedSeconds());
        res.put("monotonic_time", u.elapsedSeconds());
        res.put("user_cpu_time", u.userCpuSeconds());
        res.put("system_cpu_time", u.systemCpuSeconds());
        res.put("max_rss", u.maxRssKiB());
        res.put("page_faults", u.minorFaults());
        res.put("page_faults_io", u.majorFaults());
        res.put("block_input", u.blockInput());
        res.put("block_output", u.blockOutput());
        res.put("voluntary_switches", u.voluntarySwitches());
        res.put("involuntary_switches", u.involuntarySwitches());
        res.put("signals", u.signals());
        res.put("swaps", u.swaps());
        res.put("shared_memory", 0);
        res.put("unshared_memory", 0);
        res.put("cost", 0.0);
        res.put("layer_bytes", layerBytes);
        res.put("cgroup_memory_peak", u.cgroupMemoryPeakBytes());
        res.put("cgroup_cpu_time", u.cgroupCpuSeconds());
        return o;
    }

    /** The sandbox is gone: {@code reason} is job_complete, cancelled or error. */
    static ObjectNode shutdownEvent(String reason) {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        o.put("stopped_at", java.time.Instant.now().toString());
        o.put("reason", reason);
        return o;
    }

    static ObjectNode exitEvent(SandboxResult r) {
        ResourceUsage u = r.usage() == null ? ResourceUsage.UNKNOWN : r.usage();
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        o.put("pid", r.pid());
        o.put("code", r.exitCode());
        o.put("signal", r.signal());
        o.put("timed_out", r.timedOut());
        o.put("duration_ms", Math.round(Math.max(0, u.elapsedSeconds()) * 1000));
        ObjectNode res = o.putObject("resources");
        res.put("user_time_us", Math.round(u.userCpuSeconds() * 1e6));
        res.put("sys_time_us", Math.round(u.systemCpuSeconds() * 1e6));
        res.put("max_rss_kb", u.maxRssKiB());
        res.put("minor_faults", u.minorFaults());
        res.put("major_faults", u.majorFaults());
        res.put("voluntary_ctx_switches", u.voluntarySwitches());
        res.put("involuntary_ctx_switches", u.involuntarySwitches());
        res.put("block_input_ops", u.blockInput());
        res.put("block_output_ops", u.blockOutput());
        res.put("signals_received", u.signals());
        res.put("swaps", u.swaps());
        // Linux keeps no shared/unshared memory or IPC message counts in rusage: always 0, as getrusage says.
        res.put("shared_memory", 0);
        res.put("unshared_memory", 0);
        res.put("ipc_msgs_sent", 0);
        res.put("ipc_msgs_received", 0);
        return o;
    }

    /** CPU seconds for the summary: the cgroup's figure when measured (covers every process), else rusage. */
    static double cpuSeconds(ResourceUsage u) {
        if (u == null) return 0;
        if (u.cgroupCpuSeconds() >= 0) return u.cgroupCpuSeconds();
        return Math.max(0, u.userCpuSeconds()) + Math.max(0, u.systemCpuSeconds());
    }

    /** Peak memory for the summary, in KiB like {@code max_rss}: the main process's max RSS, else the cgroup peak. */
    static long memoryKiB(ResourceUsage u) {
        if (u == null) return 0;
        if (u.maxRssKiB() > 0) return u.maxRssKiB();
        return Math.max(0, u.cgroupMemoryPeakBytes() / 1024);
    }
}
