package dev.contree.api;

import dev.contree.TestServer;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/** Failures never show a client where the server keeps its data: no data dir path, no layer path, no scratch name. */
class HostPathLeakTest {
    @AutoClose static TestServer s;
    static Path dir;
    static String image;

    @BeforeAll
    static void start() throws Exception {
        s = TestServer.inTempDir("hostpaths", c -> c.withRuntime("runc", "ptrace"));
        dir = s.tempDir;
        image = s.importBusybox(null);
    }

    static void assertNoHostPath(String what, String body) {
        String data = s.dataDir.toAbsolutePath().toString();
        assertThat(body).as(what).doesNotContain(data).doesNotContain("/layers/").doesNotContain(".pending-")
                .doesNotContain(dir.toString());
    }

    @Test
    void failuresDoNotShowHostPaths() throws Exception {
        List<String> bodies = new ArrayList<>();
        String u = "/v1/inspect/" + image;
        for (String p : List.of(u + "/list?path=/etc/passwd", u + "/list?path=/etc/passwd/x", u + "/download?path=/etc",
                u + "/download?path=/nope", u + "/archive?path=/nope", u + "/grep?pattern=(&path=/etc", u + "/list?path=/" + "x/".repeat(3000))) {
            var r = s.get(s.tokenA, p);
            assertThat(r.status()).as(p + " " + r.text()).isBetween(400, 499);
            bodies.add(p + " -> " + r.text());
        }
        // A layer that vanished from disk under a live image: inspect and run both fail, without saying where.
        String child = s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + image + "\",\"command\":\"echo x > /f\",\"shell\":true}");
        String childImage = s.await(s.tokenA, child, Duration.ofSeconds(60)).get("result_image_uuid").asText();
        Path layers = s.dataDir.resolve("layers");
        List<Path> newest;
        try (Stream<Path> w = Files.walk(layers, 3)) {
            newest = w.filter(p -> Files.exists(p.resolve("f"))).toList();
        }
        assertThat(newest).as("the child's layer dir").isNotEmpty();
        for (Path p : newest) {
            Files.delete(p.resolve("f"));
            Files.move(p, p.resolveSibling(p.getFileName() + ".gone"));
        }
        var r = s.get(s.tokenA, "/v1/inspect/" + childImage + "/list?path=/");
        bodies.add("list of broken image -> " + r.status() + " " + r.text());
        String run = s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + childImage + "\",\"command\":\"true\",\"shell\":true}");
        var op = s.await(s.tokenA, run, Duration.ofSeconds(60));
        bodies.add("run on broken image -> " + op);
        bodies.add("events -> " + s.get(s.tokenA, "/v1/operations/" + run + "/events").text());
        for (String b : bodies) System.out.println("HostPathLeakTest " + (b.length() > 300 ? b.substring(0, 300) : b));
        for (String b : bodies) assertNoHostPath(b, b);
        assertThat(op.get("status").asText()).isEqualTo("FAILED");
    }

    @Test
    void scrubReplacesTheDataDirAndScratchNames() {
        String d = s.dataDir.toAbsolutePath().toString();
        String m = HostPaths.scrub("llistxattr " + d + "/layers/layers/.pending-709a97265a77: No such file");
        assertThat(m).doesNotContain(d).doesNotContain(".pending-").doesNotContain("/layers/").contains("No such file");
        assertThat(HostPaths.scrub("cat: can't open '/etc/x': No such file")).isEqualTo("cat: can't open '/etc/x': No such file");
    }
}
