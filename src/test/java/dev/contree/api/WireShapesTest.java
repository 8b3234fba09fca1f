package dev.contree.api;

import dev.contree.auth.Principal;
import dev.contree.imports.ImportRequest;
import dev.contree.operations.EventPayload;
import dev.contree.operations.Operation;
import dev.contree.operations.OperationKind;
import dev.contree.operations.OperationRequest;
import dev.contree.operations.OperationResult;
import dev.contree.operations.OperationStatus;
import org.junit.jupiter.api.Test;

import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.contree.operations.SampleValues.everyPayload;
import static dev.contree.operations.SampleValues.execution;
import static dev.contree.operations.SampleValues.importWithCredentials;
import static dev.contree.operations.SampleValues.result;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * The wire records render byte for byte as the put-chains they replaced: every expected text below was produced by
 * the pre-record {@code OperationMetadata}, {@code EventData} and {@code StreamRepr} from the same
 * {@link dev.contree.operations.SampleValues} (field order, nulls, the unset env entry left out, base64 for binary
 * output, the password masked).
 */
class WireShapesTest {
    static Operation operation(OperationRequest request, OperationResult result) {
        return new Operation("op-1", "acct", OperationKind.INSTANCE, OperationStatus.SUCCESS, null, Instant.EPOCH, null, null,
                null, null, null, null, null, null, request, result);
    }

    private static String json(Object node) throws Exception {
        return Json.MAPPER.writeValueAsString(node);
    }

    @Test
    void executionMetadata() throws Exception {
        assertThat(json(OperationMetadata.request(execution()))).isEqualTo(
                "{\"command\":\"printf\",\"image\":\"image-uuid-1\",\"shell\":true,\"args\":[\"%s\\\\n\",\"two words\"],\"env\":{\"PATH\":\"/usr/bin:/bin\",\"Z_LAST\":\"\u00fcn\u00efcode \\\"quoted\\\"\"},\"preserve_env\":true,\"cwd\":\"/work\",\"hostname\":\"box\",\"disposable\":true,\"stdin\":{\"value\":\"AAH/wygKYQ==\",\"encoding\":\"base64\",\"truncated\":false},\"timeout\":42,\"truncate_output_at\":777,\"files\":{\"/etc/app.conf\":{\"uuid\":\"file-1\",\"mode\":\"0640\",\"uid\":1000,\"gid\":1001},\"/usr/local/bin/run\":{\"uuid\":\"file-2\",\"mode\":\"4755\",\"uid\":0,\"gid\":2}},\"uid\":1000,\"gid\":1001,\"resources_limits\":{\"max_layer_bytes\":123456789},\"networking\":{\"enabled\":true},\"result\":null}");
        assertThat(json(OperationMetadata.of(operation(execution(), result())))).isEqualTo(
                "{\"command\":\"printf\",\"image\":\"image-uuid-1\",\"shell\":true,\"args\":[\"%s\\\\n\",\"two words\"],\"env\":{\"PATH\":\"/usr/bin:/bin\",\"Z_LAST\":\"\u00fcn\u00efcode \\\"quoted\\\"\"},\"preserve_env\":true,\"cwd\":\"/work\",\"hostname\":\"box\",\"disposable\":true,\"stdin\":{\"value\":\"AAH/wygKYQ==\",\"encoding\":\"base64\",\"truncated\":false},\"timeout\":42,\"truncate_output_at\":777,\"files\":{\"/etc/app.conf\":{\"uuid\":\"file-1\",\"mode\":\"0640\",\"uid\":1000,\"gid\":1001},\"/usr/local/bin/run\":{\"uuid\":\"file-2\",\"mode\":\"4755\",\"uid\":0,\"gid\":2}},\"uid\":1000,\"gid\":1001,\"resources_limits\":{\"max_layer_bytes\":123456789},\"networking\":{\"enabled\":true},\"result\":{\"state\":{\"exit_code\":3,\"pid\":77,\"signal\":9,\"timed_out\":true,\"core_dump\":true,\"stopped\":false,\"continued\":false},\"stdout\":{\"value\":\"AAH/wygKYQ==\",\"encoding\":\"base64\",\"truncated\":true},\"stderr\":{\"value\":\"warn\\n\",\"encoding\":\"ascii\",\"truncated\":true},\"resources\":{\"elapsed_time\":3.75,\"monotonic_time\":3.75,\"user_cpu_time\":1.25,\"system_cpu_time\":0.5,\"max_rss\":2048,\"page_faults\":11,\"page_faults_io\":12,\"block_input\":13,\"block_output\":14,\"voluntary_switches\":15,\"involuntary_switches\":16,\"signals\":17,\"swaps\":18,\"shared_memory\":0,\"unshared_memory\":0,\"cost\":0.0,\"layer_bytes\":65536,\"cgroup_memory_peak\":4096,\"cgroup_cpu_time\":2.5}}}");
    }

    @Test
    void importMetadata() throws Exception {
        assertThat(json(OperationMetadata.of(operation(importWithCredentials().withoutPassword(), null))))
                .isEqualTo("{\"registry\":{\"url\":\"docker://registry.example/app:1\",\"credentials\":{\"username\":\"robot\",\"password\":\"<MASKED>\"}},\"tag\":\"app\",\"timeout\":600}");
        assertThat(json(OperationMetadata.request(new ImportRequest("alpine", "", "", null, 300))))
                .isEqualTo("{\"registry\":{\"url\":\"alpine\"},\"tag\":null,\"timeout\":300}");
    }

    @Test
    void everyEventPayload() throws Exception {
        List<String> expected = List.of(
                "{\"started_at\":\"2024-05-06T07:08:09.123456789Z\",\"runtime_path\":\"/.contree/init\",\"verbose\":true,\"init_pid\":5}",
                "{\"pid\":6,\"command\":\"sh\",\"args\":[\"-c\",\"echo hi\"],\"shell\":true,\"cwd\":\"/tmp\",\"uid\":1000,\"gid\":1001,\"timeout\":30,\"truncate_at\":4096,\"env\":{\"HOME\":\"/root\",\"TOKEN\":\"<redacted>\"}}",
                "{\"value\":\"AAH/wygKYQ==\",\"encoding\":\"base64\"}",
                "{\"value\":\"plain text\\n\",\"encoding\":\"ascii\"}",
                "{\"stream\":\"stderr\",\"bytes_emitted\":100,\"bytes_dropped\":23}",
                "{\"limit_bytes\":1048576,\"file_size\":1048577}",
                "{\"pid\":6,\"code\":2,\"signal\":15,\"timed_out\":true,\"duration_ms\":3750,\"resources\":{\"user_time_us\":1250000,\"sys_time_us\":500000,\"max_rss_kb\":2048,\"minor_faults\":11,\"major_faults\":12,\"voluntary_ctx_switches\":15,\"involuntary_ctx_switches\":16,\"block_input_ops\":13,\"block_output_ops\":14,\"signals_received\":17,\"swaps\":18,\"shared_memory\":0,\"unshared_memory\":0,\"ipc_msgs_sent\":0,\"ipc_msgs_received\":0}}",
                "{\"pid\":7,\"code\":0,\"signal\":-1,\"timed_out\":false,\"duration_ms\":0,\"resources\":{\"user_time_us\":-1000000,\"sys_time_us\":-1000000,\"max_rss_kb\":-1,\"minor_faults\":-1,\"major_faults\":-1,\"voluntary_ctx_switches\":-1,\"involuntary_ctx_switches\":-1,\"block_input_ops\":-1,\"block_output_ops\":-1,\"signals_received\":-1,\"swaps\":-1,\"shared_memory\":0,\"unshared_memory\":0,\"ipc_msgs_sent\":0,\"ipc_msgs_received\":0}}",
                "{\"stopped_at\":\"2024-05-06T07:08:10Z\",\"reason\":\"cancelled\"}",
                "{\"layers_done\":1,\"layers_total\":3,\"bytes_fetched\":4096,\"bytes_total\":-1,\"bytes_unpacked\":10000}",
                "{\"status\":\"FAILED\",\"error\":\"boom\",\"duration_ms\":1500,\"result_image_uuid\":\"image-2\",\"image_size_bytes\":8192}",
                "{\"status\":\"SUCCESS\",\"error\":null,\"duration_ms\":1500,\"result_image_uuid\":null,\"image_size_bytes\":0}");
        List<EventPayload> payloads = everyPayload();
        assertThat(payloads.stream().map(Object::getClass).distinct().toList())
                .containsExactlyInAnyOrder(EventPayload.class.getPermittedSubclasses());
        for (int i = 0; i < payloads.size(); i++) assertThat(json(EventData.of(payloads.get(i)))).isEqualTo(expected.get(i));
    }

    /** As the server answered before the records (wire capture of {@code GET /v1/whoami}); the account cap only when set. */
    @Test
    void whoami() throws Exception {
        ApiConfig.Limits limits = new ApiConfig.Limits(3600, 4, 3, 3600, 8589934592L, 1073741824L, 512, 1.0, 17179869184L,
                Long.MAX_VALUE);
        Map<String, Long> counts = new LinkedHashMap<>();
        counts.put("CANCELLED", 1L);
        counts.put("SUCCESS", 3L);
        assertThat(json(Json.tree(WhoamiRoute.body(new Principal("acct", "UUID", null), limits, counts)))).isEqualTo(
                "{\"token_uuid\":\"UUID\",\"token_expiration\":null,\"permissions\":{\"list\":true,\"spawn\":true,\"spawn_disposable\":true,\"import\":true,\"cancel\":true,\"set_image_tag\":true},\"limits\":{\"instance_max_timeout\":3600,\"instance_max_concurrency\":4,\"images_import_max_timeout\":3600,\"max_upload_bytes\":8589934592,\"instance_memory_bytes\":1073741824,\"instance_pids\":512,\"instance_cpu_millis\":1000,\"instance_max_layer_bytes\":12884901888,\"account_max_concurrency\":3,\"images_import_max_bytes\":17179869184},\"operations_stat\":{\"CANCELLED\":1,\"SUCCESS\":3}}");

        ApiConfig.Limits capped = new ApiConfig.Limits(3600, 4, 3, 3600, 1, 1, 1, 0.5, 1, 5000);
        String body = json(Json.tree(WhoamiRoute.body(new Principal("acct", "t", Instant.ofEpochSecond(1700000000)), capped, Map.of())));
        assertThat(body).startsWith("{\"token_uuid\":\"t\",\"token_expiration\":1700000000,")
                .contains("\"instance_cpu_millis\":500,").contains("\"images_import_max_bytes\":1,\"account_max_bytes\":5000},")
                .endsWith("\"operations_stat\":{}}");
    }
}
