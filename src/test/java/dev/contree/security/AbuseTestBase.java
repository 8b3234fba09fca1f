package dev.contree.security;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Base64;
import java.util.UUID;

import static dev.contree.security.SecurityTestSupport.hostProcessesWith;
import static dev.contree.security.SecurityTestSupport.q;
import static dev.contree.security.SecurityTestSupport.state;
import static dev.contree.security.SecurityTestSupport.stream;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Resource abuse through the real API on a real runtime: each case is contained (bounded, cleaned up) and the
 * server stays healthy afterwards (whoami answers fast, a normal run works). Fork bomb, memory bomb, disk fill
 * and output floods live in ExecutionTestBase. Subclasses pick the runtime.
 */
abstract class AbuseTestBase {
    @AutoClose static TestServer s;
    static String base;

    static void startServer(String runtime) throws Exception {
        s = TestServer.inTempDir("abuse-" + runtime, c -> c.withRuntime(runtime, "ptrace").withLimits(1L << 30, 256L << 20, 4));
        base = s.importBusybox(null);
    }

    @AfterEach
    void serverStillHealthy() {
        SecurityTestSupport.assertHealthy(s, base);
    }

    static JsonNode run(String json) {
        return SecurityTestSupport.run(s, json, Duration.ofSeconds(180));
    }

    /**
     * Creating empty files with long names until the layer cap stops it: metadata counts against the quota.
     * ({@code true}, not {@code :}: a failed redirection on a special builtin makes sh exit.)
     */
    @Test
    void inodeExhaustionHitsTheLayerCap() {
        long cap = 8L << 20;
        String script = "p=" + "x".repeat(200) + "; mkdir /d; i=0; while true > /d/$p$i 2>/dev/null; do i=$((i+1)); done;"
                + " echo n=$i; true > /d/${p}last";
        JsonNode op = run("{\"image\":\"" + base + "\",\"command\":" + q(script) + ",\"shell\":true,\"timeout\":120,"
                + "\"resources_limits\":{\"max_layer_bytes\":" + cap + "}}");
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        assertThat(state(op).get("timed_out").asBoolean()).as("stopped by the cap, not the timeout").isFalse();
        String out = stream(op, "stdout");
        System.out.println(getClass().getSimpleName() + " inode exhaustion: " + out.strip() + " / " + stream(op, "stderr").strip()
                + " / image_size=" + op.get("image_size"));
        assertThat(out).startsWith("n=");
        assertThat(Long.parseLong(out.strip().substring(2))).isPositive();
        assertThat(stream(op, "stderr").toLowerCase()).containsAnyOf("quota", "no space");
        assertThat(op.get("image_size").asLong()).isLessThanOrEqualTo(2 * cap);
    }

    /** ~1 MiB of arguments (1,024 x 1,000 bytes) reach the command intact. */
    @Test
    void hugeArgv() {
        StringBuilder args = new StringBuilder("[\"-c\",\"echo $#; echo \\\"$@\\\" | wc -c\",\"sh\"");
        String arg = "a".repeat(999);
        for (int i = 0; i < 1024; i++) args.append(",\"").append(arg).append('"');
        args.append(']');
        JsonNode op = run("{\"image\":\"" + base + "\",\"command\":\"/bin/sh\",\"args\":" + args + ",\"disposable\":true}");
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        assertThat(stream(op, "stdout")).as(stream(op, "stderr")).isEqualTo("1024\n" + (1024 * 1000) + "\n");
    }

    /** 2,000 environment variables of ~200 bytes each. */
    @Test
    void hugeEnv() {
        StringBuilder env = new StringBuilder("{");
        String value = "v".repeat(200);
        for (int i = 0; i < 2000; i++) env.append(i == 0 ? "" : ",").append("\"VAR_").append(i).append("\":\"").append(value).append('"');
        env.append('}');
        JsonNode op = run("{\"image\":\"" + base + "\",\"command\":\"env | grep -c ^VAR_; echo ${#VAR_1999}\",\"shell\":true,"
                + "\"disposable\":true,\"env\":" + env + "}");
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        assertThat(stream(op, "stdout")).as(stream(op, "stderr")).isEqualTo("2000\n200\n");
    }

    /** 100 MiB of stdin, base64 in the JSON body (~140 MB, under the 256 MiB JSON limit), all read by the command. */
    @Test
    void hundredMebibytesOfStdin() {
        byte[] in = new byte[100 << 20];
        new java.util.Random(42).nextBytes(in);
        String body = "{\"image\":\"" + base + "\",\"command\":\"wc -c\",\"shell\":true,\"disposable\":true,\"timeout\":120,"
                + "\"stdin\":{\"encoding\":\"base64\",\"value\":\"" + Base64.getEncoder().encodeToString(in) + "\"}}";
        in = null;
        JsonNode op = run(body);
        assertThat(op.get("status").asText()).as(op.get("error") + "").isEqualTo("SUCCESS");
        assertThat(stream(op, "stdout").strip()).isEqualTo("104857600");
    }

    /**
     * A command that ignores SIGTERM and leaves double-forked orphans (also ignoring SIGTERM/SIGHUP, in their own
     * sessions): killed at the timeout, and nothing of the sandbox remains on the host afterwards.
     */
    @Test
    void sigtermIgnorersAndOrphansAreKilledAtTheTimeout() throws Exception {
        String marker = "MARK" + UUID.randomUUID().toString().replace("-", "");
        String script = "trap '' TERM HUP; (setsid sh -c \"trap '' TERM HUP; sleep 7771; : " + marker + "\" &);"
                + " (sh -c \"trap '' TERM; sleep 7772; : " + marker + "\" &); echo started; sleep 7773; : " + marker;
        long t0 = System.nanoTime();
        JsonNode op = run("{\"image\":\"" + base + "\",\"command\":" + q(script) + ",\"shell\":true,\"disposable\":true,\"timeout\":3}");
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(30));
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        assertThat(state(op).get("timed_out").asBoolean()).isTrue();
        assertThat(state(op).get("signal").asInt()).isEqualTo(9);
        assertThat(stream(op, "stdout")).isEqualTo("started\n");
        assertNothingLeft(marker, op.get("uuid").asText());
    }

    /** The parent exits at once; its double-forked child would sleep for hours: the run ends, the child dies. */
    @Test
    void orphanOutlivingItsParentIsReaped() throws Exception {
        String marker = "MARK" + UUID.randomUUID().toString().replace("-", "");
        String script = "(sh -c \"sleep 7774; : " + marker + "\" &); (setsid sh -c \"sleep 7775; : " + marker + "\" &); echo parent-done";
        long t0 = System.nanoTime();
        JsonNode op = run("{\"image\":\"" + base + "\",\"command\":" + q(script) + ",\"shell\":true,\"disposable\":true}");
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(30));
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        assertThat(state(op).get("exit_code").asInt()).isZero();
        assertThat(state(op).get("timed_out").asBoolean()).isFalse();
        assertThat(stream(op, "stdout")).isEqualTo("parent-done\n");
        assertNothingLeft(marker, op.get("uuid").asText());
    }

    /** The longest timeout whoami allows is accepted (one more second is not); a cancel after 1 s ends it. */
    @Test
    void maximumTimeoutIsAcceptedAndCancellable() throws Exception {
        int max = s.get(s.tokenA, "/v1/whoami").json().get("limits").get("instance_max_timeout").asInt();
        assertThat(max).isPositive();
        var tooLong = s.json(s.tokenA, "POST", "/v1/instances", "{\"image\":\"" + base + "\",\"command\":\"true\",\"timeout\":" + (max + 1) + "}");
        assertThat(tooLong.status()).as(tooLong.text()).isBetween(400, 499);

        String marker = "MARK" + UUID.randomUUID().toString().replace("-", "");
        String op = s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + base + "\",\"command\":"
                + q("trap '' TERM; sleep 7776; : " + marker) + ",\"shell\":true,\"timeout\":" + max + "}");
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!s.get(s.tokenA, "/v1/operations/" + op).json().get("status").asText().equals("EXECUTING")) {
            assertThat(System.nanoTime()).isLessThan(deadline);
            Thread.sleep(50);
        }
        Thread.sleep(1000);
        long t0 = System.nanoTime();
        assertThat(s.delete(s.tokenA, "/v1/operations/" + op).status()).isEqualTo(202);
        JsonNode done = s.await(s.tokenA, op, Duration.ofSeconds(30));
        assertThat(done.get("status").asText()).isEqualTo("CANCELLED");
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(10));
        assertNothingLeft(marker, op);
    }

    /**
     * A live instance's subprocesses attack it from inside: a SIGTERM ignorer with double-forked orphans hits its own
     * timeout (the instance stays up), an output flood is capped, a spawn storm past the live-process limit is refused
     * with 429, and when the main process is terminated nothing of any of them remains on the host.
     */
    @Test
    void subprocessesCannotOutliveOrOverwhelmTheirInstance() throws Exception {
        String marker = "MARK" + UUID.randomUUID().toString().replace("-", "");
        String op = s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + base + "\",\"command\":\"sleep 300\",\"shell\":true,"
                + "\"disposable\":true,\"timeout\":300}");
        String sub = "/v1/operations/" + op + "/subprocesses";
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!s.get(s.tokenA, "/v1/operations/" + op).json().get("status").asText().equals("EXECUTING")) {
            assertThat(System.nanoTime()).isLessThan(deadline);
            Thread.sleep(50);
        }
        String ignorer = "trap '' TERM HUP; (setsid sh -c \"trap '' TERM HUP; sleep 7781; : " + marker + "\" &);"
                + " echo started; sleep 7782; : " + marker;
        int stubborn = spid(s.json(s.tokenA, "POST", sub, "{\"command\":" + q(ignorer) + ",\"shell\":true,\"timeout\":2}"));
        int flood = spid(s.json(s.tokenA, "POST", sub, "{\"command\":\"yes | head -c 50000000\",\"shell\":true,"
                + "\"truncate_output_at\":1000}"));
        JsonNode stopped = EscapeTestBase.awaitSubprocess(s, op, stubborn, Duration.ofSeconds(60));
        assertThat(stopped.get("state").get("timed_out").asBoolean()).isTrue();
        assertThat(EscapeTestBase.text(stopped.get("stdout"))).isEqualTo("started\n");
        JsonNode flooded = EscapeTestBase.awaitSubprocess(s, op, flood, Duration.ofSeconds(120));
        assertThat(flooded.get("stdout").get("truncated").asBoolean()).isTrue();
        assertThat(EscapeTestBase.text(flooded.get("stdout"))).hasSize(1000);
        assertThat(s.get(s.tokenA, "/v1/operations/" + op).json().get("status").asText()).isEqualTo("EXECUTING");

        int accepted = 0, refused = 0;
        for (int i = 0; i < 70; i++) {
            TestServer.Reply r = s.json(s.tokenA, "POST", sub, "{\"command\":" + q("sleep 7783; : " + marker) + ",\"shell\":true}");
            if (r.status() == 200) accepted++;
            else {
                assertThat(r.status()).as(r.text()).isEqualTo(429);
                refused++;
            }
        }
        assertThat(accepted).isLessThanOrEqualTo(64);
        assertThat(refused).isPositive();

        assertThat(s.delete(s.tokenA, sub + "/1?signal=KILL").status()).isEqualTo(204);
        JsonNode done = s.await(s.tokenA, op, Duration.ofSeconds(60));
        assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
        assertThat(state(done).get("signal").asInt()).isEqualTo(9);
        assertNothingLeft(marker, op);
    }

    static int spid(TestServer.Reply r) {
        assertThat(r.status()).as(r.text()).isEqualTo(200);
        return r.json().get("spid").asInt();
    }

    /** No host process carries the marker or the operation's id (runtime, sentry, gofer, shim) any more. */
    static void assertNothingLeft(String marker, String opUuid) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (true) {
            var left = hostProcessesWith(marker);
            left.addAll(hostProcessesWith(opUuid));
            if (left.isEmpty()) return;
            if (System.nanoTime() > deadline) assertThat(left).as("host processes left behind").isEmpty();
            Thread.sleep(200);
        }
    }
}
