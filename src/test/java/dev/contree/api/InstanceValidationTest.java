package dev.contree.api;

import dev.contree.TestServer;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** Malformed executions are a 400 at spawn with nothing recorded, not a 202 that fails later. */
class InstanceValidationTest {
    @AutoClose static TestServer s;
    static String image, file;

    @BeforeAll
    static void start() throws Exception {
        s = TestServer.inTempDir("validation", c -> c.withRuntime("runc", "ptrace"));
        image = s.importBusybox(null);
        file = s.upload(s.tokenA, "x".getBytes(StandardCharsets.UTF_8)).json().get("uuid").asText();
    }

    static String files(String target, String mode) {
        return ",\"files\":{" + q(target) + ":{\"uuid\":\"" + file + "\"" + (mode == null ? "" : ",\"mode\":" + mode) + "}}";
    }

    @Test
    void malformedRequestsAre400WithNothingQueued() {
        String base = "{\"image\":\"" + image + "\",\"command\":\"true\",\"shell\":true";
        Map<String, String> cases = new LinkedHashMap<>();
        cases.put("component of 200 x é (400 bytes)", base + files("/" + "é".repeat(200), null) + "}");
        cases.put("path over 4096 bytes", base + files(("/" + "é".repeat(100)).repeat(25), null) + "}");
        cases.put("target under a file of the image", base + files("/etc/passwd/x", null) + "}");
        cases.put("target under a file, through a symlink", base + files("/bin/sh/x", null) + "}");
        cases.put("target is a directory of the image", base + files("/etc", null) + "}");
        cases.put("mode -1", base + files("/a", "-1") + "}");
        cases.put("mode 010000", base + files("/a", "4096") + "}");
        cases.put("mode string -1", base + files("/a", "\"-1\"") + "}");
        cases.put("mode of a directory st_mode", base + files("/a", "\"040755\"") + "}");
        cases.put("mode huge", base + files("/a", "99999999999999999999") + "}");
        cases.put("relative target", base + files("a/b", null) + "}");
        cases.put("dotdot target", base + files("/a/../b", null) + "}");
        cases.put("NUL in target", base + files("/a\u0000b", null) + "}");
        cases.put("duplicate targets", base + ",\"files\":{\"/a\":{\"uuid\":\"" + file + "\"},\"//a/\":{\"uuid\":\"" + file + "\"}}}");
        cases.put("target under another target", base + ",\"files\":{\"/a\":{\"uuid\":\"" + file + "\"},\"/a/b\":{\"uuid\":\"" + file + "\"}}}");
        cases.put("negative uid", base + ",\"uid\":-1}");
        cases.put("negative gid", base + ",\"gid\":-5}");
        cases.put("negative file uid", base + ",\"files\":{\"/a\":{\"uuid\":\"" + file + "\",\"uid\":-1}}}");
        cases.put("NUL in args", "{\"image\":\"" + image + "\",\"command\":\"echo\",\"args\":[\"a\\u0000b\"]}");
        cases.put("NUL in env", base + ",\"env\":{\"A\":\"x\\u0000y\"}}");
        cases.put("NUL in env name", base + ",\"env\":{\"A\\u0000\":\"x\"}}");
        cases.put("= in env name", base + ",\"env\":{\"A=B\":\"x\"}}");
        cases.put("env value over 128 KiB", base + ",\"env\":{\"A\":\"" + "x".repeat(128 * 1024) + "\"}}");
        cases.put("env over 1.5 MiB in all", base + ",\"env\":{" + envs(20, 100_000) + "}}");
        cases.put("cwd relative", base + ",\"cwd\":\"tmp\"}");
        cases.put("cwd component of 200 x é", base + ",\"cwd\":\"/" + "é".repeat(200) + "\"}");
        cases.put("truncate_output_at negative", base + ",\"truncate_output_at\":-1}");
        cases.put("timeout negative", base + ",\"timeout\":-1}");
        cases.put("timeout zero", base + ",\"timeout\":0}");
        cases.put("timeout NaN (string)", base + ",\"timeout\":\"NaN\"}");
        cases.put("timeout huge", base + ",\"timeout\":1e300}");
        cases.put("max_layer_bytes negative", base + ",\"resources_limits\":{\"max_layer_bytes\":-1}}");
        int before = s.get(s.tokenA, "/v1/operations?limit=1000").json().size();
        for (var c : cases.entrySet()) {
            var r = s.json(s.tokenA, "POST", "/v1/instances", c.getValue());
            assertThat(r.status()).as(c.getKey() + ": " + r.text()).isEqualTo(400);
            assertThat(r.json().get("status").asInt()).isEqualTo(400);
            assertThat(r.json().get("error").asText()).as(c.getKey()).isNotBlank();
        }
        assertThat(s.get(s.tokenA, "/v1/operations?limit=1000").json().size()).as("operations recorded").isEqualTo(before);

        // The limits are bytes, not characters, and sit exactly at Linux's: 127 x é (254 bytes) is fine.
        String ok = s.start(s.tokenA, "/v1/instances", base.replace("\"true\"", "\"cat /d/" + "é".repeat(127) + "\"")
                + ",\"disposable\":true" + files("/d/" + "é".repeat(127), "\"0o100600\"") + "}");
        var done = s.await(s.tokenA, ok, Duration.ofSeconds(60));
        assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
        assertThat(done.get("metadata").get("result").get("stdout").get("value").asText()).isEqualTo("x");
    }

    static String q(String v) {
        try {
            return new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(v);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static String envs(int n, int size) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < n; i++) b.append(i == 0 ? "" : ",").append("\"E").append(i).append("\":\"").append("v".repeat(size)).append('"');
        return b.toString();
    }
}
