package dev.contree.security;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.stream.Stream;

import static dev.contree.security.SecurityTestSupport.q;
import static dev.contree.security.SecurityTestSupport.stream;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * A sandbox makes a directory tree far deeper than PATH_MAX (5,000 levels: 10,000 bytes of path) and a wide one,
 * then one of 100,000 levels. Every server-side walk survives: the commit, later runs on the result, compaction of
 * a chain holding it, and inspect (list, archive, grep, diff) answer 200 or a 413 naming the limit, never a 500;
 * the too-deep tree fails its run cleanly with nothing kept, and the server stays up. Subclasses pick the runtime;
 * the server compacts beyond depth 2.
 */
abstract class DeepTreeTestBase {
    @AutoClose static TestServer s;
    static String base, helper;

    static void startServer(String runtime) throws Exception {
        s = TestServer.inTempDir("deeptree-" + runtime, c -> c.withRuntime(runtime, "ptrace").withMaxMountDepth(2));
        base = s.importBusybox(null);
        Path bin = SecurityTestSupport.buildStatic(s.tempDir, "deeptree");
        helper = s.upload(s.tokenA, Files.readAllBytes(bin)).json().get("uuid").asText();
    }

    /** Runs {@code command} with the deeptree helper at /deeptree. */
    static JsonNode run(String image, String command) {
        return SecurityTestSupport.run(s, "{\"image\":\"" + image + "\",\"command\":" + q(command) + ",\"shell\":true,"
                + "\"timeout\":600,\"files\":{\"/deeptree\":{\"uuid\":\"" + helper + "\",\"mode\":\"0755\"}}}",
                Duration.ofSeconds(700));
    }

    static String resultImage(JsonNode op) {
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        return op.get("result").get("image").asText();
    }

    /** Makes (or walks) {@code n} levels of "d" below / and writes (prints) d/d/.../f. */
    static String descend(int n, boolean create) {
        return "cd / && /deeptree " + (create ? "make " : "read ") + n + " && ";
    }

    /** A 413 (or 200) whose message names the depth limit; never a 5xx. */
    static void assertBoundedAnswer(TestServer.Reply r, String what) {
        assertThat(r.status()).as(what + ": " + r.text()).isIn(200, 413);
        if (r.status() == 413) assertThat(r.text()).as(what).contains("levels");
    }

    @Test
    void deepAndWideTreesCommitRunCompactAndInspect() throws Exception {
        long t0 = System.nanoTime();
        JsonNode made = run(base, "mkdir /wide && cd /wide && seq 1 12000 | xargs touch && cd / && "
                + descend(5000, true) + "echo made");
        String deep = resultImage(made);
        assertThat(stream(made, "stdout")).isEqualTo("made\n");
        System.out.printf("deep tree: run + commit %d ms%n", (System.nanoTime() - t0) / 1_000_000);

        // Later runs on it work, and see the bottom; the third run's chain is compacted (max depth 2).
        String next = resultImage(run(deep, "echo 1 > /one"));
        t0 = System.nanoTime();
        JsonNode read = run(next, descend(5000, false) + "echo 2 > /two");
        System.out.printf("deep tree: run with compaction %d ms%n", (System.nanoTime() - t0) / 1_000_000);
        String compacted = resultImage(read);
        assertThat(stream(read, "stdout")).isEqualTo("deep\n");
        JsonNode again = run(compacted, descend(5000, false) + "ls /wide | wc -l; cat /one /two");
        assertThat(stream(again, "stdout")).as(again.toString()).isEqualTo("deep\n12000\n1\n2\n");

        for (String img : new String[] {deep, compacted}) {
            String p = "/v1/inspect/" + img;
            assertThat(s.get(s.tokenA, p + "/list?path=/").status()).isEqualTo(200);
            assertThat(s.get(s.tokenA, p + "/list?path=/d/d/d").status()).isEqualTo(200);
            TestServer.Reply wide = s.get(s.tokenA, p + "/list?path=/wide");
            assertThat(wide.status()).as(wide.text()).isEqualTo(413);
            assertThat(s.get(s.tokenA, p + "/list?path=/wide&limit=100").status()).isEqualTo(200);
            String deepPath = "/d".repeat(2000); // 4,000 bytes: a valid request path, past the walk depth
            assertBoundedAnswer(s.get(s.tokenA, p + "/list?path=" + deepPath), "list deep");
            t0 = System.nanoTime();
            TestServer.Reply archive = s.get(s.tokenA, p + "/archive?path=/");
            System.out.printf("deep tree: archive answer %d ms%n", (System.nanoTime() - t0) / 1_000_000);
            assertThat(archive.status()).as(archive.text()).isEqualTo(413);
            assertThat(archive.text()).contains("deeper than").contains("levels");
            assertBoundedAnswer(s.get(s.tokenA, p + "/archive?path=/d"), "archive /d");
            assertThat(s.get(s.tokenA, p + "/archive?path=/wide").status()).isEqualTo(200);
            TestServer.Reply grep = s.get(s.tokenA, p + "/grep?pattern=deep");
            assertThat(grep.status()).as(grep.text()).isEqualTo(200);
            assertThat(grep.json().get("truncated").asBoolean()).isTrue(); // the depth limit stopped the walk
            TestServer.Reply diff = s.get(s.tokenA, "/v1/inspect/" + base + "/diff/" + img);
            assertThat(diff.status()).as(diff.text()).isEqualTo(413);
            assertThat(diff.text()).contains("deeper than").contains("levels");
        }
        // A child that was never compacted shares the deep subtree's layer: the diff skips it without reading.
        String child = resultImage(run(deep, "echo 3 > /three"));
        TestServer.Reply related = s.get(s.tokenA, "/v1/inspect/" + deep + "/diff/" + child);
        assertThat(related.status()).as(related.text()).isEqualTo(200);
        assertThat(related.json().toString()).contains("/three");
        SecurityTestSupport.assertHealthy(s, compacted);
    }

    @Test
    void aTreeDeeperThanTheLayerLimitFailsItsRunAndKeepsNothing() throws Exception {
        long t0 = System.nanoTime();
        JsonNode op = run(base, descend(100_000, true) + "echo made");
        System.out.printf("100,000-deep tree: run + commit %d ms%n", (System.nanoTime() - t0) / 1_000_000);
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("FAILED");
        assertThat(op.get("error").asText()).contains("deeper than").contains("levels").contains("nothing was kept");
        s.server.services().layers().awaitBackgroundWork();
        try (Stream<Path> l = Files.list(s.server.services().layers().root().resolve("layers"))) {
            assertThat(l.map(p -> p.getFileName().toString()).filter(n -> n.startsWith(".pending-")).toList()).isEmpty();
        }
        SecurityTestSupport.assertHealthy(s, base);
    }
}
