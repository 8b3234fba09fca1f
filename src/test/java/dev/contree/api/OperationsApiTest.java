package dev.contree.api;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestRequests;
import dev.contree.TestServer;
import dev.contree.operations.EventPayload;
import dev.contree.operations.JobOutcome;
import dev.contree.operations.Operation;
import dev.contree.operations.OperationKind;
import dev.contree.operations.OperationService;
import dev.contree.operations.OperationStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class OperationsApiTest {
    @TempDir Path dir;
    TestServer s;
    OperationService ops;

    @BeforeEach
    void start() throws Exception {
        s = new TestServer(dir);
        ops = s.server.services().operations();
    }

    @AfterEach
    void stop() {
        s.close();
    }

    Operation op(OperationKind kind) {
        return ops.create(s.accountA, kind, null, kind == OperationKind.INSTANCE ? TestRequests.execution("true", null)
                : TestRequests.imageImport("docker://busybox"));
    }

    @Test
    void listIsABareArrayWithFilters() {
        Operation pending = op(OperationKind.INSTANCE);
        Operation running = op(OperationKind.INSTANCE);
        ops.transition(running.uuid(), EnumSet.of(OperationStatus.PENDING), OperationStatus.EXECUTING);
        Operation imported = op(OperationKind.IMAGE_IMPORT);

        JsonNode all = s.get(s.tokenA, "/v1/operations").json();
        assertThat(all.isArray()).isTrue();
        assertThat(all.size()).isEqualTo(3);
        JsonNode item = all.get(0);
        assertThat(item.get("uuid").asText()).isEqualTo(imported.uuid());
        assertThat(item.get("kind").asText()).isEqualTo("image_import");
        assertThat(item.get("status").asText()).isEqualTo("PENDING");
        assertThat(item.fieldNames()).toIterable().contains("error", "created_at", "duration", "image_uuid", "result_image_uuid",
                "image_size", "consumed_cpu", "consumed_memory");

        assertThat(uuids("/v1/operations?status=EXECUTING")).containsExactly(running.uuid());
        assertThat(uuids("/v1/operations?status=PENDING&kind=instance")).containsExactly(pending.uuid());
        assertThat(uuids("/v1/operations?kind=image_import")).containsExactly(imported.uuid());
        assertThat(uuids("/v1/operations?since=1h")).hasSize(3);
        assertThat(uuids("/v1/operations?until=1h")).isEmpty();
        assertThat(uuids("/v1/operations?limit=2&offset=1")).hasSize(2);
        assertThat(s.get(s.tokenA, "/v1/operations?status=running").status()).isEqualTo(400);
        assertThat(s.get(s.tokenA, "/v1/operations?kind=vm").status()).isEqualTo(400);
        assertThat(s.get(s.tokenA, "/v1/operations?limit=5000").status()).isEqualTo(400);
    }

    @Test
    void getShowsTheFullOperation() {
        Operation o = op(OperationKind.INSTANCE);
        JsonNode body = s.get(s.tokenA, "/v1/operations/" + o.uuid()).json();
        assertThat(body.get("uuid").asText()).isEqualTo(o.uuid());
        assertThat(body.get("metadata").get("command").asText()).isEqualTo("true");
        assertThat(body.get("result").isNull()).isTrue();
        assertThat(s.get(s.tokenA, "/v1/operations/00000000-0000-0000-0000-000000000000").status()).isEqualTo(404);
        assertThat(s.get(s.tokenA, "/v1/operations/zzz").status()).isEqualTo(400);
    }

    @Test
    void cancelActiveThenConflictWhenTerminal() {
        Operation o = op(OperationKind.INSTANCE);
        List<String> cancelled = new ArrayList<>();
        ops.onCancel(cancelled::add);
        var r = s.delete(s.tokenA, "/v1/operations/" + o.uuid());
        assertThat(r.status()).isEqualTo(202);
        assertThat(r.json().get("status").asText()).isEqualTo("CANCELLED");
        assertThat(cancelled).containsExactly(o.uuid());
        assertThat(s.get(s.tokenA, "/v1/operations/" + o.uuid()).json().get("status").asText()).isEqualTo("CANCELLED");

        var again = s.delete(s.tokenA, "/v1/operations/" + o.uuid());
        assertThat(again.status()).isEqualTo(409);
        assertThat(again.json().get("error").asText()).contains("not cancellable");

        // A completion that arrives after the cancel does not overwrite it.
        assertThat(ops.complete(o.uuid(), new JobOutcome.Succeeded(new JobOutcome.Discarded(), 0, null, null))).isFalse();
        assertThat(s.delete(s.tokenA, "/v1/operations/00000000-0000-0000-0000-000000000000").status()).isEqualTo(404);
    }

    @Test
    void operationsAreIsolated() {
        Operation o = op(OperationKind.INSTANCE);
        assertThat(s.get(s.tokenB, "/v1/operations").json().size()).isZero();
        assertThat(s.get(s.tokenB, "/v1/operations/" + o.uuid()).status()).isEqualTo(404);
        assertThat(s.delete(s.tokenB, "/v1/operations/" + o.uuid()).status()).isEqualTo(404);
        assertThat(s.get(s.tokenA, "/v1/operations/" + o.uuid()).json().get("status").asText()).isEqualTo("PENDING");
    }

    @Test
    void eventsReplayFollowAndResume() throws Exception {
        Operation o = op(OperationKind.INSTANCE);
        byte[] hello = "hello\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        ops.appendEvent(o.uuid(), 1, new EventPayload.Output(EventPayload.Stream.STDOUT, hello));
        ops.appendEvent(o.uuid(), 1, new EventPayload.Output(EventPayload.Stream.STDERR, hello));

        var replay = s.get(s.tokenA, "/v1/operations/" + o.uuid() + "/events");
        assertThat(replay.status()).isEqualTo(200);
        assertThat(replay.header("Content-Type")).startsWith("text/event-stream");
        assertThat(replay.text()).contains("id: 0\nevent: stdout\ndata: {\"id\":0,").contains("id: 1\nevent: stderr");

        var resumed = s.send(s.tokenA, "GET", "/v1/operations/" + o.uuid() + "/events", null, "Last-Event-Id", "0");
        assertThat(resumed.text()).doesNotContain("id: 0\n").contains("id: 1\n");
        assertThat(s.get(s.tokenA, "/v1/operations/" + o.uuid() + "/events?spid=0").text()).doesNotContain("stdout");

        // follow=1 blocks until the completion event arrives, then ends.
        Thread.ofVirtual().start(() -> {
            try {
                Thread.sleep(300);
            } catch (InterruptedException ignored) {
            }
            ops.appendEvent(o.uuid(), 0, new EventPayload.Completion(OperationStatus.SUCCESS, null, 0, null, 0));
        });
        var followed = s.send(s.tokenA, "GET", "/v1/operations/" + o.uuid() + "/events?follow=1", null,
                "Accept", "text/event-stream", "Accept-Encoding", "gzip");
        assertThat(followed.header("Content-Encoding")).isEqualTo("gzip");
        String text = new String(new java.util.zip.GZIPInputStream(new java.io.ByteArrayInputStream(followed.body())).readAllBytes());
        assertThat(text).contains("event: stdout").endsWith("event: completion\ndata: " + text.substring(text.lastIndexOf("data: ") + 6));
        assertThat(text).contains("\"type\":\"completion\"");
        assertThat(s.get(s.tokenB, "/v1/operations/" + o.uuid() + "/events").status()).isEqualTo(404);
        assertThat(s.send(s.tokenA, "GET", "/v1/operations/" + o.uuid() + "/events", null, "Last-Event-Id", "x").status()).isEqualTo(400);
    }

    List<String> uuids(String path) {
        List<String> out = new ArrayList<>();
        s.get(s.tokenA, path).json().forEach(o -> out.add(o.get("uuid").asText()));
        return out;
    }
}
