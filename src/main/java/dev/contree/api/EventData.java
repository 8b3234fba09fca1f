package dev.contree.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.operations.EventPayload;
import dev.contree.sandbox.ResourceUsage;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The {@code data} of each event type on the wire: one record per type, fields in wire order. */
final class EventData {
    private EventData() {}

    record Init(String startedAt, String runtimePath, boolean verbose, int initPid) {}

    /** {@code network} (how the process reaches the network: {@code slirp4netns}, {@code namespace}) only when it does. */
    record Spawn(int pid, String command, List<String> args, boolean shell, String cwd, int uid, int gid, int timeout,
                 long truncateAt, Map<String, String> env, @JsonInclude(JsonInclude.Include.NON_NULL) String network) {}

    record Truncated(String stream, long bytesEmitted, long bytesDropped) {}

    record SizeCap(long limitBytes, long fileSize) {}

    record Exit(int pid, int code, int signal, boolean timedOut, long durationMs, ExitResources resources) {}

    /** Linux keeps no shared/unshared memory or IPC message counts in rusage: always 0, as getrusage says. */
    record ExitResources(long userTimeUs, long sysTimeUs, long maxRssKb, long minorFaults, long majorFaults,
                         long voluntaryCtxSwitches, long involuntaryCtxSwitches, long blockInputOps, long blockOutputOps,
                         long signalsReceived, long swaps, int sharedMemory, int unsharedMemory, int ipcMsgsSent,
                         int ipcMsgsReceived) {}

    /** The sandbox is gone: {@code reason} is job_complete, cancelled or error. */
    record Shutdown(String stoppedAt, String reason) {}

    /** An import's progress (ours: the hosted API has no such event; clients pass unknown types through). */
    record Progress(int layersDone, int layersTotal, long bytesFetched, long bytesTotal, long bytesUnpacked) {}

    record Completion(String status, String error, long durationMs, String resultImageUuid, long imageSizeBytes) {}

    static ObjectNode of(EventPayload payload) {
        return Json.tree(shape(payload));
    }

    static Record shape(EventPayload payload) {
        return switch (payload) {
            case EventPayload.Init i -> new Init(i.startedAt().toString(), i.runtimePath(), i.verbose(), i.initPid());
            case EventPayload.Spawn s -> new Spawn(s.pid(), s.command(), s.args(), s.shell(), s.cwd(), s.uid(), s.gid(),
                    s.timeoutSeconds(), s.truncateAt(), s.env(), "none".equals(s.network()) ? null : s.network());
            case EventPayload.Output out -> StreamRepr.encoded(out.bytes());
            case EventPayload.Truncated t -> new Truncated(t.stream().name, t.bytesEmitted(), t.bytesDropped());
            case EventPayload.SizeCap c -> new SizeCap(c.limitBytes(), c.layerBytes());
            case EventPayload.Exit e -> exit(e);
            case EventPayload.Shutdown s -> new Shutdown(s.stoppedAt().toString(), s.reason().name().toLowerCase(Locale.ROOT));
            case EventPayload.Progress p -> new Progress(p.layersDone(), p.layersTotal(), p.bytesFetched(), p.bytesTotal(),
                    p.bytesUnpacked());
            // Its error text gets the same host-path scrub as responses.
            case EventPayload.Completion c -> new Completion(c.status().name(), HostPaths.scrub(c.error()), c.durationMillis(),
                    c.resultImageUuid(), c.imageSizeBytes());
        };
    }

    private static Exit exit(EventPayload.Exit e) {
        ResourceUsage u = e.usage();
        ExitResources resources = new ExitResources(Math.round(u.userCpuSeconds() * 1e6), Math.round(u.systemCpuSeconds() * 1e6),
                u.maxRssKiB(), u.minorFaults(), u.majorFaults(), u.voluntarySwitches(), u.involuntarySwitches(),
                u.blockInput(), u.blockOutput(), u.signals(), u.swaps(), 0, 0, 0, 0);
        return new Exit(e.pid(), e.exitCode(), e.signal(), e.timedOut(), Math.round(Math.max(0, u.elapsedSeconds()) * 1000),
                resources);
    }
}
