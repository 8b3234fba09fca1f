package dev.contree.security;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.TestServer;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** Shared helpers of the security suites: runs through the real API, verdict parsing, host process scans. */
final class SecurityTestSupport {
    private static final ObjectMapper JSON = new ObjectMapper();

    private SecurityTestSupport() {}

    static String q(String s) {
        try {
            return JSON.writeValueAsString(s);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static JsonNode run(TestServer s, String json, Duration timeout) {
        String op = s.start(s.tokenA, "/v1/instances", json);
        return s.await(s.tokenA, op, timeout);
    }

    static String stream(JsonNode op, String name) {
        JsonNode result = op.get("metadata").get("result");
        if (result == null || result.isNull()) return "";
        JsonNode st = result.get(name);
        String v = st.get("value").asText();
        return st.get("encoding").asText().equals("base64")
                ? new String(Base64.getDecoder().decode(v), StandardCharsets.UTF_8) : v;
    }

    static JsonNode state(JsonNode op) {
        return op.get("metadata").get("result").get("state");
    }

    /** "V name result..." lines of a probe script, in order. */
    static Map<String, String> verdicts(String stdout) {
        Map<String, String> v = new LinkedHashMap<>();
        for (String line : stdout.split("\n")) {
            if (!line.startsWith("V ")) continue;
            String rest = line.substring(2);
            int sp = rest.indexOf(' ');
            if (sp < 0) v.put(rest, "");
            else v.put(rest.substring(0, sp), rest.substring(sp + 1).strip());
        }
        return v;
    }

    /** Host processes whose command line contains {@code marker} (this JVM excluded). */
    static List<String> hostProcessesWith(String marker) throws IOException {
        List<String> found = new ArrayList<>();
        long self = ProcessHandle.current().pid();
        try (var ds = Files.newDirectoryStream(Path.of("/proc"), p -> p.getFileName().toString().matches("\\d+"))) {
            for (Path p : ds) {
                if (Long.parseLong(p.getFileName().toString()) == self) continue;
                try {
                    String cmd = new String(Files.readAllBytes(p.resolve("cmdline")), StandardCharsets.UTF_8).replace('\0', ' ');
                    if (cmd.contains(marker)) found.add(p.getFileName() + ": " + cmd);
                } catch (IOException ignored) {
                    // exited meanwhile
                }
            }
        }
        return found;
    }

    /** Compiles the static probe helper (src/test/resources/dev/contree/security/probe.c) into {@code dir}. */
    static Path buildProbe(Path dir) throws IOException, InterruptedException {
        return buildStatic(dir, "probe");
    }

    /** Compiles src/test/resources/dev/contree/security/NAME.c into a static binary {@code dir/NAME}. */
    static Path buildStatic(Path dir, String name) throws IOException, InterruptedException {
        Path src;
        try {
            src = Path.of(SecurityTestSupport.class.getResource(name + ".c").toURI());
        } catch (URISyntaxException e) {
            throw new IOException(e);
        }
        Path out = dir.resolve(name);
        Process p = new ProcessBuilder("gcc", "-static", "-O1", "-o", out.toString(), src.toString())
                .redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor()).as("gcc: " + log).isZero();
        return out;
    }

    /** The server answers whoami quickly and a normal run works. */
    static void assertHealthy(TestServer s, String image) {
        long t0 = System.nanoTime();
        var who = s.get(s.tokenA, "/v1/whoami");
        assertThat(who.status()).isEqualTo(200);
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(2));
        JsonNode ok = run(s, "{\"image\":\"" + image + "\",\"command\":\"echo healthy\",\"shell\":true,\"disposable\":true}",
                Duration.ofSeconds(60));
        assertThat(ok.get("status").asText()).as(ok.toString()).isEqualTo("SUCCESS");
        assertThat(stream(ok, "stdout")).isEqualTo("healthy\n");
    }
}
