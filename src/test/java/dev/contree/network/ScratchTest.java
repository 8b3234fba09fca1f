package dev.contree.network;

import dev.contree.TestServer;
import org.junit.jupiter.api.Test;
import java.time.Duration;
import java.util.List;

class ScratchTest {
    @Test
    void scratch() throws Exception {
        String cmd = System.getProperty("scratch.cmd", "true");
        boolean net = Boolean.parseBoolean(System.getProperty("scratch.net", "true"));
        try (TestServer s = TestServer.inTempDir("scratch", c -> c.withRuntime(System.getProperty("scratch.rt", "runc"), "ptrace")
                .withNetwork(NetworkSettings.on(List.of("10.231.0.0/16"), List.of(), List.of())))) {
            String image = s.importBusybox(null);
            String body = "{\"image\":\"" + image + "\",\"command\":" + NetworkingTestBase.quote(cmd) + ",\"shell\":true,\"disposable\":true,\"timeout\":30,\"networking\":{\"enabled\":" + net + "}}";
            System.out.println("RESULT " + s.await(s.tokenA, s.start(s.tokenA, "/v1/instances", body), Duration.ofSeconds(120)).toPrettyString());
        }
    }
}
