package dev.contree.api;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.imports.ImportRequest;
import dev.contree.instances.ExecutionRequest;
import dev.contree.instances.ExecutionResult;
import dev.contree.instances.InstanceSpec;
import dev.contree.operations.Operation;
import dev.contree.operations.OperationRequest;
import dev.contree.sandbox.ResourceUsage;
import dev.contree.sandbox.SandboxResult;

/**
 * An operation's {@code metadata}: the normalised request (also echoed in the 202 that accepted it) and, for a
 * finished execution, its {@code result} ({@code InstanceResult}).
 */
final class OperationMetadata {
    private OperationMetadata() {}

    static ObjectNode of(Operation op) {
        ObjectNode o = request(op.request());
        if (op.result() instanceof ExecutionResult r) o.set("result", result(r));
        return o;
    }

    /** The request as {@code metadata} shows it; an execution's ends with {@code "result": null}. */
    static ObjectNode request(OperationRequest request) {
        return switch (request) {
            case ExecutionRequest e -> execution(e);
            case ImportRequest i -> imageImport(i);
            default -> throw new IllegalArgumentException("no wire shape for " + request.getClass().getName());
        };
    }

    /** MCP-old validates this strictly: no nulls where it wants values. */
    private static ObjectNode execution(ExecutionRequest r) {
        InstanceSpec spec = r.spec();
        ObjectNode o = Json.object();
        o.put("command", spec.command());
        o.put("image", r.imageUuid());
        o.put("shell", spec.shell());
        ArrayNode args = o.putArray("args");
        spec.args().forEach(args::add);
        ObjectNode env = o.putObject("env");
        spec.env().forEach((k, v) -> { if (v != null) env.put(k, v); });
        o.put("preserve_env", spec.preserveEnv());
        o.put("cwd", spec.cwd());
        o.put("hostname", spec.hostname());
        o.put("disposable", spec.disposable());
        o.set("stdin", StreamRepr.repr(spec.stdin(), r.stdinOmitted()));
        o.put("timeout", spec.timeoutSeconds());
        o.put("truncate_output_at", spec.truncateOutputAt());
        ObjectNode files = o.putObject("files");
        spec.files().forEach((path, f) -> {
            ObjectNode fo = files.putObject(path);
            fo.put("uuid", f.fileUuid());
            fo.put("mode", String.format("%04o", f.mode()));
            fo.put("uid", f.uid());
            fo.put("gid", f.gid());
        });
        o.put("uid", spec.uid());
        o.put("gid", spec.gid());
        o.putObject("resources_limits").put("max_layer_bytes", spec.maxLayerBytes());
        o.putObject("networking").put("enabled", spec.networking());
        o.putNull("result");
        return o;
    }

    /** The password never: only that credentials were given. */
    private static ObjectNode imageImport(ImportRequest r) {
        ObjectNode o = Json.object();
        ObjectNode registry = o.putObject("registry");
        registry.put("url", r.url());
        if (r.hasCredentials()) {
            ObjectNode creds = registry.putObject("credentials");
            creds.put("username", r.username());
            creds.put("password", "<MASKED>");
        }
        o.put("tag", r.tag());
        o.put("timeout", r.timeoutSeconds());
        return o;
    }

    /** {@code InstanceResult}: the main process's state, its captured output and its resources. */
    static ObjectNode result(ExecutionResult result) {
        SandboxResult r = result.sandbox();
        ObjectNode o = Json.object();
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
        ResourceUsage u = result.usage();
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
        res.put("layer_bytes", result.layerBytes());
        res.put("cgroup_memory_peak", u.cgroupMemoryPeakBytes());
        res.put("cgroup_cpu_time", u.cgroupCpuSeconds());
        return o;
    }
}
