package dev.contree.instances;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;

import static dev.contree.instances.ExecutionTestBase.q;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Executions on the vm runtime through the API: what the snapshot store sees of a guest's writes (virtiofs lands
 * them in the host's upper dir). Few boots (TCG: 2-5 s each): each test checks several things. Opt-in like the
 * other microVM tests: CONTREE_VM_TESTS=1.
 */
class VmExecutionTest {
    @AutoClose static TestServer s;
    static String base;

    @BeforeAll
    static void start() throws Exception {
        Assumptions.assumeTrue("true".equals(System.getProperty("contree.vm.tests")) || "1".equals(System.getenv("CONTREE_VM_TESTS")),
                "microVM tests are opt-in: CONTREE_VM_TESTS=1");
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/bin/busybox")), "busybox-static missing");
        s = TestServer.inTempDir("exec-vm", c -> c.withRuntime("vm", "ptrace").withLimits(1L << 30, 256L << 20, 2));
        base = s.importBusybox("busybox:test");
    }

    static JsonNode run(String json) {
        String op = s.start(s.tokenA, "/v1/instances", json);
        return s.await(s.tokenA, op, Duration.ofSeconds(180));
    }

    static JsonNode state(JsonNode op) { return op.get("metadata").get("result").get("state"); }

    static String stream(JsonNode op, String name) {
        JsonNode st = op.get("metadata").get("result").get(name);
        String v = st.get("value").asText();
        return st.get("encoding").asText().equals("base64") ? new String(Base64.getDecoder().decode(v)) : v;
    }

    static String download(String image, String path) {
        var r = s.get(s.tokenA, "/v1/inspect/" + image + "/download?path=" + path);
        return r.status() == 200 ? r.text() : null;
    }

    @Test
    void injectedFilesAndGuestWritesMakeAChildImage() {
        String file = s.upload(s.tokenA, "#!/bin/sh\necho injected $(id -u) $(uname -r)\n".getBytes()).json().get("uuid").asText();
        JsonNode op = run("{\"image\":\"" + base + "\",\"command\":" + q("/opt/app/run.sh; stat -c '%a %u %g' /opt/app/run.sh /etc/copy;"
                + " echo guest > /kept; chown 1000:1000 /kept; rm /etc/hostname") + ",\"shell\":true,\"files\":{"
                + "\"/opt/app/run.sh\":{\"uuid\":\"" + file + "\",\"mode\":\"0o100755\",\"uid\":1000,\"gid\":1000},"
                + "\"/etc/copy\":{\"uuid\":\"" + file + "\",\"mode\":\"0600\"}}}");
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        String[] out = stream(op, "stdout").split("\n");
        assertThat(out[0]).startsWith("injected 0 6.1.");
        assertThat(out[1]).isEqualTo("755 1000 1000");
        assertThat(out[2]).isEqualTo("600 0 0");
        String child = op.get("result").get("image").asText();
        assertThat(child).isNotEqualTo(base);
        JsonNode listing = s.get(s.tokenA, "/v1/inspect/" + child + "/list?path=/").json().get("files");
        JsonNode kept = null;
        for (JsonNode f : listing) if (f.get("path").asText().equals("kept")) kept = f;
        assertThat(kept).as(listing.toString()).isNotNull();
        assertThat(kept.get("uid").asInt()).isEqualTo(1000);
        assertThat(download(child, "/kept")).isEqualTo("guest\n");
        assertThat(download(child, "/etc/copy")).startsWith("#!/bin/sh");
        assertThat(download(child, "/etc/hostname")).isNull();
        assertThat(download(base, "/etc/hostname")).isEqualTo("busybox\n");
        JsonNode diff = s.get(s.tokenA, "/v1/inspect/" + base + "/diff/" + child).json();
        assertThat(diff.get("added").toString()).contains("/kept").doesNotContain("/proc\"").doesNotContain("/sys\"");
    }

    @Test
    void unchangedRunKeepsItsImageWithBinaryStdinAndTruncatedOutput() {
        byte[] all = new byte[256 * 4];
        for (int i = 0; i < all.length; i++) all[i] = (byte) i;
        JsonNode op = run("{\"image\":\"" + base + "\",\"command\":" + q("cat; yes e | head -c 50000 >&2") + ",\"shell\":true,"
                + "\"truncate_output_at\":100,\"stdin\":{\"value\":\"" + Base64.getEncoder().encodeToString(all)
                + "\",\"encoding\":\"base64\"}}");
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        JsonNode out = op.get("metadata").get("result").get("stdout");
        assertThat(out.get("encoding").asText()).isEqualTo("base64");
        byte[] first = new byte[100];
        System.arraycopy(all, 0, first, 0, 100);
        assertThat(Base64.getDecoder().decode(out.get("value").asText())).isEqualTo(first);
        assertThat(out.get("truncated").asBoolean()).isTrue();
        JsonNode err = op.get("metadata").get("result").get("stderr");
        assertThat(err.get("truncated").asBoolean()).isTrue();
        assertThat(err.get("value").asText()).hasSize(100);
        assertThat(op.get("result").get("image").asText()).as("nothing changed: the input image").isEqualTo(base);
    }

    @Test
    void timeoutEndsTimedOut() {
        JsonNode op = run("{\"image\":\"" + base + "\",\"command\":\"echo started; sleep 60\",\"shell\":true,\"timeout\":2,\"disposable\":true}");
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        assertThat(state(op).get("timed_out").asBoolean()).isTrue();
        assertThat(state(op).get("signal").asInt()).isEqualTo(9);
        assertThat(stream(op, "stdout")).isEqualTo("started\n");
    }

    @Test
    void aLiveInstanceRunsSubprocessesInOneGuestAndSnapshotsTheirWrites() {
        String op = s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + base + "\",\"command\":\"sleep 120\",\"shell\":true,\"timeout\":150}");
        long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        while (!s.get(s.tokenA, "/v1/operations/" + op).json().get("status").asText().equals("EXECUTING")) {
            assertThat(System.nanoTime()).as("the instance never ran").isLessThan(deadline);
            SubprocessApiTest.sleep(50);
        }
        try {
            liveInstance(op);
        } finally {
            s.delete(s.tokenA, "/v1/operations/" + op); // a failed check must not leave the instance holding a slot
        }
    }

    private static void liveInstance(String op) {
        int a = sub(op, "{\"command\":\"uname -r; echo from-sub > /sub.txt; id -u\",\"shell\":true,\"uid\":1000,\"gid\":1000,"
                + "\"cwd\":\"/tmp\"}");
        JsonNode ra = exited(op, a);
        assertThat(SubprocessApiTest.text(ra.get("stderr"))).as("uid 1000 cannot write /").contains("Permission denied");
        int b = sub(op, "{\"command\":\"echo from-sub > /sub.txt; uname -r\",\"shell\":true}");
        JsonNode rb = exited(op, b);
        assertThat(rb.get("state").get("exit_code").asInt()).isZero();
        assertThat(SubprocessApiTest.text(rb.get("stdout"))).startsWith("6.1.");
        assertThat(SubprocessApiTest.text(ra.get("stdout"))).startsWith("6.1.").endsWith("1000\n");

        assertThat(s.delete(s.tokenA, "/v1/operations/" + op + "/subprocesses/1?signal=TERM").status()).isEqualTo(204);
        JsonNode done = s.await(s.tokenA, op, Duration.ofSeconds(60));
        assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
        assertThat(done.get("metadata").get("result").get("state").get("signal").asInt()).isEqualTo(15);
        assertThat(download(done.get("result").get("image").asText(), "/sub.txt")).isEqualTo("from-sub\n");
    }

    static int sub(String op, String body) {
        TestServer.Reply r = s.json(s.tokenA, "POST", "/v1/operations/" + op + "/subprocesses", body);
        assertThat(r.status()).as(r.text()).isEqualTo(200);
        return r.json().get("spid").asInt();
    }

    static JsonNode exited(String op, int spid) {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (true) {
            JsonNode j = s.get(s.tokenA, "/v1/operations/" + op + "/subprocesses/" + spid).json();
            JsonNode st = j.get("state");
            if (st.get("exit_code").asInt() != -1 || st.get("signal").asInt() != -1) return j;
            assertThat(System.nanoTime()).as("subprocess %d never ended", spid).isLessThan(deadline);
            SubprocessApiTest.sleep(50);
        }
    }
}
