package dev.contree.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.TestImages;
import dev.contree.TestServerProcess;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

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

    static JsonNode call(TestServerProcess s, String method, String path, byte[] body) throws Exception {
        return s.call(method, path, body);
    }

    static JsonNode await(TestServerProcess s, String op) throws Exception {
        return s.await(op, Duration.ofSeconds(60));
    }

    @Test
    void killDashNineDuringAnExecutionLosesNothingCommitted() throws Exception {
        Path data = dir.resolve("data");
        Path log = dir.resolve("server.log");
        String base;
        String child;
        String interrupted;
        try (TestServerProcess s = new TestServerProcess(data, TOKEN, "runc", List.of(), log)) {
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
        try (TestServerProcess s = new TestServerProcess(data, TOKEN, "runc", List.of(), log)) {
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

    /** Random bytes as a gzip'd rootfs tarball with {@code files} files of {@code size} bytes (slow to unpack). */
    static byte[] bulkyRootfs(int files, int size) throws IOException {
        var buf = new java.io.ByteArrayOutputStream();
        var rnd = new java.util.Random(7);
        try (var tar = new org.apache.commons.compress.archivers.tar.TarArchiveOutputStream(new java.util.zip.GZIPOutputStream(buf))) {
            byte[] data = new byte[size];
            for (int i = 0; i < files; i++) {
                rnd.nextBytes(data);
                var e = new org.apache.commons.compress.archivers.tar.TarArchiveEntry("bulk/f" + i);
                e.setSize(size);
                tar.putArchiveEntry(e);
                tar.write(data);
                tar.closeArchiveEntry();
            }
        }
        return buf.toByteArray();
    }

    @Test
    void killDashNineDuringUploadImportAndCommitsKeepsTheDataDirConsistent() throws Exception {
        Path data = dir.resolve("data");
        Path log = dir.resolve("server.log");
        String base;
        java.util.List<String> runs = new java.util.ArrayList<>();
        String bigImport;
        try (TestServerProcess s = new TestServerProcess(data, TOKEN, "runc", List.of(), log)) {
            String file = call(s, "POST", "/v1/files", TestImages.busyboxRootfs()).get("uuid").asText();
            base = await(s, call(s, "POST", "/v1/images/import", ("{\"registry\":{\"url\":\"rootfs+file://" + file + "\"}}").getBytes())
                    .get("uuid").asText()).get("result").get("image").asText();
            // An import that is still unpacking, ...
            String bulky = call(s, "POST", "/v1/files", bulkyRootfs(400, 256 * 1024)).get("uuid").asText();
            bigImport = call(s, "POST", "/v1/images/import", ("{\"registry\":{\"url\":\"rootfs+file://" + bulky + "\"},\"tag\":\"bulky\"}").getBytes())
                    .get("uuid").asText();
            // ... a burst of executions writing and committing, ...
            for (int i = 0; i < 8; i++) {
                runs.add(call(s, "POST", "/v1/instances", ("{\"image\":\"" + base + "\",\"command\":\"dd if=/dev/zero of=/out bs=1M count=8 2>/dev/null; echo " + i
                        + " > /id\",\"shell\":true}").getBytes()).get("uuid").asText());
            }
            // ... and an upload in the middle of its body.
            try (var sock = new java.net.Socket("127.0.0.1", s.port)) {
                var out = sock.getOutputStream();
                out.write(("POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN
                        + "\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n").getBytes());
                byte[] chunk = new byte[1 << 20];
                for (int i = 0; i < 4; i++) {
                    out.write((Integer.toHexString(chunk.length) + "\r\n").getBytes());
                    out.write(chunk);
                    out.write("\r\n".getBytes());
                }
                out.flush();
                Thread.sleep(300 + new java.util.Random().nextInt(700));
                s.crash();
            }
        }
        try (TestServerProcess s = new TestServerProcess(data, TOKEN, "runc", List.of(), log)) {
            // Every execution either committed an intact image or failed cleanly.
            for (String run : runs) {
                JsonNode op = call(s, "GET", "/v1/operations/" + run, null);
                String status = op.get("status").asText();
                if (status.equals("SUCCESS")) {
                    String image = op.get("result").get("image").asText();
                    HttpResponse<String> id = http.send(HttpRequest.newBuilder(URI.create(s.url("/v1/inspect/" + image + "/download?path=/id")))
                            .header("Authorization", "Bearer " + TOKEN).build(), HttpResponse.BodyHandlers.ofString());
                    assertThat(id.statusCode()).isEqualTo(200);
                    assertThat(id.body()).isEqualTo(runs.indexOf(run) + "\n");
                } else {
                    assertThat(status).isEqualTo("FAILED");
                    assertThat(op.get("error").asText()).contains("restarted");
                }
            }
            JsonNode imp = call(s, "GET", "/v1/operations/" + bigImport, null);
            if (!imp.get("status").asText().equals("SUCCESS")) {
                assertThat(imp.get("status").asText()).isEqualTo("FAILED");
                assertThat(call(s, "GET", "/v1/images?tag=bulky", null).get("images")).isEmpty();
            }
            // The half upload left no file.
            assertThat(call(s, "GET", "/v1/files?limit=1000", null).get("files")).hasSize(2);
        }
        // What remains is at most garbage the next collection removes: layers no image references.
        Fsck.Report report = Fsck.run(data, false, new java.io.PrintStream(java.io.OutputStream.nullOutputStream()));
        assertThat(report.problems()).allMatch(p -> p.endsWith("is referenced by no image"));
        assertThat(report.errors()).isZero();
        Fsck.run(data, true, new java.io.PrintStream(java.io.OutputStream.nullOutputStream()));
        assertThat(Fsck.run(data, false, new java.io.PrintStream(java.io.OutputStream.nullOutputStream())).clean()).isTrue();
    }
}
