package dev.contree.security;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static dev.contree.security.SecurityTestSupport.q;
import static dev.contree.security.SecurityTestSupport.state;
import static dev.contree.security.SecurityTestSupport.stream;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * A command attacks its own sandbox's control plane: contree-init's report channel (forged result frames through
 * /proc/1/fd), PID 1's memory, environment and signals, and socket families the sandbox has no use for. The
 * result the server records must be the command's real one. Subclasses pick the runtime.
 */
abstract class ControlChannelTestBase {
    @AutoClose static TestServer s;
    static String base, hostile;

    /**
     * gVisor does not apply PID 1's dumpability to /proc/1/fd (it does to mem and ptrace): a command can open
     * init's output there. It still cannot forge a result (no run token), it can only spoil its own run.
     */
    abstract boolean initFdsReachable();

    static void startServer(String runtime) throws Exception {
        s = TestServer.inTempDir("control-" + runtime, c -> c.withRuntime(runtime, "ptrace").withLimits(1L << 30, 256L << 20, 4));
        base = s.importBusybox(null);
        hostile = s.upload(s.tokenA, Files.readAllBytes(buildHostile(s.tempDir))).json().get("uuid").asText();
    }

    static Path buildHostile(Path dir) throws IOException, InterruptedException {
        Path src;
        try {
            src = Path.of(ControlChannelTestBase.class.getResource("hostile.c").toURI());
        } catch (URISyntaxException e) {
            throw new IOException(e);
        }
        Path out = dir.resolve("hostile");
        Process p = new ProcessBuilder("gcc", "-static", "-O1", "-o", out.toString(), src.toString())
                .redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor()).as("gcc: " + log).isZero();
        return out;
    }

    /** Runs a shell script as root with /h (the hostile helper) injected. */
    static JsonNode run(String script) {
        return SecurityTestSupport.run(s, "{\"image\":\"" + base + "\",\"command\":" + q(script) + ",\"shell\":true,"
                + "\"disposable\":true,\"timeout\":60,\"files\":{\"/h\":{\"uuid\":\"" + hostile + "\",\"mode\":\"0755\"}}}",
                Duration.ofSeconds(120));
    }

    static void assertRealResult(JsonNode op, int exit) {
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        assertThat(state(op).get("exit_code").asInt()).as(op.toString()).isEqualTo(exit);
        JsonNode res = op.get("metadata").get("result").get("resources");
        assertThat(res.get("user_cpu_time").asDouble()).as(res.toString()).isLessThan(60);
        assertThat(res.get("max_rss").asLong()).as(res.toString()).isLessThan(512 * 1024);
    }

    /** The reproduced attack: forged 'R' frames written to init's own stdout through /proc/1/fd/1. */
    @Test
    void commandCannotForgeItsResultThroughProc1Fd() {
        JsonNode op = run("/h forge /proc/1/fd/1; /h forge /proc/1/fd/2; exit 7");
        assertForgeryNotBelieved(op, 7);
    }

    /** The real result, or (where init's fds are reachable) a failed run that says why; never the forged one. */
    void assertForgeryNotBelieved(JsonNode op, int exit) {
        String body = op.toString();
        assertThat(body).doesNotContain("exit_code\":123").doesNotContain("31536000");
        if (initFdsReachable()) {
            assertThat(op.get("status").asText()).as(body).isEqualTo("FAILED");
            assertThat(op.get("error").asText()).contains("tampered with contree-init's report channel")
                    .doesNotContain("FORGED").doesNotContain("utime_us");
            assertThat(op.get("consumed_cpu").isNull()).isTrue();
        } else {
            assertRealResult(op, exit);
            assertThat(stream(op, "stdout")).doesNotContain("FORGED-STDOUT").doesNotContain("FORGE ok").contains("FORGE err 13");
        }
    }

    /** Every other way into PID 1's descriptors and memory: fd links, fdinfo, mem, environ, map_files. */
    @Test
    void initsDescriptorsMemoryAndEnvironmentAreClosed() {
        String script = String.join("\n",
                "for f in /proc/1/fd/0 /proc/1/fd/1 /proc/1/fd/2 /proc/1/fd/3 /proc/1/fd/4 /proc/1/fd/5; do"
                        + " echo \"V fd-w$f $(timeout 2 /h open $f w)\"; echo \"V fd-r$f $(timeout 2 /h open $f r)\"; done",
                "echo \"V mem $(/h open /proc/1/mem rw)\"",
                "echo \"V environ $(/h open /proc/1/environ r)\"",
                "echo \"V ls-fd $(ls /proc/1/fd 2>&1 | head -c 100 | tr '\\n' ' ')\"",
                "echo \"V maps $(/h open /proc/1/maps r)\"",
                "echo \"V forge-ls $(for f in $(ls /proc/1/fd 2>/dev/null); do /h forge /proc/1/fd/$f; done)\"",
                "echo \"V ptrace $(/h ptrace1)\"",
                "exit 3");
        if (initFdsReachable()) { // the forging part is covered above; here: what else is reachable
            JsonNode op = run(script.replace(script.lines().filter(l -> l.contains("forge-ls")).findFirst().orElseThrow(), ""));
            var v = SecurityTestSupport.verdicts(stream(op, "stdout"));
            System.out.println(getClass().getSimpleName() + " init probes: " + v);
            assertRealResult(op, 3);
            assertThat(v.get("ptrace")).startsWith("PTRACE err");
            assertThat(v.get("mem")).startsWith("OPEN err");
            assertForgeryNotBelieved(run("for f in $(ls /proc/1/fd); do /h forge /proc/1/fd/$f; done; exit 3"), 3);
            return;
        }
        JsonNode op = run(script);
        var v = SecurityTestSupport.verdicts(stream(op, "stdout"));
        System.out.println(getClass().getSimpleName() + " init probes: " + v);
        assertRealResult(op, 3);
        assertThat(v.get("ptrace")).startsWith("PTRACE err");
        assertThat(v).containsKeys("mem", "environ", "maps", "fd-w/proc/1/fd/1", "fd-r/proc/1/fd/0");
        v.forEach((k, r) -> {
            if (k.startsWith("fd-") || k.equals("mem") || k.equals("environ") || k.equals("maps"))
                assertThat(r).as(k).startsWith("OPEN err");
        });
        assertThat(v.get("forge-ls")).doesNotContain("FORGE ok");
        assertThat(stream(op, "stdout")).doesNotContain("FORGED-STDOUT");
    }

    /** Signals a sandboxed root sends to PID 1 are not taken for the runtime asking init to stop. */
    @Test
    void signalsToInitFromInsideAreNotBelieved() {
        JsonNode op = run("for sig in 15 2 1 3 10 12 9 19; do /h kill1 $sig; done; sleep 0.3; echo alive; exit 5");
        assertRealResult(op, 5);
        assertThat(stream(op, "stdout")).contains("alive");
        assertThat(state(op).get("signal").asInt()).isEqualTo(-1);
    }

    /** Allow-list of socket families: AF_UNIX, AF_INET, AF_INET6, AF_NETLINK (NETLINK_ROUTE only). */
    @Test
    void onlyUsefulSocketFamiliesCanBeCreated() {
        // family type proto: AF_VSOCK 40, AF_PACKET 17, AF_KEY 15, AF_BLUETOOTH 31, AF_ALG 38, AF_XDP 44,
        // AF_TIPC 30, AF_RDS 21, AF_NETLINK 16 with NETLINK_AUDIT 9 / NETLINK_XFRM 6 / NETLINK_SOCK_DIAG 4
        // SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_RAW 3, SOCK_SEQPACKET 5
        String[][] denied = {{"vsock", "40 1 0"}, {"packet", "17 3 0"}, {"key", "15 3 2"}, {"bluetooth", "31 3 0"},
                {"alg", "38 5 0"}, {"xdp", "44 3 0"}, {"tipc", "30 5 0"}, {"rds", "21 5 0"}, {"appletalk", "5 2 0"},
                {"x25", "9 5 0"}, {"ax25", "3 5 0"}, {"can", "29 3 1"}, {"netlink-audit", "16 3 9"},
                {"netlink-xfrm", "16 3 6"}, {"netlink-diag", "16 3 4"}, {"netlink-uevent", "16 3 15"},
                {"netlink-generic", "16 3 16"}, {"netlink-netfilter", "16 3 12"}, {"family-99", "99 1 0"}};
        String[][] allowed = {{"unix", "1 1 0"}, {"inet", "2 1 0"}, {"inet6", "10 2 0"}, {"netlink-route", "16 3 0"},
                {"unix-cloexec", "1 524289 0"}};
        StringBuilder sb = new StringBuilder();
        for (String[] c : denied) sb.append("echo \"V ").append(c[0]).append(" $(/h socket ").append(c[1]).append(")\"\n");
        for (String[] c : allowed) sb.append("echo \"V ").append(c[0]).append(" $(/h socket ").append(c[1]).append(")\"\n");
        JsonNode op = run(sb.toString());
        var v = SecurityTestSupport.verdicts(stream(op, "stdout"));
        System.out.println(getClass().getSimpleName() + " sockets: " + v);
        for (String[] c : allowed) assertThat(v.get(c[0])).as(c[0]).isEqualTo("SOCKET ok");
        for (String[] c : denied) assertThat(v.get(c[0])).as(c[0]).startsWith("SOCKET err");
    }
}
