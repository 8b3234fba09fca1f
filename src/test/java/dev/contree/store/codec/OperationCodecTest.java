package dev.contree.store.codec;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.imports.ImportRequest;
import dev.contree.instances.ExecutionRequest;
import dev.contree.instances.ExecutionResult;
import dev.contree.instances.InstanceSpec;
import dev.contree.operations.EventPayload;
import dev.contree.operations.OperationKind;
import dev.contree.operations.SampleValues;
import dev.contree.sandbox.ResourceUsage;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static dev.contree.operations.SampleValues.everyPayload;
import static dev.contree.operations.SampleValues.execution;
import static dev.contree.operations.SampleValues.importWithCredentials;
import static dev.contree.operations.SampleValues.result;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The format this server writes ({@code "v": 2}, the domain records bound by Jackson) reads back as the same
 * values. Every sample value differs from its type's default ({@link SampleValues}), so a component the codec
 * dropped would read back as 0, false or null and fail the comparison. (Rows of older servers: {@code sqlite.StoredOperationsTest}.)
 */
class OperationCodecTest {
    private static final ObjectMapper JSON = new ObjectMapper();

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
        assertThat(((ExecutionResult) back.result()).sandbox().stdout()).containsExactly(SampleValues.BINARY);
    }

    /** Stdin past what is kept: the request records that it was left out. */
    @Test
    void executionWithOmittedStdinRoundTrips() {
        InstanceSpec big = new InstanceSpec("cat", "image-uuid-1", false, List.of(), Map.of(), false, "", "linuxkit", false,
                new byte[ExecutionRequest.MAX_KEPT_STDIN + 1], 60, 1 << 20, Map.of(), 0, 0, 1 << 30, false, false);
        ExecutionRequest request = ExecutionRequest.of(big, "image-uuid-1");
        assertThat(request.stdinOmitted()).isTrue();
        OperationCodec.Metadata back = OperationCodec.metadata(OperationKind.INSTANCE, OperationCodec.metadata(request, null));
        assertThat(back.request()).usingRecursiveComparison().isEqualTo(request);
    }

    @Test
    void importRequestRoundTripsWithoutItsPassword() throws Exception {
        ImportRequest given = importWithCredentials();
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
