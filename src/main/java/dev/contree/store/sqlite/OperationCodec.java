package dev.contree.store.sqlite;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.imports.ImportRequest;
import dev.contree.instances.ExecutionRequest;
import dev.contree.instances.ExecutionResult;
import dev.contree.instances.InstanceSpec;
import dev.contree.operations.EventPayload;
import dev.contree.operations.OperationKind;
import dev.contree.operations.OperationRequest;
import dev.contree.operations.OperationResult;
import dev.contree.operations.OperationStatus;
import dev.contree.sandbox.ResourceUsage;
import dev.contree.sandbox.SandboxResult;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The stored form of an operation's request and result ({@code operations.metadata}) and of its events' payloads
 * ({@code operation_events.data}): JSON text. The shapes are the ones the server has always stored (which were the
 * wire's), so every row an older server wrote reads back as the same values; the wire is rendered from those values
 * by {@code api}, never from this text.
 *
 * <p>Reading is lenient about missing fields (a default value each), strict about unknown event types.
 */
final class OperationCodec {
    private static final ObjectMapper JSON = JsonMapper.builder().build();

    static {
        // Captured output reaches 10 MiB (about 14 M base64 characters): no per-string cap below the row's own size.
        JSON.getFactory().setStreamReadConstraints(StreamReadConstraints.builder().maxStringLength(Integer.MAX_VALUE).build());
    }

    /** A decoded {@code metadata} column. */
    record Metadata(OperationRequest request, OperationResult result) {}

    private OperationCodec() {}

    // ------------------------------------------------------------------ metadata

    /** The {@code metadata} column for a request and (once finished) its result. */
    static String metadata(OperationRequest request, OperationResult result) {
        ObjectNode o = switch (request) {
            case ExecutionRequest e -> execution(e, (ExecutionResult) result);
            case ImportRequest i -> importRequest(i);
            default -> throw new IllegalArgumentException("no stored form for " + request.getClass().getName());
        };
        return write(o);
    }

    static Metadata metadata(OperationKind kind, String text) {
        JsonNode o = read(text);
        return switch (kind) {
            case INSTANCE -> {
                JsonNode result = o.get("result");
                yield new Metadata(executionRequest(o), result == null || result.isNull() ? null : executionResult(result));
            }
            case IMAGE_IMPORT -> new Metadata(importRequest(o), null);
        };
    }

    private static ObjectNode execution(ExecutionRequest r, ExecutionResult result) {
        InstanceSpec spec = r.spec();
        ObjectNode o = JSON.createObjectNode();
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
        o.set("stdin", stream(spec.stdin(), r.stdinOmitted()));
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
        if (result == null) o.putNull("result");
        else o.set("result", executionResult(result));
        return o;
    }

    private static ExecutionRequest executionRequest(JsonNode o) {
        List<String> args = new ArrayList<>();
        o.path("args").forEach(a -> args.add(a.asText()));
        Map<String, String> env = new LinkedHashMap<>();
        o.path("env").properties().forEach(e -> env.put(e.getKey(), e.getValue().asText()));
        Map<String, InstanceSpec.FileSpec> files = new LinkedHashMap<>();
        o.path("files").properties().forEach(e -> {
            JsonNode f = e.getValue();
            files.put(e.getKey(), new InstanceSpec.FileSpec(f.path("uuid").asText(), Integer.parseInt(f.path("mode").asText("0644"), 8),
                    f.path("uid").asInt(), f.path("gid").asInt()));
        });
        JsonNode stdin = o.path("stdin");
        String image = text(o, "image");
        InstanceSpec spec = new InstanceSpec(o.path("command").asText(""), image, o.path("shell").asBoolean(), args, env,
                o.path("preserve_env").asBoolean(), o.path("cwd").asText(""), o.path("hostname").asText(InstanceSpec.DEFAULT_HOSTNAME),
                o.path("disposable").asBoolean(), bytes(stdin), o.path("timeout").asInt(InstanceSpec.DEFAULT_TIMEOUT),
                o.path("truncate_output_at").asLong(InstanceSpec.DEFAULT_TRUNCATE), files, o.path("uid").asInt(), o.path("gid").asInt(),
                o.path("resources_limits").path("max_layer_bytes").asLong(InstanceSpec.DEFAULT_MAX_LAYER_BYTES),
                o.path("networking").path("enabled").asBoolean(), false);
        return new ExecutionRequest(spec, image, stdin.path("truncated").asBoolean());
    }

    private static ObjectNode executionResult(ExecutionResult result) {
        SandboxResult r = result.sandbox();
        ObjectNode o = JSON.createObjectNode();
        ObjectNode state = o.putObject("state");
        state.put("exit_code", r.exitCode());
        state.put("pid", r.pid());
        state.put("signal", r.signal());
        state.put("timed_out", r.timedOut());
        state.put("core_dump", r.coreDump());
        state.put("stopped", false);
        state.put("continued", false);
        o.set("stdout", stream(r.stdout(), r.stdoutTruncated()));
        o.set("stderr", stream(r.stderr(), r.stderrTruncated()));
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

    private static ExecutionResult executionResult(JsonNode o) {
        JsonNode state = o.path("state");
        JsonNode res = o.path("resources");
        ResourceUsage usage = new ResourceUsage(res.path("user_cpu_time").asDouble(-1), res.path("system_cpu_time").asDouble(-1),
                res.path("max_rss").asLong(-1), res.path("page_faults").asLong(-1), res.path("page_faults_io").asLong(-1),
                res.path("block_input").asLong(-1), res.path("block_output").asLong(-1), res.path("voluntary_switches").asLong(-1),
                res.path("involuntary_switches").asLong(-1), res.path("signals").asLong(-1), res.path("swaps").asLong(-1),
                res.path("elapsed_time").asDouble(-1), res.path("cgroup_memory_peak").asLong(-1),
                res.path("cgroup_cpu_time").asDouble(-1), -1, -1);
        byte[] stdout = bytes(o.path("stdout")), stderr = bytes(o.path("stderr"));
        SandboxResult r = new SandboxResult(state.path("exit_code").asInt(-1), state.path("signal").asInt(-1),
                state.path("timed_out").asBoolean(), state.path("core_dump").asBoolean(), state.path("pid").asInt(-1), usage,
                stdout, o.path("stdout").path("truncated").asBoolean(), stdout.length,
                stderr, o.path("stderr").path("truncated").asBoolean(), stderr.length, false, null, null);
        return new ExecutionResult(r, res.path("layer_bytes").asLong());
    }

    private static ObjectNode importRequest(ImportRequest r) {
        ObjectNode o = JSON.createObjectNode();
        ObjectNode registry = o.putObject("registry");
        registry.put("url", r.url());
        if (r.hasCredentials()) {
            ObjectNode creds = registry.putObject("credentials");
            creds.put("username", r.username());
            creds.put("password", ImportRequest.PASSWORD_NOT_KEPT);
        }
        o.put("tag", r.tag());
        o.put("timeout", r.timeoutSeconds());
        return o;
    }

    private static ImportRequest importRequest(JsonNode o) {
        JsonNode registry = o.path("registry");
        JsonNode creds = registry.get("credentials");
        boolean given = creds != null && creds.isObject();
        return new ImportRequest(registry.path("url").asText(""), given ? creds.path("username").asText("") : "",
                given ? ImportRequest.PASSWORD_NOT_KEPT : "", text(o, "tag"), o.path("timeout").asInt(ImportRequest.DEFAULT_TIMEOUT));
    }

    // ------------------------------------------------------------------ events

    /** The {@code data} column of an event; its {@code type} column is {@link EventPayload#type()}. */
    static String eventData(EventPayload payload) {
        ObjectNode o = JSON.createObjectNode();
        switch (payload) {
            case EventPayload.Init i -> {
                o.put("started_at", i.startedAt().toString());
                o.put("runtime_path", i.runtimePath());
                o.put("verbose", i.verbose());
                o.put("init_pid", i.initPid());
            }
            case EventPayload.Spawn s -> {
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
            }
            case EventPayload.Output out -> putBytes(o, out.bytes());
            case EventPayload.Truncated t -> {
                o.put("stream", t.stream().name);
                o.put("bytes_emitted", t.bytesEmitted());
                o.put("bytes_dropped", t.bytesDropped());
            }
            case EventPayload.SizeCap c -> {
                o.put("limit_bytes", c.limitBytes());
                o.put("file_size", c.layerBytes());
            }
            case EventPayload.Exit e -> {
                ResourceUsage u = e.usage();
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
                res.put("shared_memory", 0);
                res.put("unshared_memory", 0);
                res.put("ipc_msgs_sent", 0);
                res.put("ipc_msgs_received", 0);
            }
            case EventPayload.Shutdown s -> {
                o.put("stopped_at", s.stoppedAt().toString());
                o.put("reason", s.reason().name().toLowerCase(Locale.ROOT));
            }
            case EventPayload.Completion c -> {
                o.put("status", c.status().name());
                o.put("error", c.error());
                o.put("duration_ms", c.durationMillis());
                o.put("result_image_uuid", c.resultImageUuid());
                o.put("image_size_bytes", c.imageSizeBytes());
            }
        }
        return write(o);
    }

    static EventPayload event(String type, String text) {
        JsonNode o = read(text);
        return switch (type) {
            case "init" -> new EventPayload.Init(instant(o, "started_at"), o.path("runtime_path").asText(""),
                    o.path("verbose").asBoolean(), o.path("init_pid").asInt(1));
            case "spawn" -> {
                List<String> args = new ArrayList<>();
                o.path("args").forEach(a -> args.add(a.asText()));
                Map<String, String> env = new LinkedHashMap<>();
                o.path("env").properties().forEach(e -> env.put(e.getKey(), e.getValue().asText()));
                yield new EventPayload.Spawn(o.path("pid").asInt(1), o.path("command").asText(""), args, o.path("shell").asBoolean(),
                        o.path("cwd").asText(""), o.path("uid").asInt(), o.path("gid").asInt(), o.path("timeout").asInt(),
                        o.path("truncate_at").asLong(), env);
            }
            case "stdout", "stderr" -> new EventPayload.Output(EventPayload.Stream.parse(type), bytes(o));
            case "truncated" -> new EventPayload.Truncated(stream(o.path("stream").asText()), o.path("bytes_emitted").asLong(),
                    o.path("bytes_dropped").asLong());
            case "size_cap" -> new EventPayload.SizeCap(o.path("limit_bytes").asLong(), o.path("file_size").asLong());
            case "exit" -> {
                JsonNode res = o.path("resources");
                ResourceUsage usage = new ResourceUsage(res.path("user_time_us").asLong(-1_000_000) / 1e6,
                        res.path("sys_time_us").asLong(-1_000_000) / 1e6, res.path("max_rss_kb").asLong(-1),
                        res.path("minor_faults").asLong(-1), res.path("major_faults").asLong(-1), res.path("block_input_ops").asLong(-1),
                        res.path("block_output_ops").asLong(-1), res.path("voluntary_ctx_switches").asLong(-1),
                        res.path("involuntary_ctx_switches").asLong(-1), res.path("signals_received").asLong(-1),
                        res.path("swaps").asLong(-1), o.path("duration_ms").asLong() / 1000.0, -1, -1, -1, -1);
                yield new EventPayload.Exit(o.path("pid").asInt(-1), o.path("code").asInt(-1), o.path("signal").asInt(-1),
                        o.path("timed_out").asBoolean(), usage);
            }
            case "shutdown" -> new EventPayload.Shutdown(instant(o, "stopped_at"),
                    EventPayload.Shutdown.Reason.valueOf(o.path("reason").asText("job_complete").toUpperCase(Locale.ROOT)));
            case "completion" -> {
                OperationStatus status = OperationStatus.parse(o.path("status").asText());
                if (status == null) throw new IllegalStateException("corrupt completion event in operations store: " + text);
                yield new EventPayload.Completion(status, text(o, "error"), o.path("duration_ms").asLong(),
                        text(o, "result_image_uuid"), o.path("image_size_bytes").asLong());
            }
            default -> throw new IllegalStateException("unknown event type in operations store: " + type);
        };
    }

    // ------------------------------------------------------------------ shared pieces

    /** Bytes as {@code value} + {@code encoding}: printable ASCII (plus tab, CR, LF) as text, anything else base64. */
    private static void putBytes(ObjectNode o, byte[] b) {
        if (printable(b)) {
            o.put("value", new String(b, StandardCharsets.US_ASCII));
            o.put("encoding", "ascii");
        } else {
            o.put("value", Base64.getEncoder().encodeToString(b));
            o.put("encoding", "base64");
        }
    }

    private static ObjectNode stream(byte[] b, boolean truncated) {
        ObjectNode o = JSON.createObjectNode();
        putBytes(o, b);
        o.put("truncated", truncated);
        return o;
    }

    private static byte[] bytes(JsonNode o) {
        String value = o.path("value").asText("");
        return "base64".equals(o.path("encoding").asText()) ? Base64.getDecoder().decode(value)
                : value.getBytes(StandardCharsets.UTF_8);
    }

    private static boolean printable(byte[] b) {
        for (byte x : b) {
            int c = x & 0xff;
            if ((c < 32 || c > 126) && c != '\t' && c != '\n' && c != '\r') return false;
        }
        return true;
    }

    private static EventPayload.Stream stream(String name) {
        EventPayload.Stream s = EventPayload.Stream.parse(name);
        if (s == null) throw new IllegalStateException("corrupt truncated event in operations store: stream '" + name + "'");
        return s;
    }

    private static String text(JsonNode o, String field) {
        JsonNode v = o.get(field);
        return v == null || v.isNull() ? null : v.asText();
    }

    private static Instant instant(JsonNode o, String field) {
        String s = text(o, field);
        return s == null ? Instant.EPOCH : Instant.parse(s);
    }

    private static String write(ObjectNode o) {
        try {
            return JSON.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static JsonNode read(String text) {
        try {
            JsonNode node = JSON.readTree(text);
            if (node == null || !node.isObject()) throw new IllegalStateException("corrupt JSON in operations store: not an object");
            return node;
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("corrupt JSON in operations store", e);
        }
    }
}
