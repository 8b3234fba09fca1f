package dev.contree.api;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.operations.EventPayload;
import dev.contree.sandbox.ResourceUsage;

import java.util.Locale;

/** The {@code data} of each event type on the wire. */
final class EventData {
    private EventData() {}

    static ObjectNode of(EventPayload payload) {
        return switch (payload) {
            case EventPayload.Init i -> init(i);
            case EventPayload.Spawn s -> spawn(s);
            case EventPayload.Output out -> StreamRepr.eventData(out.bytes());
            case EventPayload.Truncated t -> truncated(t);
            case EventPayload.SizeCap c -> sizeCap(c);
            case EventPayload.Exit e -> exit(e);
            case EventPayload.Shutdown s -> shutdown(s);
            case EventPayload.Completion c -> completion(c);
        };
    }

    private static ObjectNode init(EventPayload.Init i) {
        ObjectNode o = Json.object();
        o.put("started_at", i.startedAt().toString());
        o.put("runtime_path", i.runtimePath());
        o.put("verbose", i.verbose());
        o.put("init_pid", i.initPid());
        return o;
    }

    private static ObjectNode spawn(EventPayload.Spawn s) {
        ObjectNode o = Json.object();
        o.put("pid", s.pid());
        o.put("command", s.command());
        ArrayNode args = o.putArray("args");
        s.args().forEach(args::add);
        o.put("shell", s.shell());
        o.put("cwd", s.cwd());
        o.put("uid", s.uid());
        o.put("gid", s.gid());
        o.put("timeout", s.timeoutSeconds());
        o.put("truncate_at", s.truncateAt());
        ObjectNode env = o.putObject("env");
        s.env().forEach(env::put);
        return o;
    }

    private static ObjectNode truncated(EventPayload.Truncated t) {
        ObjectNode o = Json.object();
        o.put("stream", t.stream().name);
        o.put("bytes_emitted", t.bytesEmitted());
        o.put("bytes_dropped", t.bytesDropped());
        return o;
    }

    private static ObjectNode sizeCap(EventPayload.SizeCap c) {
        ObjectNode o = Json.object();
        o.put("limit_bytes", c.limitBytes());
        o.put("file_size", c.layerBytes());
        return o;
    }

    private static ObjectNode exit(EventPayload.Exit e) {
        ResourceUsage u = e.usage();
        ObjectNode o = Json.object();
        o.put("pid", e.pid());
        o.put("code", e.exitCode());
        o.put("signal", e.signal());
        o.put("timed_out", e.timedOut());
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

    /** The sandbox is gone: {@code reason} is job_complete, cancelled or error. */
    private static ObjectNode shutdown(EventPayload.Shutdown s) {
        ObjectNode o = Json.object();
        o.put("stopped_at", s.stoppedAt().toString());
        o.put("reason", s.reason().name().toLowerCase(Locale.ROOT));
        return o;
    }

    /** Its error text gets the same host-path scrub as responses. */
    private static ObjectNode completion(EventPayload.Completion c) {
        ObjectNode o = Json.object();
        o.put("status", c.status().name());
        o.put("error", HostPaths.scrub(c.error()));
        o.put("duration_ms", c.durationMillis());
        o.put("result_image_uuid", c.resultImageUuid());
        o.put("image_size_bytes", c.imageSizeBytes());
        return o;
    }
}
