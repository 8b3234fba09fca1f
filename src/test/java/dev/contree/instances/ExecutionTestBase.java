package dev.contree.instances;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Executions through the real API on a real runtime: spawn, poll, inspect. Subclasses pick the runtime.
 */
abstract class ExecutionTestBase {
    @AutoClose static TestServer s;
    static String base;

    static void startServer(String runtime) throws Exception {
        s = TestServer.inTempDir("exec-" + runtime, c -> c.withRuntime(runtime, "ptrace").withLimits(1L << 30, 256L << 20, 4));
        base = s.importBusybox("busybox:test");
    }

    /** Spawns and waits; returns the finished operation. */
    static JsonNode run(String json) {
        String op = s.start(s.tokenA, "/v1/instances", json);
        return s.await(s.tokenA, op, Duration.ofSeconds(120));
    }

    static JsonNode sh(String image, String script) {
        return run("{\"image\":\"" + image + "\",\"command\":" + q(script) + ",\"shell\":true}");
    }

    static String q(String s) {
        try {
            return new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(s);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static String stdout(JsonNode op) {
        return stream(op, "stdout");
    }

    static String stream(JsonNode op, String name) {
        JsonNode st = op.get("metadata").get("result").get(name);
        String v = st.get("value").asText();
        return st.get("encoding").asText().equals("base64") ? new String(Base64.getDecoder().decode(v), StandardCharsets.UTF_8) : v;
    }

    static JsonNode state(JsonNode op) {
        return op.get("metadata").get("result").get("state");
    }

    static String download(String image, String path) {
        var r = s.get(s.tokenA, "/v1/inspect/" + image + "/download?path=" + path);
        return r.status() == 200 ? r.text() : null;
    }

    @Test
    void outputExitCodeAndResultShape() {
        JsonNode op = sh(base, "echo out; echo err >&2; exit 3");
        assertThat(op.get("status").asText()).isEqualTo("SUCCESS");
        assertThat(state(op).get("exit_code").asInt()).isEqualTo(3);
        assertThat(state(op).get("signal").asInt()).isEqualTo(-1);
        assertThat(state(op).get("timed_out").asBoolean()).isFalse();
        assertThat(stdout(op)).isEqualTo("out\n");
        assertThat(stream(op, "stderr")).isEqualTo("err\n");
        JsonNode res = op.get("metadata").get("result").get("resources");
        assertThat(res.get("elapsed_time").asDouble()).isPositive();
        assertThat(res.get("max_rss").asLong()).isPositive();
        assertThat(op.get("consumed_memory").asLong()).isPositive();
        assertThat(op.get("duration").asDouble()).isPositive();
        // Unchanged filesystem: the result is the input image, no new image.
        assertThat(op.get("result").get("image").asText()).isEqualTo(base);
        assertThat(op.get("result_image_uuid").asText()).isEqualTo(base);
    }

    @Test
    void pathLookupArgsEnvCwdUserHostname() {
        JsonNode echo = run("{\"image\":\"" + base + "\",\"command\":\"echo\",\"args\":[\"a b\",\"c\"]}");
        assertThat(stdout(echo)).isEqualTo("a b c\n");

        JsonNode interp = run("{\"image\":\"" + base + "\",\"command\":\"echo $0-$1\",\"args\":[\"zero\",\"one\"],\"shell\":true}");
        assertThat(stdout(interp)).isEqualTo("zero-one\n");

        JsonNode env = run("{\"image\":\"tag:busybox:test\",\"command\":\"echo $FOO:$HOME:$PATH; pwd; id -u; id -g; hostname\","
                + "\"shell\":true,\"env\":{\"FOO\":\"bar\"},\"cwd\":\"/home/user\",\"uid\":1000,\"gid\":1000,\"hostname\":\"box1\",\"disposable\":true}");
        assertThat(stdout(env).lines().toList()).containsExactly(
                "bar:/:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "/home/user", "1000", "1000", "box1");

        JsonNode defaults = sh(base, "pwd; hostname");
        assertThat(stdout(defaults)).isEqualTo("/root\nlinuxkit\n");

        JsonNode missing = run("{\"image\":\"" + base + "\",\"command\":\"no-such-command\"}");
        assertThat(missing.get("status").asText()).isEqualTo("SUCCESS");
        assertThat(state(missing).get("exit_code").asInt()).isEqualTo(127);
    }

    @Test
    void stdinBinaryRoundTrip() {
        byte[] all = new byte[256 * 4];
        for (int i = 0; i < all.length; i++) all[i] = (byte) i;
        JsonNode op = run("{\"image\":\"" + base + "\",\"command\":\"cat\",\"disposable\":true,"
                + "\"stdin\":{\"value\":\"" + Base64.getEncoder().encodeToString(all) + "\",\"encoding\":\"base64\"}}");
        JsonNode out = op.get("metadata").get("result").get("stdout");
        assertThat(out.get("encoding").asText()).isEqualTo("base64");
        assertThat(Base64.getDecoder().decode(out.get("value").asText())).isEqualTo(all);
    }

    @Test
    void filesAreInjectedAndKeptInTheChild() {
        String file = s.upload(s.tokenA, "#!/bin/sh\necho injected $(id -u)\n".getBytes()).json().get("uuid").asText();
        JsonNode op = run("{\"image\":\"" + base + "\",\"command\":\"/opt/app/run.sh\",\"files\":{"
                + "\"/opt/app/run.sh\":{\"uuid\":\"" + file + "\",\"mode\":\"0o100755\",\"uid\":1000,\"gid\":1000},"
                + "\"/etc/copy\":{\"uuid\":\"" + file + "\",\"mode\":\"0600\"}}}");
        assertThat(stdout(op)).isEqualTo("injected 0\n");
        String child = op.get("result").get("image").asText();
        assertThat(child).isNotEqualTo(base);
        JsonNode listing = s.get(s.tokenA, "/v1/inspect/" + child + "/list?path=/opt/app").json().get("files").get(0);
        assertThat(listing.get("path").asText()).isEqualTo("run.sh");
        assertThat(listing.get("mode").asInt()).isEqualTo(0100755);
        assertThat(listing.get("uid").asInt()).isEqualTo(1000);
        assertThat(download(child, "/etc/copy")).startsWith("#!/bin/sh");
        assertThat(download(base, "/etc/copy")).isNull();
    }

    @Test
    void timeoutKillsAndStillSucceeds() {
        long t0 = System.nanoTime();
        JsonNode op = run("{\"image\":\"" + base + "\",\"command\":\"echo started; sleep 30\",\"shell\":true,\"timeout\":1,\"disposable\":true}");
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(15));
        assertThat(op.get("status").asText()).isEqualTo("SUCCESS");
        assertThat(state(op).get("timed_out").asBoolean()).isTrue();
        assertThat(state(op).get("signal").asInt()).isEqualTo(9);
        assertThat(state(op).get("exit_code").asInt()).isEqualTo(-1);
        assertThat(stdout(op)).isEqualTo("started\n");
    }

    @Test
    void outputIsTruncatedPerStream() {
        JsonNode op = run("{\"image\":\"" + base + "\",\"command\":\"yes | head -c 50000; yes e | head -c 30 >&2\",\"shell\":true,"
                + "\"truncate_output_at\":100,\"disposable\":true}");
        JsonNode out = op.get("metadata").get("result").get("stdout");
        assertThat(out.get("truncated").asBoolean()).isTrue();
        assertThat(out.get("value").asText()).hasSize(100);
        assertThat(op.get("metadata").get("result").get("stderr").get("truncated").asBoolean()).isFalse();
        String events = s.get(s.tokenA, "/v1/operations/" + op.get("uuid").asText() + "/events").text();
        assertThat(events).contains("event: truncated").contains("\"bytes_dropped\":49900").contains("event: exit")
                .contains("\"ipc_msgs_received\":0").contains("event: completion");
        assertThat(events.indexOf("event: exit")).isLessThan(events.indexOf("event: shutdown"));
        assertThat(events.indexOf("event: shutdown")).isLessThan(events.indexOf("event: completion"));
        assertThat(events).contains("\"reason\":\"job_complete\"");
    }

    @Test
    void disposableKeepsNothingAndChangesMakeAChild() {
        JsonNode disposable = run("{\"image\":\"" + base + "\",\"command\":\"echo x > /kept\",\"shell\":true,\"disposable\":true}");
        assertThat(disposable.get("result").isNull()).isTrue();
        assertThat(disposable.get("result_image_uuid").isNull()).isTrue();

        JsonNode changed = sh(base, "echo x > /kept; rm /etc/hostname");
        String child = changed.get("result").get("image").asText();
        assertThat(child).isNotEqualTo(base);
        assertThat(download(child, "/kept")).isEqualTo("x\n");
        assertThat(download(child, "/etc/hostname")).isNull();
        assertThat(download(base, "/etc/hostname")).isEqualTo("busybox\n");
        JsonNode image = s.get(s.tokenA, "/v1/inspect/" + child + "/").json();
        assertThat(image.get("operation_uuid").asText()).isEqualTo(changed.get("uuid").asText());
        JsonNode lineage = s.get(s.tokenA, "/v1/images/" + child + "/lineage").json();
        assertThat(lineage.get("ancestors").get(0).get("uuid").asText()).isEqualTo(base);
        JsonNode diff = s.get(s.tokenA, "/v1/inspect/" + base + "/diff/" + child).json();
        assertThat(diff.get("added").toString()).contains("/kept").doesNotContain(".contree");
        assertThat(diff.get("deleted").toString()).contains("/etc/hostname");
        // Only directories whose entries changed count as modified (their mtime moved).
        diff.get("modified").forEach(m -> assertThat(m.get("type").asText()).as(m.toString()).isEqualTo("dir"));
    }

    @Test
    void preserveEnvCarriesIntoChildren() {
        JsonNode first = run("{\"image\":\"" + base + "\",\"command\":\"true\",\"env\":{\"KEEP\":\"me\",\"DROP\":\"x\"},\"preserve_env\":true}");
        String child = first.get("result").get("image").asText();
        JsonNode second = run("{\"image\":\"" + child + "\",\"command\":\"echo $KEEP-$DROP\",\"shell\":true,\"env\":{\"DROP\":null}}");
        assertThat(stdout(second)).isEqualTo("me-\n");
        assertThat(s.get(s.tokenA, "/v1/inspect/" + child + "/").json().get("config").get("env").get("KEEP").asText()).isEqualTo("me");
    }

    @Test
    void parallelChildrenAreIndependent() throws Exception {
        int n = 6;
        var pool = Executors.newVirtualThreadPerTaskExecutor();
        List<Future<JsonNode>> runs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int k = i;
            runs.add(pool.submit((Callable<JsonNode>) () -> sh(base, "echo " + k + " > /branch-" + k)));
        }
        Set<String> children = new HashSet<>();
        for (int i = 0; i < n; i++) {
            String child = runs.get(i).get().get("result").get("image").asText();
            children.add(child);
            assertThat(download(child, "/branch-" + i)).isEqualTo(i + "\n");
            assertThat(download(child, "/branch-" + ((i + 1) % n))).isNull();
        }
        assertThat(children).hasSize(n).doesNotContain(base);
    }

    @Test
    void cancelMidRunStopsPromptly() {
        String op = s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + base + "\",\"command\":\"echo x > /f; sleep 60\",\"shell\":true}");
        awaitStatus(op, "EXECUTING");
        sleep(500);
        long t0 = System.nanoTime();
        assertThat(s.delete(s.tokenA, "/v1/operations/" + op).status()).isEqualTo(202);
        JsonNode done = s.await(s.tokenA, op, Duration.ofSeconds(10));
        assertThat(done.get("status").asText()).isEqualTo("CANCELLED");
        assertThat(done.get("result").isNull()).isTrue();
        // The sandbox is gone: the next run gets a slot and works.
        assertThat(stdout(sh(base, "echo alive"))).isEqualTo("alive\n");
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(20));
        String events = "";
        for (int i = 0; i < 100 && !events.contains("event: completion"); i++, sleep(100)) {
            events = s.get(s.tokenA, "/v1/operations/" + op + "/events").text();
        }
        assertThat(events).contains("\"reason\":\"cancelled\"").doesNotContain("event: exit");
    }

    @Test
    void diskFillHitsTheLayerCap() {
        JsonNode op = run("{\"image\":\"" + base + "\",\"command\":\"dd if=/dev/zero of=/big bs=1M count=64; echo rc=$?\",\"shell\":true,"
                + "\"resources_limits\":{\"max_layer_bytes\":16777216}}");
        assertThat(op.get("status").asText()).isEqualTo("SUCCESS");
        assertThat(stream(op, "stderr").toLowerCase()).contains("quota");
        assertThat(stdout(op)).doesNotContain("rc=0");
        assertThat(op.get("image_size").asLong()).isLessThanOrEqualTo(16L << 20);
        assertThat(s.get(s.tokenA, "/v1/operations/" + op.get("uuid").asText() + "/events").text()).contains("event: size_cap");
        assertThat(stdout(sh(base, "echo fine"))).isEqualTo("fine\n");
    }

    @Test
    void outputFloodStaysBounded() {
        Runtime rt = Runtime.getRuntime();
        JsonNode op = run("{\"image\":\"" + base + "\",\"command\":\"yes\",\"timeout\":10,\"disposable\":true}");
        assertThat(state(op).get("timed_out").asBoolean()).isTrue();
        JsonNode out = op.get("metadata").get("result").get("stdout");
        assertThat(out.get("truncated").asBoolean()).isTrue();
        assertThat(out.get("value").asText().length()).isEqualTo(1 << 20);
        String events = s.get(s.tokenA, "/v1/operations/" + op.get("uuid").asText() + "/events").text();
        assertThat(events.length()).isLessThan(8 << 20); // only the kept megabyte is logged, as events
        assertThat(events).contains("event: truncated");
        assertThat(rt.totalMemory() - rt.freeMemory()).isLessThan(1L << 30);
    }

    @Test
    void forkBombAndMemoryBombAreContained() {
        JsonNode fork = run("{\"image\":\"" + base + "\",\"command\":\"f(){ f|f& }; f; sleep 3; echo survived\",\"shell\":true,\"timeout\":8,\"disposable\":true}");
        assertThat(fork.get("status").asText()).isIn("SUCCESS", "FAILED");
        assertThat(stdout(sh(base, "echo after-fork"))).isEqualTo("after-fork\n");

        JsonNode mem = run("{\"image\":\"" + base + "\",\"command\":\"awk 'BEGIN{s=\\\"xxxxxxxxxxxxxxxx\\\"; while(1) s=s s}'\",\"shell\":true,\"timeout\":60,\"disposable\":true}");
        if (mem.get("status").asText().equals("SUCCESS")) {
            assertThat(state(mem).get("exit_code").asInt()).isNotZero();
        } else {
            assertThat(mem.get("status").asText()).isEqualTo("FAILED");
            assertThat(mem.get("error").asText()).containsIgnoringCase("memory");
        }
        assertThat(stdout(sh(base, "echo after-oom"))).isEqualTo("after-oom\n");
    }

    @Test
    void spawnValidation() {
        String file = s.upload(s.tokenA, "x".getBytes()).json().get("uuid").asText();
        String[][] cases = {
                {"{\"image\":\"" + base + "\"}", "400"},
                {"{\"command\":\"true\"}", "400"},
                {"{\"image\":\"" + base + "\",\"command\":5}", "400"},
                {"{\"image\":\"" + base + "\",\"command\":\"true\",\"timeout\":0}", "400"},
                {"{\"image\":\"" + base + "\",\"command\":\"true\",\"timeout\":999999}", "400"},
                {"{\"image\":\"" + base + "\",\"command\":\"true\",\"truncate_output_at\":-1}", "400"},
                {"{\"image\":\"" + base + "\",\"command\":\"true\",\"args\":\"x\"}", "400"},
                {"{\"image\":\"" + base + "\",\"command\":\"true\",\"env\":{\"A\":[1]}}", "400"},
                {"{\"image\":\"" + base + "\",\"command\":\"true\",\"hostname\":\"bad host\"}", "400"},
                {"{\"image\":\"" + base + "\",\"command\":\"true\",\"cwd\":\"relative\"}", "400"},
                {"{\"image\":\"" + base + "\",\"command\":\"true\",\"stdin\":{\"value\":\"!!\",\"encoding\":\"base64\"}}", "400"},
                {"{\"image\":\"" + base + "\",\"command\":\"true\",\"files\":{\"/a/../../etc/x\":{\"uuid\":\"" + file + "\"}}}", "400"},
                {"{\"image\":\"" + base + "\",\"command\":\"true\",\"files\":{\"rel\":{\"uuid\":\"" + file + "\"}}}", "400"},
                {"{\"image\":\"" + base + "\",\"command\":\"true\",\"files\":{\"/x\":{\"uuid\":\"" + file + "\",\"mode\":\"rwx\"}}}", "400"},
                {"{\"image\":\"" + base + "\",\"command\":\"true\",\"files\":{\"/x\":{\"uuid\":\"00000000-0000-0000-0000-000000000000\"}}}", "404"},
                {"{\"image\":\"00000000-0000-0000-0000-000000000000\",\"command\":\"true\"}", "404"},
                {"{\"image\":\"tag:nope\",\"command\":\"true\"}", "404"},
                {"{\"image\":\"" + base + "\",\"command\":\"true\",\"networking\":{\"enabled\":true}}", "403"},
        };
        int before = s.get(s.tokenA, "/v1/operations?limit=1000").json().size();
        for (String[] c : cases) {
            var r = s.json(s.tokenA, "POST", "/v1/instances", c[0]);
            assertThat(r.status()).as(c[0]).isEqualTo(Integer.parseInt(c[1]));
            assertThat(r.json().get("error").asText()).as(c[0]).isNotBlank();
        }
        assertThat(s.get(s.tokenA, "/v1/operations?limit=1000").json().size()).isEqualTo(before);
        // Another account cannot run alice's image.
        assertThat(s.json(s.tokenB, "POST", "/v1/instances", "{\"image\":\"" + base + "\",\"command\":\"true\"}").status()).isEqualTo(404);
    }

    @Test
    void sequentialChain() {
        String image = base;
        int depth = chainDepth();
        for (int i = 0; i < depth; i++) {
            JsonNode op = sh(image, "echo " + i + " >> /chain; echo " + i + " > /step-" + (i % 7));
            assertThat(op.get("status").asText()).isEqualTo("SUCCESS");
            image = op.get("result").get("image").asText();
        }
        String chain = download(image, "/chain");
        assertThat(chain.lines().count()).isEqualTo(depth);
        assertThat(chain).endsWith((depth - 1) + "\n");
        assertThat(s.get(s.tokenA, "/v1/inspect/" + image + "/list?path=/").json().get("files").size()).isGreaterThan(5);
        assertThat(stdout(sh(image, "wc -l < /chain"))).isEqualTo(depth + "\n");
    }

    /** How deep {@link #sequentialChain} goes on this runtime. */
    abstract int chainDepth();

    static void awaitStatus(String op, String status) {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!s.get(s.tokenA, "/v1/operations/" + op).json().get("status").asText().equals(status)) {
            if (System.nanoTime() > deadline) throw new AssertionError("never reached " + status);
            sleep(20);
        }
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }
}
