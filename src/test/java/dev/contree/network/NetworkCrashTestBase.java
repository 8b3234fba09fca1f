package dev.contree.network;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.TestDirs;
import dev.contree.TestImages;
import dev.contree.TestServerProcess;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * kill -9 of a server with networked sandboxes running, then a restart on the same data dir: no uplink process or
 * uplink cgroup, no namespace, no interface and no second firewall table is left, the interrupted run FAILED, a finished run keeps its
 * network counts, and networking works again.
 */
abstract class NetworkCrashTestBase {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String TOKEN = "network-crash-token";
    final HttpClient http = HttpClient.newHttpClient();
    Path dir;
    RemoteHost remote;

    abstract String runtime();

    abstract int subnet();

    @BeforeEach
    void setUp() throws Exception {
        dir = Files.createTempDirectory("net-crash-" + runtime());
        remote = RemoteHost.start(subnet(), 0);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (remote != null) remote.close();
        TestDirs.removeWithMounts(dir);
    }

    static JsonNode call(TestServerProcess s, String method, String path, byte[] body) throws Exception {
        return s.call(method, path, body);
    }

    static JsonNode await(TestServerProcess s, String op) throws Exception {
        return s.await(op, Duration.ofSeconds(120));
    }

    String run(TestServerProcess s, String image, String script) throws Exception {
        String body = "{\"image\":\"" + image + "\",\"command\":" + NetworkingTestBase.quote(script)
                + ",\"shell\":true,\"disposable\":true,\"timeout\":300,\"networking\":{\"enabled\":true}}";
        return call(s, "POST", "/v1/instances", body.getBytes()).get("uuid").asText();
    }

    static boolean bothExecuting(TestServerProcess s, String a, String b) throws Exception {
        return call(s, "GET", "/v1/operations/" + a, null).get("status").asText().equals("EXECUTING")
                && call(s, "GET", "/v1/operations/" + b, null).get("status").asText().equals("EXECUTING");
    }

    static String describe(TestServerProcess s, String op) {
        try {
            JsonNode o = call(s, "GET", "/v1/operations/" + op, null);
            return op + " " + o.get("status").asText() + (o.hasNonNull("error") ? " (" + o.get("error").asText() + ")" : "");
        } catch (Exception e) {
            return op + " unreadable: " + e;
        }
    }

    static String logTail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (java.io.IOException e) {
            return "(no log: " + e + ")";
        }
    }

    @Test
    void killDashNineWithNetworkedSandboxesRunningLeavesNothingAfterTheRestart() throws Exception {
        Path data = dir.resolve("data");
        Path log = dir.resolve("server.log");
        List<String> policy = List.of("--network", "on", "--network-allow", "10.231." + subnet() + ".0/24", "--network-deny", remote.denied + "/32",
                "--network-dns", remote.allowed);
        String get = "timeout 20 wget -q -O - " + remote.url(remote.allowed, "hello.txt");
        String image, finished, interrupted;
        String clean;
        try (TestServerProcess s = new TestServerProcess(data, TOKEN, runtime(), policy, log)) {
            clean = NetworkingTestBase.hostState(data);
            assertThat(clean).contains("uplink processes: []").contains("contree nft tables: 1");
            String file = call(s, "POST", "/v1/files", TestImages.busyboxRootfs()).get("uuid").asText();
            String imp = call(s, "POST", "/v1/images/import", ("{\"registry\":{\"url\":\"rootfs+file://" + file + "\"}}").getBytes()).get("uuid").asText();
            image = await(s, imp).get("result").get("image").asText();
            finished = run(s, image, get);
            assertThat(await(s, finished).get("metadata").get("result").get("stdout").get("value").asText()).contains(RemoteHost.MARKER);
            interrupted = run(s, image, "echo up; " + get + "; sleep 200");
            String second = run(s, image, "sleep 200");
            // Both start within seconds on an idle host; a loaded CI host gets two minutes before the test gives up.
            for (int i = 0; i < 1200 && !(bothExecuting(s, interrupted, second) && NetworkingTestBase.uplinkProcesses(data).size() >= 4); i++)
                Thread.sleep(100);
            assertThat(NetworkingTestBase.uplinkProcesses(data)).as(() -> "two running sandboxes' holders and uplinks; "
                    + describe(s, interrupted) + "; " + describe(s, second) + "; server log:\n" + logTail(log)).hasSize(4);
            assertThat(bothExecuting(s, interrupted, second)).as(() -> describe(s, interrupted) + "; " + describe(s, second)).isTrue();
            s.crash();
        }
        // The uplinks end by themselves when the server's ends of their pipes close...
        for (int i = 0; i < 100 && !NetworkingTestBase.uplinkProcesses(data).isEmpty(); i++) Thread.sleep(100);
        assertThat(NetworkingTestBase.uplinkProcesses(data)).as("uplinks of a dead server").isEmpty();
        // Their cgroups stay (nothing removes an empty cgroup by itself) until the next start.
        assertThat(NetworkingTestBase.uplinkCgroups(data, NetworkingTestBase.PARENT)).as("the dead server's uplink cgroups").isNotEmpty();
        // ...and one that did not (a stuck helper, here a stand-in with an uplink uid) is killed at the next start.
        int stuckUid = UidBlock.claimedBy(data).first() + 7;
        Process stuck = new ProcessBuilder("setpriv", "--reuid=" + stuckUid, "--regid=" + stuckUid, "--clear-groups", "sleep", "300").start();
        try (TestServerProcess s = new TestServerProcess(data, TOKEN, runtime(), policy, log)) {
            assertThat(stuck.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)).as("the stuck helper was killed").isTrue();
            assertThat(Files.readString(log)).contains("removed 1 uplink process(es) left by a previous run")
                    .contains("removed the cgroups of").contains("uplink(s) left by a previous run");
            assertThat(NetworkingTestBase.hostState(data)).isEqualTo(clean);
            JsonNode op = call(s, "GET", "/v1/operations/" + interrupted, null);
            assertThat(op.get("status").asText()).isEqualTo("FAILED");
            assertThat(op.get("error").asText()).contains("restarted");
            JsonNode resources = call(s, "GET", "/v1/operations/" + finished, null).get("metadata").get("result").get("resources");
            assertThat(resources.get("network_bytes_received").asLong()).as("kept across the restart").isGreaterThan(200);
            String again = run(s, image, get);
            assertThat(await(s, again).get("metadata").get("result").get("stdout").get("value").asText()).contains(RemoteHost.MARKER);
        }
        // A clean stop removes the table too.
        assertThat(NetworkingTestBase.command("nft", "list", "tables")).doesNotContain(Firewall.tableName(UidBlock.claimedBy(data)) + "\n");
        assertThat(NetworkingTestBase.uplinkProcesses(data)).isEmpty();
    }
}
