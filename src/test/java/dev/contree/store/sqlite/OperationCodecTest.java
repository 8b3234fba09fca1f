package dev.contree.store.sqlite;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.imports.ImportRequest;
import dev.contree.instances.ExecutionRequest;
import dev.contree.instances.ExecutionResult;
import dev.contree.instances.InstanceSpec;
import dev.contree.operations.EventPayload;
import dev.contree.operations.OperationKind;
import dev.contree.operations.OperationStatus;
import dev.contree.sandbox.ResourceUsage;
import dev.contree.sandbox.SandboxResult;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The format this server writes ({@code "v": 2}, the domain records bound by Jackson) reads back as the same
 * values. Every value below differs from its type's default, so a component the codec dropped would read back as
 * 0, false or null and fail the comparison. (Rows of older servers: {@link StoredOperationsTest}.)
 */
class OperationCodecTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final byte[] BINARY = {0, 1, (byte) 0xff, (byte) 0xc3, 0x28, '\n', 'a'};

    static ResourceUsage usage() {
        return new ResourceUsage(1.25, 0.5, 2048, 11, 12, 13, 14, 15, 16, 17, 18, 3.75, 4096, 2.5, 19, 20);
    }

    static ExecutionRequest execution() {
        Map<String, String> env = new LinkedHashMap<>();
        env.put("PATH", "/usr/bin:/bin");
        env.put("UNSET_ME", null);
        env.put("Z_LAST", "ünïcode \"quoted\"");
        Map<String, InstanceSpec.FileSpec> files = new LinkedHashMap<>();
        files.put("/etc/app.conf", new InstanceSpec.FileSpec("file-1", 0640, 1000, 1001));
        files.put("/usr/local/bin/run", new InstanceSpec.FileSpec("file-2", 04755, 0, 2));
        InstanceSpec spec = new InstanceSpec("printf", "tag:base", true, List.of("%s\\n", "two words"), env, true, "/work",
                "box", true, BINARY, 42, 777, files, 1000, 1001, 123456789, true, true);
        return new ExecutionRequest(spec, "image-uuid-1", true);
    }

    static ExecutionResult result() {
        SandboxResult r = new SandboxResult(3, 9, true, true, 77, usage(), BINARY, true, 9000, "warn\n".getBytes(), true,
                8000, true, "exec failed", "infra failed");
        return new ExecutionResult(r, 65536);
    }

    static List<EventPayload> everyPayload() {
        Map<String, String> env = new LinkedHashMap<>();
        env.put("HOME", "/root");
        env.put("TOKEN", "[REDACTED]");
        return List.of(
                new EventPayload.Init(Instant.parse("2024-05-06T07:08:09.123456789Z"), "/usr/bin/runc", true, 5),
                new EventPayload.Spawn(6, "sh", List.of("-c", "echo hi"), true, "/tmp", 1000, 1001, 30, 4096, env),
                new EventPayload.Output(EventPayload.Stream.STDOUT, BINARY),
                new EventPayload.Output(EventPayload.Stream.STDERR, "plain text\n".getBytes()),
                new EventPayload.Truncated(EventPayload.Stream.STDERR, 100, 23),
                new EventPayload.SizeCap(1 << 20, (1 << 20) + 1),
                new EventPayload.Exit(6, 2, 15, true, usage()),
                new EventPayload.Shutdown(Instant.parse("2024-05-06T07:08:10Z"), EventPayload.Shutdown.Reason.CANCELLED),
                new EventPayload.Completion(OperationStatus.FAILED, "boom at /var/lib/contree", 1500, "image-2", 8192));
    }

    @Test
    void executionRequestRoundTrips() throws Exception {
        String text = OperationCodec.metadata(execution(), null);
        OperationCodec.Metadata back = OperationCodec.metadata(OperationKind.INSTANCE, text);

        assertThat(back.request()).usingRecursiveComparison().isEqualTo(execution());
        assertThat(((ExecutionRequest) back.request()).spec().env()).containsEntry("UNSET_ME", null)
                .containsOnlyKeys("PATH", "UNSET_ME", "Z_LAST");
        assertThat(back.result()).isNull();
        assertThat(JSON.readTree(text).get("v").asInt()).isEqualTo(2);
    }

    @Test
    void executionWithResultRoundTrips() throws Exception {
        String text = OperationCodec.metadata(execution(), result());
        OperationCodec.Metadata back = OperationCodec.metadata(OperationKind.INSTANCE, text);

        assertThat(back.request()).usingRecursiveComparison().isEqualTo(execution());
        assertThat(back.result()).usingRecursiveComparison().isEqualTo(result());
        assertThat(((ExecutionResult) back.result()).sandbox().stdout()).containsExactly(BINARY);
    }

    @Test
    void importRequestRoundTripsWithoutItsPassword() throws Exception {
        ImportRequest given = new ImportRequest("docker://registry.example/app:1", "robot", "s3cret-token", "app", 600);
        String text = OperationCodec.metadata(given, null);
        OperationCodec.Metadata back = OperationCodec.metadata(OperationKind.IMAGE_IMPORT, text);

        assertThat(text).doesNotContain("s3cret-token");
        assertThat(back.request()).isEqualTo(new ImportRequest("docker://registry.example/app:1", "robot",
                ImportRequest.PASSWORD_NOT_KEPT, "app", 600));
        assertThat(back.result()).isNull();

        ImportRequest anonymous = new ImportRequest("alpine", "", "", null, 300);
        assertThat(OperationCodec.metadata(OperationKind.IMAGE_IMPORT, OperationCodec.metadata(anonymous, null)).request())
                .isEqualTo(anonymous);
    }

    @Test
    void everyPayloadKindRoundTrips() throws Exception {
        List<EventPayload> payloads = everyPayload();
        assertThat(payloads.stream().map(Object::getClass).distinct().toList())
                .as("one payload of each kind")
                .containsExactlyInAnyOrder(EventPayload.class.getPermittedSubclasses());
        for (EventPayload p : payloads) {
            String text = OperationCodec.eventData(p);
            assertThat(JSON.readTree(text).get("v").asInt()).isEqualTo(2);
            assertThat(OperationCodec.event(p.type(), text)).as(p.type()).usingRecursiveComparison().isEqualTo(p);
        }
    }

    @Test
    void unknownTypesAndFormatsAreCorrupt() {
        String exit = OperationCodec.eventData(everyPayload().get(6));
        assertThatThrownBy(() -> OperationCodec.event("no_such_type", exit)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("unknown event type");
        String future = exit.replace("\"v\":2", "\"v\":3");
        assertThatThrownBy(() -> OperationCodec.event("exit", future)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("unknown format");
        assertThatThrownBy(() -> OperationCodec.event("exit", "{\"v\":2,\"payload\":{\"pid\":\"x\"}}"))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("corrupt");
    }

    /** A row carries its domain values, not a wire rendering: nothing the codec does not know is added or lost. */
    @Test
    void storedFormIsTheDomainRecord() throws Exception {
        JsonNode stored = JSON.readTree(OperationCodec.metadata(execution(), result()));
        assertThat(iterable(stored.fieldNames())).containsExactly("v", "request", "result");
        assertThat(iterable(stored.get("request").get("spec").fieldNames())).containsExactlyElementsOf(
                Arrays.stream(InstanceSpec.class.getRecordComponents()).map(c -> c.getName()).toList());
        assertThat(iterable(stored.get("result").get("sandbox").get("usage").fieldNames())).containsExactlyElementsOf(
                Arrays.stream(ResourceUsage.class.getRecordComponents()).map(c -> c.getName()).toList());
    }

    private static <T> List<T> iterable(java.util.Iterator<T> it) {
        List<T> out = new java.util.ArrayList<>();
        it.forEachRemaining(out::add);
        return out;
    }
}
