package dev.contree.explorer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.TestServer;
import dev.contree.imports.ThrottlingProxy;
import dev.contree.registry.Compression;
import dev.contree.registry.OciLayoutBuilder;
import dev.contree.registry.TestRegistry;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The tree explorer end to end: a real server (runc) with an image imported from a real registry and three branches
 * (exit 0, exit 3, timed out), then {@code ui/test/explorer.e2e.mjs} drives Debian's chromium through playwright-core
 * against it and asserts on the page's content; this side checks what the page did through the API. Run it under
 * the heavy lock (it starts a browser and sandboxes). Keeps a screenshot of the tree in {@code target/explorer-tree.png}.
 */
class ExplorerBrowserTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path CHROMIUM = Path.of("/usr/bin/chromium");
    @TempDir static Path dir;
    static TestServer s;
    static TestRegistry reg;

    @BeforeAll
    static void start() throws IOException {
        s = TestServer.inTempDir("explorer-test", c -> c.withRuntime("runc", "ptrace"));
        reg = TestRegistry.start(dir);
    }

    @AfterAll
    static void stop() throws IOException {
        if (reg != null) reg.close();
        if (s != null) s.close();
    }

    @Test
    void thePageShowsTheTreeRunsCommandsAndTagsInARealBrowser() throws Exception {
        assertThat(CHROMIUM).as("Debian's chromium (apt-get install chromium; bin/packages.sh lists it)").isExecutable();
        Path layout = dir.resolve("layout");
        new OciLayoutBuilder().layer(Compression.GZIP, OciLayoutBuilder.busyboxRootfs())
                .layer(Compression.GZIP, new OciLayoutBuilder.Tar().dir("srv").file("srv/readme", "explorer test\n"))
                .writeLayout(layout, "t");
        reg.push(layout, "t", "explorer/base", "v1", false);
        String url = "docker://" + reg.hostPort() + "/explorer/base:v1";
        String root = importAs(s.tokenA, url, "explorer-base");
        String bRoot = importAs(s.tokenB, url, null);

        String ok = branch(root, "echo hello > /a; echo ok", 30);
        String nonzero = branch(root, "echo bad > /b; exit 3", 30);
        String timedOut = branch(root, "echo slow > /c; sleep 30", 1);

        Map<String, Object> expect = Map.ofEntries(Map.entry("root", root), Map.entry("ok", ok), Map.entry("nonzero", nonzero),
                Map.entry("timed_out", timedOut), Map.entry("nonzero_exit", 3), Map.entry("ok_stdout", "ok\n"),
                Map.entry("ok_added", "/a"), Map.entry("b_root", bRoot), Map.entry("new_tag", "picked-branch"),
                Map.entry("run_command", "echo from-page > /p; echo from-page-out"), Map.entry("run_stdout", "from-page-out"));
        Path screenshot = Path.of("target/explorer-tree.png").toAbsolutePath();
        Files.deleteIfExists(screenshot);
        JsonNode out = runScript("explorer.e2e.mjs", Map.of("BASE_URL", s.url(""), "TOKEN_A", s.tokenA, "TOKEN_B", s.tokenB,
                "EXPECT", JSON.writeValueAsString(expect), "SCREENSHOT", screenshot.toString()));
        assertThat(out.path("ok").asBoolean()).as("browser script: %s", out).isTrue();
        assertThat(out.get("steps")).hasSize(9);

        // The tag set on the page is the API's.
        JsonNode tagged = s.get(s.tokenA, "/v1/images?tag=picked-branch").json().get("images");
        assertThat(tagged).hasSize(1);
        assertThat(tagged.get(0).get("uuid").asText()).isEqualTo(nonzero);
        // The command run from the page made a child of the branch it was run from, with that output.
        String made = out.get("new_image").asText();
        JsonNode image = s.get(s.tokenA, "/v1/inspect/" + made + "/").json();
        assertThat(image.get("parent_uuid").asText()).isEqualTo(ok);
        JsonNode op = s.get(s.tokenA, "/v1/operations/" + image.get("operation_uuid").asText()).json();
        assertThat(op.at("/metadata/result/stdout/value").asText()).isEqualTo("from-page-out\n");
        assertThat(s.get(s.tokenA, "/v1/inspect/" + made + "/download?path=/p").text()).isEqualTo("from-page\n");
        // The operation cancelled on the page is cancelled.
        assertThat(s.get(s.tokenA, "/v1/operations/" + out.get("cancelled").asText()).json().get("status").asText()).isEqualTo("CANCELLED");
        // B's token saw nothing of A's, and its own tree is untouched.
        assertThat(s.get(s.tokenB, "/v1/inspect/" + made + "/").status()).isEqualTo(404);
        assertThat(Files.readAllBytes(screenshot)).startsWith(0x89, 'P', 'N', 'G');
    }

    @Test
    void anImportStartedOnThePageShowsAMovingProgressBarThenItsImage() throws Exception {
        assertThat(CHROMIUM).isExecutable();
        Path layout = dir.resolve("layout-slow");
        new OciLayoutBuilder().layer(Compression.GZIP, OciLayoutBuilder.busyboxRootfs())
                .layer(Compression.NONE, new OciLayoutBuilder.Tar().file("big1", random(3 << 20, 1), 0644))
                .layer(Compression.NONE, new OciLayoutBuilder.Tar().file("big2", random(3 << 20, 2), 0644))
                .writeLayout(layout, "t");
        reg.push(layout, "t", "explorer/slow", "v1", false);
        Path screenshot = Path.of("target/explorer-import-progress.png").toAbsolutePath();
        try (ThrottlingProxy proxy = new ThrottlingProxy(reg.port(), 1 << 20)) {
            // About 6 s at 1 MiB/s: the page starts it from its Import dialog and watches it run.
            JsonNode out = runScript("progress.e2e.mjs", Map.of("BASE_URL", s.url(""), "TOKEN_A", s.tokenA,
                    "IMPORT_URL", "docker://" + proxy.hostPort() + "/explorer/slow:v1", "IMPORT_TAG", "slow-from-page",
                    "SCREENSHOT", screenshot.toString()));
            assertThat(out.path("ok").asBoolean()).as("browser script: %s", out).isTrue();
            JsonNode done = s.await(s.tokenA, out.get("op").asText(), Duration.ofSeconds(60));
            assertThat(done.get("status").asText()).isEqualTo("SUCCESS");
            assertThat(done.get("kind").asText()).isEqualTo("image_import");
            assertThat(done.at("/metadata/tag").asText()).isEqualTo("slow-from-page");
            String image = done.get("result_image_uuid").asText();
            List<String> drawn = new ArrayList<>();
            out.get("import_nodes").forEach(n -> { if (n.get("tag").asText().equals("slow-from-page")) drawn.add(n.get("uuid").asText()); });
            assertThat(drawn).containsExactly(image);
        }
    }

    static byte[] random(int size, long seed) {
        byte[] b = new byte[size];
        new java.util.Random(seed).nextBytes(b);
        return b;
    }

    private static String importAs(String token, String url, String tag) {
        String body = "{\"registry\":{\"url\":\"" + url + "\"}" + (tag == null ? "" : ",\"tag\":\"" + tag + "\"") + "}";
        JsonNode op = s.await(token, s.start(token, "/v1/images/import", body), Duration.ofSeconds(120));
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        return op.get("result_image_uuid").asText();
    }

    private static String branch(String image, String command, int timeout) throws IOException {
        String body = JSON.writeValueAsString(Map.of("image", image, "command", command, "shell", true, "timeout", timeout));
        JsonNode op = s.await(s.tokenA, s.start(s.tokenA, "/v1/instances", body), Duration.ofSeconds(60));
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        assertThat(op.get("result_image_uuid").asText()).as("a branch that wrote a file has its own image").isNotEqualTo(image);
        return op.get("result_image_uuid").asText();
    }

    /** Runs a script of ui/test with node; its last stdout line is its JSON report. */
    static JsonNode runScript(String script, Map<String, String> env) throws IOException, InterruptedException {
        Path ui = Path.of("ui").toAbsolutePath();
        assertThat(ui.resolve("node_modules/playwright-core")).as("ui/node_modules (the Maven build runs npm ci)").isDirectory();
        List<String> cmd = new ArrayList<>(List.of("timeout", "300", "node", "test/" + script));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(ui.toFile());
        pb.environment().putAll(env);
        pb.environment().put("CHROMIUM", CHROMIUM.toString());
        Path err = Files.createTempFile(dir, "node", ".err");
        pb.redirectError(err.toFile());
        Process p = pb.start();
        byte[] stdout = p.getInputStream().readAllBytes();
        if (!p.waitFor(5, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new AssertionError("the browser script did not finish in 5 minutes");
        }
        String text = new String(stdout, StandardCharsets.UTF_8).strip();
        String last = text.isEmpty() ? "" : text.substring(text.lastIndexOf('\n') + 1);
        if (!last.startsWith("{")) {
            throw new AssertionError("no JSON report from " + script + " (exit " + p.exitValue() + "): " + text + "\nstderr: " + Files.readString(err));
        }
        return JSON.readTree(last);
    }
}
