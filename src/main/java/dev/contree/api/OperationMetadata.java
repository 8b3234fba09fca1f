package dev.contree.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.imports.ImportRequest;
import dev.contree.instances.ExecutionRequest;
import dev.contree.instances.ExecutionResult;
import dev.contree.instances.InstanceSpec;
import dev.contree.operations.Operation;
import dev.contree.operations.OperationRequest;
import dev.contree.sandbox.ResourceUsage;
import dev.contree.sandbox.SandboxResult;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An operation's {@code metadata}: the normalised request (also echoed in the 202 that accepted it) and, for a
 * finished execution, its {@code result} ({@code InstanceResult}).
 */
final class OperationMetadata {
    private OperationMetadata() {}

    /** MCP-old validates this strictly: no nulls where it wants values. {@code result} is null until it finished. */
    record Execution(String command, String image, boolean shell, List<String> args, Map<String, String> env,
                     boolean preserveEnv, String cwd, String hostname, boolean disposable, StreamRepr.Repr stdin,
                     int timeout, long truncateOutputAt, Map<String, File> files, int uid, int gid,
                     ResourcesLimits resourcesLimits, Networking networking, InstanceResult result) {}

    record File(String uuid, String mode, int uid, int gid) {}

    record ResourcesLimits(long maxLayerBytes) {}

    record Networking(boolean enabled) {}

    record Import(Registry registry, String tag, int timeout) {}

    /** {@code credentials} only when some were given. */
    record Registry(String url, @JsonInclude(JsonInclude.Include.NON_NULL) Credentials credentials) {}

    /** The password never: only that one was given. */
    record Credentials(String username, String password) {}

    /** {@code InstanceResult}: the main process's state, its captured output and its resources. */
    record InstanceResult(State state, StreamRepr.Repr stdout, StreamRepr.Repr stderr, Resources resources) {}

    record State(int exitCode, int pid, int signal, boolean timedOut, boolean coreDump, boolean stopped, boolean continued) {}

    /**
     * Linux keeps no shared/unshared memory figures; nothing has a cost. The network byte counts (the sandbox's interface,
     * frames included) only for a run that had a network; -1 when its stack could not count them (a shared namespace).
     * The uplink's CPU time (ours, not the hosted API's) only for a run whose uplink had a cgroup measuring it.
     */
    record Resources(double elapsedTime, double monotonicTime, double userCpuTime, double systemCpuTime, long maxRss,
                     long pageFaults, long pageFaultsIo, long blockInput, long blockOutput, long voluntarySwitches,
                     long involuntarySwitches, long signals, long swaps, int sharedMemory, int unsharedMemory, double cost,
                     long layerBytes, long cgroupMemoryPeak, double cgroupCpuTime,
                     @JsonInclude(JsonInclude.Include.NON_NULL) Long networkBytesSent,
                     @JsonInclude(JsonInclude.Include.NON_NULL) Long networkBytesReceived,
                     @JsonInclude(JsonInclude.Include.NON_NULL) Long networkUplinkCpuMs) {}

    static ObjectNode of(Operation op) {
        return Json.tree(op.request() instanceof ExecutionRequest e && op.result() instanceof ExecutionResult r
                ? execution(e, result(r)) : shape(op.request()));
    }

    /** The request as {@code metadata} shows it; an execution's ends with {@code "result": null}. */
    static ObjectNode request(OperationRequest request) {
        return Json.tree(shape(request));
    }

    private static Record shape(OperationRequest request) {
        return switch (request) {
            case ExecutionRequest e -> execution(e, null);
            case ImportRequest i -> imageImport(i);
            default -> throw new IllegalArgumentException("no wire shape for " + request.getClass().getName());
        };
    }

    private static Execution execution(ExecutionRequest r, InstanceResult result) {
        InstanceSpec spec = r.spec();
        Map<String, String> env = new LinkedHashMap<>();
        spec.env().forEach((k, v) -> { if (v != null) env.put(k, v); });
        Map<String, File> files = new LinkedHashMap<>();
        spec.files().forEach((path, f) -> files.put(path, new File(f.fileUuid(), String.format("%04o", f.mode()), f.uid(), f.gid())));
        return new Execution(spec.command(), r.imageUuid(), spec.shell(), spec.args(), env, spec.preserveEnv(), spec.cwd(),
                spec.hostname(), spec.disposable(), StreamRepr.repr(spec.stdin(), r.stdinOmitted()), spec.timeoutSeconds(),
                spec.truncateOutputAt(), files, spec.uid(), spec.gid(), new ResourcesLimits(spec.maxLayerBytes()),
                new Networking(spec.networking()), result);
    }

    private static Import imageImport(ImportRequest r) {
        Credentials credentials = r.hasCredentials() ? new Credentials(r.username(), "<MASKED>") : null;
        return new Import(new Registry(r.url(), credentials), r.tag(), r.timeoutSeconds());
    }

    /** A process's {@code InstanceResult} on its own (a subprocess's record). */
    static ObjectNode instanceResult(ExecutionResult result) {
        return Json.tree(result(result));
    }

    private static InstanceResult result(ExecutionResult result) {
        SandboxResult r = result.sandbox();
        State state = new State(r.exitCode(), r.pid(), r.signal(), r.timedOut(), r.coreDump(), false, false);
        ResourceUsage u = result.usage();
        Resources resources = new Resources(u.elapsedSeconds(), u.elapsedSeconds(), u.userCpuSeconds(), u.systemCpuSeconds(),
                u.maxRssKiB(), u.minorFaults(), u.majorFaults(), u.blockInput(), u.blockOutput(), u.voluntarySwitches(),
                u.involuntarySwitches(), u.signals(), u.swaps(), 0, 0, 0.0, result.layerBytes(), u.cgroupMemoryPeakBytes(),
                u.cgroupCpuSeconds(), r.network() == null ? null : r.network().bytesSent(),
                r.network() == null ? null : r.network().bytesReceived(), r.network() == null ? null : r.network().uplinkCpuMillis());
        return new InstanceResult(state, StreamRepr.repr(r.stdout(), r.stdoutTruncated()),
                StreamRepr.repr(r.stderr(), r.stderrTruncated()), resources);
    }
}
