package dev.contree.network;

import dev.contree.Main;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** {@code serve --network …}: what a bad combination or entry answers, before anything starts. */
class NetworkOptionsTest {
    /** Runs {@code serve args} and returns its exit code and error output (only ever for refused arguments here). */
    static String refused(String... args) {
        List<String> all = new ArrayList<>(List.of("serve", "--data", "/nonexistent/contree-network-options", "--listen", "127.0.0.1:1"));
        all.addAll(List.of(args));
        // serve reports a refused option through picocli on the process's stderr
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        java.io.PrintStream old = System.err;
        int rc;
        System.setErr(new java.io.PrintStream(err, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            rc = new CommandLine(new Main()).execute(all.toArray(String[]::new));
        } finally {
            System.setErr(old);
        }
        String text = err.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertThat(rc).as(text).isEqualTo(2);
        return text;
    }

    @Test
    void badNetworkOptionsAreRefusedNamingWhatIsWrong() {
        assertThat(refused("--network", "maybe")).contains("--network must be on or off");
        assertThat(refused("--network-allow", "10.0.0.0/8")).contains("need --network on");
        assertThat(refused("--network", "on", "--network-namespace", "/proc/1/ns/net")).contains("exclude each other");
        assertThat(refused("--network", "on", "--network-allow", "10.0.0.1/8")).contains("host bits").contains("10.0.0.0/8");
        assertThat(refused("--network", "on", "--network-allow", "fd00::/8")).contains("IPv6");
        assertThat(refused("--network", "on", "--network-deny", "example.com")).contains("--network-deny").contains("example.com");
        assertThat(refused("--network", "on", "--network-dns", "10.0.0.0/24")).contains("one IPv4 address");
        assertThat(refused("--network", "on", "--network-allow", "no-such-host.invalid")).contains("does not resolve");
    }
}
