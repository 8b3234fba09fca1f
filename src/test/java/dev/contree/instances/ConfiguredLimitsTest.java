package dev.contree.instances;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import dev.contree.server.ServerConfig;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.assertj.core.api.Assertions.assertThat;

/** The operator's sandbox limits (serve --sandbox-memory/--sandbox-pids/--sandbox-cpus) reach every sandbox. */
class ConfiguredLimitsTest {
    @AutoClose static TestServer s;
    static String image;

    @BeforeAll
    static void setUp() throws Exception {
        s = TestServer.inTempDir("limits", c -> c.withRuntime("runc", "ptrace").withExecutions(3, 120)
                .withSandboxLimits(new ServerConfig.SandboxLimits(48L << 20, 24, 0.5)));
        image = s.importBusybox(null);
    }

    private JsonNode sh(String script) {
        String body = "{\"image\":\"" + image + "\",\"command\":\"" + script.replace("\"", "\\\"") + "\",\"shell\":true,\"disposable\":true,\"timeout\":60}";
        JsonNode op = s.await(s.tokenA, s.start(s.tokenA, "/v1/instances", body), Duration.ofSeconds(90));
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        return op.get("metadata").get("result");
    }

    @Test
    void whoamiReportsTheConfiguredLimits() {
        JsonNode limits = s.get(s.tokenA, "/v1/whoami").json().get("limits");
        assertThat(limits.get("instance_max_concurrency").asInt()).isEqualTo(3);
        assertThat(limits.get("instance_max_timeout").asInt()).isEqualTo(120);
        assertThat(limits.get("instance_memory_bytes").asLong()).isEqualTo(48L << 20);
        assertThat(limits.get("instance_pids").asLong()).isEqualTo(24);
        assertThat(limits.get("instance_cpu_millis").asLong()).isEqualTo(500);
        String tooLong = "{\"image\":\"" + image + "\",\"command\":\"true\",\"timeout\":121}";
        assertThat(s.json(s.tokenA, "POST", "/v1/instances", tooLong).status()).isEqualTo(400);
    }

    @Test
    void aSandboxCannotStartMoreProcessesThanConfigured() {
        JsonNode few = sh("i=0; while [ $i -lt 8 ]; do sleep 1 & i=$((i+1)); done; echo started; wait");
        assertThat(few.get("stdout").get("value").asText()).contains("started");
        JsonNode many = sh("i=0; while [ $i -lt 40 ]; do sleep 2 & i=$((i+1)); done; echo started; wait");
        assertThat(many.get("stdout").get("value").asText()).doesNotContain("started"); // the shell dies on a failed fork
        assertThat(many.get("stderr").get("value").asText()).containsIgnoringCase("fork");
    }

    @Test
    void aSandboxCannotUseMoreMemoryThanConfigured() {
        JsonNode small = sh("dd if=/dev/zero of=/dev/null bs=8M count=1 && echo small-ok");
        assertThat(small.get("stdout").get("value").asText()).contains("small-ok");
        JsonNode big = sh("dd if=/dev/zero of=/dev/null bs=96M count=1; echo rc=$?");
        assertThat(big.get("stdout").get("value").asText()).doesNotContain("rc=0");
    }
}
