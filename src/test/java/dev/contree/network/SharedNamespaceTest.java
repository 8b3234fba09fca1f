package dev.contree.network;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Networking off (the default) refuses a networked request with a 4xx that says how to turn it on; the deprecated
 * {@code --network-namespace} still works as before on runc (the sandbox joins the operator's namespace), and runsc,
 * whose netstack would take a shared namespace's interfaces over, is refused it with a message that points to
 * {@code --network on} (before, Debian's runsc failed on gVisor #10704; a newer one would have taken them).
 */
class SharedNamespaceTest {

    static String body(String image, boolean networked, String command) {
        return "{\"image\":\"" + image + "\",\"command\":" + NetworkingTestBase.quote(command) + ",\"shell\":true,\"disposable\":true,"
                + "\"timeout\":20,\"networking\":{\"enabled\":" + networked + "}}";
    }

    @Test
    void networkingOffRefusesANetworkedRequestSayingHowToTurnItOn() throws Exception {
        try (TestServer s = TestServer.inTempDir("net-off", c -> c.withRuntime("runc", "ptrace"))) {
            String image = s.importBusybox(null);
            TestServer.Reply r = s.json(s.tokenA, "POST", "/v1/instances", body(image, true, "true"));
            assertThat(r.status()).isEqualTo(403);
            assertThat(r.json().get("error").asText()).contains("networking is disabled").contains("--network on");
        }
    }

    @Test
    void theDeprecatedSharedNamespaceStillWorksOnRuncAndRunscRefusesIt() throws Exception {
        // The operator's namespace: held by a process of ours, with a veth pair and a listener on the host end.
        try (RemoteHost operatorNs = RemoteHost.start(47, 0)) {
            Path ns = Path.of("/proc/" + holderPid(operatorNs) + "/ns/net");
            try (TestServer s = TestServer.inTempDir("net-shared", c -> c.withRuntime("runc", "ptrace").withNetwork(ns))) {
                String image = s.importBusybox(null);
                // Inside the operator's namespace the "remote" addresses are the sandbox's own: its HTTP server is local.
                JsonNode done = s.await(s.tokenA, s.start(s.tokenA, "/v1/instances",
                        body(image, true, "ip -4 -o addr; timeout 5 wget -q -O - http://" + operatorNs.allowed + ":8000/hello.txt")),
                        Duration.ofSeconds(60));
                String out = NetworkingTestBase.stdout(done);
                assertThat(out).contains(operatorNs.allowed).contains(RemoteHost.MARKER);
                String op = s.start(s.tokenA, "/v1/instances", body(image, true, "true"));
                s.await(s.tokenA, op, Duration.ofSeconds(60));
                JsonNode spawn = NetworkingTestBase.eventsOf(s, op).stream().filter(e -> e.get("type").asText().equals("spawn")).findFirst().orElseThrow();
                assertThat(spawn.get("data").get("network").asText()).isEqualTo("namespace");
            }
            try (TestServer s = TestServer.inTempDir("net-shared-runsc", c -> c.withRuntime("runsc", "ptrace").withNetwork(ns))) {
                String image = s.importBusybox(null);
                JsonNode done = s.await(s.tokenA, s.start(s.tokenA, "/v1/instances", body(image, true, "true")), Duration.ofSeconds(120));
                assertThat(done.get("status").asText()).isEqualTo("FAILED");
                assertThat(done.get("error").asText()).contains("runsc cannot join a namespace other sandboxes share").contains("--network on");
            }
        }
    }

    private static long holderPid(RemoteHost h) {
        return h.serverPid();
    }
}
