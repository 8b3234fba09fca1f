package dev.contree.imports;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.TestServer;
import dev.contree.operations.EventPayload;
import dev.contree.registry.Compression;
import dev.contree.registry.OciLayoutBuilder;
import dev.contree.registry.OciLayoutBuilder.Tar;
import dev.contree.registry.TestRegistry;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;

/** An import's {@code progress} events: throttled, in order, complete, and on the v1 events route for curl and the CLI. */
class ImportProgressTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    @TempDir static Path dir;
    static TestServer s;
    static TestRegistry reg;

    @BeforeAll
    static void start() throws IOException {
        s = TestServer.inTempDir("import-progress", c -> c.withRuntime("runc", "ptrace"));
        reg = TestRegistry.start(dir);
    }

    @AfterAll
    static void stop() throws IOException {
        if (reg != null) reg.close();
        if (s != null) s.close();
    }

    @Test
    void reportsAreThrottledButTheFirstAndTheLastAlwaysCome() {
        List<EventPayload.Progress> seen = new ArrayList<>();
        AtomicLong now = new AtomicLong(0);
        ImportProgress p = new ImportProgress(seen::add, now::get);
        p.start(3, 1, 3000);
        assertThat(seen).containsExactly(new EventPayload.Progress(1, 3, 0, 3000, 0));
        for (int i = 0; i < 1000; i++) p.fetched(1); // within one interval: nothing more
        p.unpacked(10);
        assertThat(seen).hasSize(1);
        now.addAndGet(ImportProgress.INTERVAL_NANOS);
        p.fetched(500);
        assertThat(seen).hasSize(2);
        assertThat(seen.getLast()).isEqualTo(new EventPayload.Progress(1, 3, 1500, 3000, 10));
        p.layerDone(); // 2 of 3, too soon after the last report
        assertThat(seen).hasSize(2);
        p.fetched(1500);
        p.layerDone(); // 3 of 3: always reported, once
        assertThat(seen.getLast()).isEqualTo(new EventPayload.Progress(3, 3, 3000, 3000, 10));
        int n = seen.size();
        now.addAndGet(10 * ImportProgress.INTERVAL_NANOS);
        p.unpacked(5);
        assertThat(seen).hasSize(n);
    }

    @Test
    void aSlowImportLogsProgressOnTheEventsRoute() throws Exception {
        Path layout = dir.resolve("layout-slow");
        new OciLayoutBuilder()
                .layer(Compression.GZIP, OciLayoutBuilder.busyboxRootfs())
                .layer(Compression.NONE, new Tar().file("big1", RegistryImportTest.random(3 << 20, 7), 0644))
                .layer(Compression.NONE, new Tar().file("big2", RegistryImportTest.random(3 << 20, 8), 0644))
                .writeLayout(layout, "t");
        reg.push(layout, "t", "progress/slow", "v1", false);
        List<JsonNode> progress;
        try (ThrottlingProxy proxy = new ThrottlingProxy(reg.port(), 4 << 20)) {
            String url = "docker://" + proxy.hostPort() + "/progress/slow:v1";
            String op = s.start(s.tokenA, "/v1/images/import", "{\"registry\":{\"url\":\"" + url + "\"}}");
            JsonNode done = s.await(s.tokenA, op, Duration.ofSeconds(60));
            assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
            progress = progressEvents(op);
        }
        assertThat(progress.size()).as(progress.toString()).isGreaterThanOrEqualTo(3);
        JsonNode first = progress.getFirst(), last = progress.getLast();
        assertThat(first.get("layers_done").asInt()).isZero();
        assertThat(first.get("layers_total").asInt()).isEqualTo(3);
        assertThat(first.get("bytes_fetched").asLong()).isZero();
        long total = first.get("bytes_total").asLong();
        assertThat(total).isGreaterThan(6L << 20);
        assertThat(last.get("layers_done").asInt()).isEqualTo(3);
        assertThat(last.get("bytes_fetched").asLong()).isEqualTo(total);
        assertThat(last.get("bytes_unpacked").asLong()).isGreaterThan(6L << 20);
        for (int i = 1; i < progress.size(); i++) {
            JsonNode a = progress.get(i - 1), b = progress.get(i);
            assertThat(b.get("layers_done").asInt()).isGreaterThanOrEqualTo(a.get("layers_done").asInt());
            assertThat(b.get("bytes_fetched").asLong()).isGreaterThanOrEqualTo(a.get("bytes_fetched").asLong());
            assertThat(b.get("bytes_unpacked").asLong()).isGreaterThanOrEqualTo(a.get("bytes_unpacked").asLong());
        }
        // Some report came mid-download: the bar moves, it does not jump from empty to full.
        assertThat(progress).anySatisfy(p -> assertThat(p.get("bytes_fetched").asLong()).isBetween(1L, total - 1));

        // The same image again: every layer is stored and proven, so the first report is the last.
        String url = "docker://" + reg.hostPort() + "/progress/slow:v1";
        String again = s.start(s.tokenA, "/v1/images/import", "{\"registry\":{\"url\":\"" + url + "\"}}");
        assertThat(s.await(s.tokenA, again, Duration.ofSeconds(60)).get("status").asText()).isEqualTo("SUCCESS");
        List<JsonNode> reused = progressEvents(again);
        assertThat(reused).hasSize(1);
        assertThat(reused.getFirst().get("layers_done").asInt()).isEqualTo(3);
        assertThat(reused.getFirst().get("bytes_fetched").asLong()).isZero();
    }

    /** The {@code data} of each progress event, from the plain v1 events route (what curl and the CLI read). */
    static List<JsonNode> progressEvents(String op) throws IOException {
        var r = s.get(s.tokenA, "/v1/operations/" + op + "/events");
        assertThat(r.status()).isEqualTo(200);
        List<JsonNode> out = new ArrayList<>();
        String type = null;
        boolean completionLast = false;
        for (String line : r.text().split("\n")) {
            if (line.startsWith("event: ")) type = line.substring(7);
            if (line.startsWith("data: ")) {
                JsonNode envelope = JSON.readTree(line.substring(6).getBytes(StandardCharsets.UTF_8));
                assertThat(envelope.get("type").asText()).isEqualTo(type);
                if (type.equals("progress")) {
                    assertThat(envelope.get("spid").asInt()).isZero();
                    out.add(envelope.get("data"));
                }
                completionLast = type.equals("completion");
            }
        }
        assertThat(completionLast).as("completion is the last event").isTrue();
        return out;
    }
}
