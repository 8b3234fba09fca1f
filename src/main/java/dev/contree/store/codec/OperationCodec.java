package dev.contree.store.codec;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.deser.std.StdScalarDeserializer;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.databind.ser.std.ToStringSerializer;
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

import java.io.IOException;
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
 * ({@code operation_events.data}): JSON text.
 *
 * <p>Rows are written as the domain records themselves, bound by Jackson, inside an object marked {@code "v": 2}
 * ({@code {"v":2,"request":…,"result":…}}, {@code {"v":2,"payload":…}}; an event's {@code type} column names its
 * payload's record). Renaming or dropping a component of those records changes this format: it then needs a new
 * {@code v} and a reader for the old one. Rows without {@code v} were written by older servers in the wire's shapes
 * of the time; they are read by the legacy half below, lenient about missing fields (a default value each). Unknown
 * event types are corrupt either way. The wire is rendered by {@code api} from the values, never from this text.
 *
 * <p>Every store engine writes and reads these same texts, so a row means the same in SQLite and in PostgreSQL.
 */
public final class OperationCodec {
    /** The format of rows this server writes. */
    private static final int FORMAT = 2;

    private static final ObjectMapper JSON = JsonMapper.builder()
            .addModule(new SimpleModule("instants")
                    .addSerializer(Instant.class, ToStringSerializer.instance)
                    .addDeserializer(Instant.class, new StdScalarDeserializer<>(Instant.class) {
                        @Override
                        public Instant deserialize(JsonParser p, DeserializationContext ctx) throws IOException {
                            return Instant.parse(p.getValueAsString());
                        }
                    }))
            .build();

    static {
        // Captured output reaches 10 MiB (about 14 M base64 characters): no per-string cap below the row's own size.
        JSON.getFactory().setStreamReadConstraints(StreamReadConstraints.builder().maxStringLength(Integer.MAX_VALUE).build());
    }

    /** A decoded {@code metadata} column. */
    public record Metadata(OperationRequest request, OperationResult result) {}

    /** A {@code metadata} column as this server writes it. */
    record StoredMetadata(int v, OperationRequest request, OperationResult result) {}

    /** An event's {@code data} column as this server writes it. */
    record StoredEvent(int v, EventPayload payload) {}

    private OperationCodec() {}

    // ------------------------------------------------------------------ metadata

    /** The {@code metadata} column for a request and (once finished) its result; a given password is not kept. */
    public static String metadata(OperationRequest request, OperationResult result) {
        return write(new StoredMetadata(FORMAT, stored(request), result));
    }

    /** The request as the {@code metadata} column keeps it (and a read gives it back): a given password is not kept. */
    public static OperationRequest stored(OperationRequest request) {
        return switch (request) {
            case ExecutionRequest e -> e;
            case ImportRequest i -> i.withoutPassword();
            default -> throw new IllegalArgumentException("no stored form for " + request.getClass().getName());
        };
    }

    /** The {@code result} member of a {@code metadata} column, as {@link #metadata} writes it. */
    public static String result(OperationResult result) {
        return write(result);
    }

    public static Metadata metadata(OperationKind kind, String text) {
        JsonNode o = read(text);
        if (o.has("v")) {
            version(o, text);
            return switch (kind) {
                case INSTANCE -> new Metadata(bind(o.get("request"), ExecutionRequest.class, text),
                        bind(o.get("result"), ExecutionResult.class, text));
                case IMAGE_IMPORT -> new Metadata(bind(o.get("request"), ImportRequest.class, text), null);
            };
        }
        return switch (kind) {
            case INSTANCE -> {
                JsonNode result = o.get("result");
                yield new Metadata(executionRequest(o), result == null || result.isNull() ? null : executionResult(result));
            }
            case IMAGE_IMPORT -> new Metadata(importRequest(o), null);
        };
    }

    // ------------------------------------------------------------------ events

    /** The {@code data} column of an event; its {@code type} column is {@link EventPayload#type()}. */
    public static String eventData(EventPayload payload) {
        return write(new StoredEvent(FORMAT, payload));
    }

    public static EventPayload event(String type, String text) {
        JsonNode o = read(text);
        if (!o.has("v")) return legacyEvent(type, o, text);
        version(o, text);
        Class<? extends EventPayload> record = switch (type) {
            case "init" -> EventPayload.Init.class;
            case "spawn" -> EventPayload.Spawn.class;
            case "stdout", "stderr" -> EventPayload.Output.class;
            case "truncated" -> EventPayload.Truncated.class;
            case "size_cap" -> EventPayload.SizeCap.class;
            case "exit" -> EventPayload.Exit.class;
            case "shutdown" -> EventPayload.Shutdown.class;
            case "progress" -> EventPayload.Progress.class;
            case "completion" -> EventPayload.Completion.class;
            default -> throw new IllegalStateException("unknown event type in operations store: " + type);
        };
        EventPayload payload = bind(o.get("payload"), record, text);
        if (payload == null) throw new IllegalStateException("corrupt " + type + " event in operations store: " + text);
        return payload;
    }

    // ------------------------------------------------------------------ rows of older servers (the wire's shapes)

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

    private static ImportRequest importRequest(JsonNode o) {
        JsonNode registry = o.path("registry");
        JsonNode creds = registry.get("credentials");
        boolean given = creds != null && creds.isObject();
        return new ImportRequest(registry.path("url").asText(""), given ? creds.path("username").asText("") : "",
                given ? ImportRequest.PASSWORD_NOT_KEPT : "", text(o, "tag"), o.path("timeout").asInt(ImportRequest.DEFAULT_TIMEOUT));
    }

    private static EventPayload legacyEvent(String type, JsonNode o, String text) {
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
                        o.path("truncate_at").asLong(), env, o.path("network").asText("none"));
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

    private static byte[] bytes(JsonNode o) {
        String value = o.path("value").asText("");
        return "base64".equals(o.path("encoding").asText()) ? Base64.getDecoder().decode(value)
                : value.getBytes(StandardCharsets.UTF_8);
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

    private static void version(JsonNode o, String text) {
        if (o.path("v").asInt() != FORMAT) throw new IllegalStateException("unknown format in operations store: " + text);
    }

    /** Null for an absent or null field. */
    private static <T> T bind(JsonNode node, Class<T> type, String text) {
        if (node == null || node.isNull()) return null;
        try {
            return JSON.treeToValue(node, type);
        } catch (JsonProcessingException | IllegalArgumentException e) {
            throw new IllegalStateException("corrupt " + type.getSimpleName() + " in operations store: " + text, e);
        }
    }

    private static String write(Object stored) {
        try {
            return JSON.writeValueAsString(stored);
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
