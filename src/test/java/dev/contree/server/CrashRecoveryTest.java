package dev.contree.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.TestImages;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * kill -9 of the server in the middle of an execution, then a restart on the same data dir: committed
 * images intact, the interrupted operation FAILED with a clear error, no mounts or sandboxes left.
 */
class CrashRecoveryTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String TOKEN = "crash-test-token";
    Path dir;

    @org.junit.jupiter.api.BeforeEach
    void mkdir() throws IOException {
        dir = Files.createTempDirectory("crash-test");
    }

    @org.junit.jupiter.api.AfterEach
    void cleanup() throws Exception {
        dev.contree.TestDirs.removeWithMounts(dir);
    }
    final HttpClient http = HttpClient.newHttpClient();

    JsonNode call(ServerProcess s, String method, String path, byte[] body) throws Exception {
        var b = HttpRequest.newBuilder(URI.create(s.url(path))).header("Authorization", "Bearer " + TOKEN)
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(body));
        HttpResponse<byte[]> r = http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
        assertThat(r.statusCode()).as(method + " " + path + ": " + new String(r.body())).isBetween(200, 299);
        return r.body().length == 0 ? null : JSON.readTree(r.body());
    }

    JsonNode await(ServerProcess s, String op) throws Exception {
        for (int i = 0; i < 600; i++) {
            JsonNode o = call(s, "GET", "/v1/operations/" + op, null);
            if (o.get("status").asText().matches("SUCCESS|FAILED|CANCELLED")) return o;
            Thread.sleep(100);
        }
        throw new AssertionError("operation " + op + " never finished");
    }

    @Test
    void killDashNineDuringAnExecutionLosesNothingCommitted() throws Exception {
        Path data = dir.resolve("data");
        Path log = dir.resolve("server.log");
        String base;
        String child;
        String interrupted;
        try (ServerProcess s = new ServerProcess(data, TOKEN, "runc", log)) {
            String file = call(s, "POST", "/v1/files", TestImages.busyboxRootfs()).get("uuid").asText();
            String imp = call(s, "POST", "/v1/images/import", ("{\"registry\":{\"url\":\"rootfs+file://" + file + "\"},\"tag\":\"bb\"}").getBytes()).get("uuid").asText();
            base = await(s, imp).get("result").get("image").asText();
            String run = call(s, "POST", "/v1/instances", ("{\"image\":\"" + base + "\",\"command\":\"echo kept > /kept\",\"shell\":true}").getBytes()).get("uuid").asText();
            child = await(s, run).get("result").get("image").asText();
            interrupted = call(s, "POST", "/v1/instances", ("{\"image\":\"" + child + "\",\"command\":\"echo lost > /lost; sleep 120\",\"shell\":true}").getBytes()).get("uuid").asText();
            for (int i = 0; i < 100 && !call(s, "GET", "/v1/operations/" + interrupted, null).get("status").asText().equals("EXECUTING"); i++) {
                Thread.sleep(100);
            }
            Thread.sleep(500);
            s.crash();
        }
        try (ServerProcess s = new ServerProcess(data, TOKEN, "runc", log)) {
            JsonNode op = call(s, "GET", "/v1/operations/" + interrupted, null);
            assertThat(op.get("status").asText()).isEqualTo("FAILED");
            assertThat(op.get("error").asText()).contains("restarted");
            assertThat(op.get("result").isNull()).isTrue();
            // Everything committed before the crash is intact.
            HttpResponse<String> kept = http.send(HttpRequest.newBuilder(URI.create(s.url("/v1/inspect/" + child + "/download?path=/kept")))
                    .header("Authorization", "Bearer " + TOKEN).build(), HttpResponse.BodyHandlers.ofString());
            assertThat(kept.body()).isEqualTo("kept\n");
            assertThat(call(s, "GET", "/v1/images?tag=bb", null).get("images").get(0).get("uuid").asText()).isEqualTo(base);
            // No mounts of the interrupted sandbox, no containers in the runtime state.
            String mounts = Files.readString(Path.of("/proc/self/mountinfo"));
            assertThat(mounts.lines().filter(l -> l.contains(data.resolve("layers/mnt").toString()))).isEmpty();
            assertThat(mounts.lines().filter(l -> l.contains(data.resolve("runtime").toString()))).isEmpty();
            Path state = data.resolve("runtime/runc-root");
            try (var list = Files.list(state)) {
                assertThat(list.filter(Files::isDirectory).toList()).isEmpty();
            }
            // And it still runs things.
            String again = call(s, "POST", "/v1/instances", ("{\"image\":\"" + child + "\",\"command\":\"cat /kept; ls /lost\",\"shell\":true}").getBytes()).get("uuid").asText();
            JsonNode done = await(s, again);
            assertThat(done.get("metadata").get("result").get("stdout").get("value").asText()).isEqualTo("kept\n");
            assertThat(done.get("metadata").get("result").get("state").get("exit_code").asInt()).isNotZero();
        }
        assertThat(Files.readString(log)).doesNotContain("Exception in thread");
    }
}
