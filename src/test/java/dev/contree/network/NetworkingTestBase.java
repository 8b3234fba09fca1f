package dev.contree.network;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code networking.enabled} with an operator-prepared network namespace: a veth pair into a fresh
 * netns, a TCP listener on the host end. Only executions that ask for networking reach it.
 *
 * <p>runsc releases from before gVisor's fix for issue #10704 (July 2024; Debian 12 ships 20221219)
 * refuse every networked sandbox on current kernels ("cannot run with network enabled in root network
 * namespace"): with such a runsc the networked run must FAIL with that reason and the hint, and the
 * test is then reported as skipped, since the networking itself went untested.
 */
abstract class NetworkingTestBase {
    static TestServer s;
    static String image;
    static String netns;
    static String hostIf;
    static String hostIp;
    static ServerSocket listener;
    static final AtomicInteger connections = new AtomicInteger();

    static void start(String runtime, int subnet) throws Exception {
        netns = "contree-test-" + runtime;
        hostIf = "ctv" + subnet + "h";
        String sandboxIf = "ctv" + subnet + "s";
        hostIp = "10.231." + subnet + ".1";
        cleanupNetwork();
        sh("ip", "netns", "add", netns);
        sh("ip", "link", "add", hostIf, "type", "veth", "peer", "name", sandboxIf);
        sh("ip", "link", "set", sandboxIf, "netns", netns);
        sh("ip", "addr", "add", hostIp + "/24", "dev", hostIf);
        sh("ip", "link", "set", hostIf, "up");
        sh("ip", "netns", "exec", netns, "ip", "addr", "add", "10.231." + subnet + ".2/24", "dev", sandboxIf);
        sh("ip", "netns", "exec", netns, "ip", "link", "set", sandboxIf, "up");
        sh("ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up");

        listener = new ServerSocket(0, 50, InetAddress.getByName(hostIp));
        Thread.ofVirtual().start(() -> {
            while (!listener.isClosed()) {
                try (Socket c = listener.accept(); OutputStream out = c.getOutputStream()) {
                    connections.incrementAndGet();
                    out.write("pong\n".getBytes(StandardCharsets.US_ASCII));
                } catch (IOException e) {
                    return;
                }
            }
        });

        s = TestServer.inTempDir("net-" + runtime, c -> c.withRuntime(runtime, "ptrace").withNetwork(Path.of("/var/run/netns", netns)));
        image = s.importBusybox(null);
    }

    @AfterAll
    static void stop() throws Exception {
        if (listener != null) listener.close();
        if (s != null) s.close();
        cleanupNetwork();
    }

    static void cleanupNetwork() throws Exception {
        run(List.of("ip", "link", "del", hostIf));
        run(List.of("ip", "netns", "del", netns));
    }

    static void sh(String... cmd) throws Exception {
        int rc = run(List.of(cmd));
        if (rc != 0) throw new IOException(String.join(" ", cmd) + " failed with " + rc);
    }

    static int run(List<String> cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try (InputStream in = p.getInputStream()) {
            in.readAllBytes();
        }
        return p.waitFor();
    }

    JsonNode exec(boolean networking) {
        String script = "echo hi | nc -w 3 " + hostIp + " " + listener.getLocalPort() + "; echo rc=$?";
        String body = "{\"image\":\"" + image + "\",\"command\":" + quote(script) + ",\"shell\":true,\"disposable\":true,"
                + "\"timeout\":20,\"networking\":{\"enabled\":" + networking + "}}";
        return s.await(s.tokenA, s.start(s.tokenA, "/v1/instances", body), Duration.ofSeconds(60));
    }

    static String quote(String v) {
        return "\"" + v.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    static String stdout(JsonNode op) {
        return op.get("metadata").get("result").get("stdout").get("value").asText();
    }

    @Test
    void onlyExecutionsThatAskForNetworkingReachTheNetwork() {
        int before = connections.get();
        JsonNode isolated = exec(false);
        assertThat(isolated.get("status").asText()).isEqualTo("SUCCESS");
        assertThat(stdout(isolated)).doesNotContain("pong").doesNotContain("rc=0");
        assertThat(connections.get()).isEqualTo(before);

        JsonNode connected = exec(true);
        if (connected.get("status").asText().equals("FAILED")
                && connected.get("error").asText().contains("cannot run with network enabled in root network namespace")) {
            assertThat(connected.get("error").asText()).contains("networking needs a newer runsc");
            assertThat(connections.get()).isEqualTo(before);
            org.junit.jupiter.api.Assumptions.abort("this runsc predates gVisor's fix for issue #10704: networking untested");
        }
        assertThat(connected.get("status").asText()).as(connected.toString()).isEqualTo("SUCCESS");
        assertThat(stdout(connected)).contains("pong");
        assertThat(connections.get()).isEqualTo(before + 1);
    }
}
