package dev.contree.instances;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import dev.contree.operations.HostCapacity;
import dev.contree.server.ServerConfig;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Memory admission on a real runc server against the host's real MemAvailable. The operator's reserve is set so that
 * about 2.5 sandboxes' worth of memory is left to admit into, and each sandbox really holds that much (a {@code dd}
 * buffer blocked on a pipe nobody reads): two start (a third only if other work on the host freed memory meanwhile),
 * the others wait while those hold their memory, and one more starts when one of them ends.
 */
class MemoryAdmissionTest {
    /** Large beside what other work on a shared test host moves MemAvailable by while this test runs. */
    static final long HOG = 2L << 30;
    TestServer s;
    Path dir;

    @org.junit.jupiter.api.AfterEach
    void cleanUp() throws Exception {
        if (s != null) s.close();
        if (dir != null) dev.contree.TestDirs.removeWithMounts(dir);
    }

    static long fds() throws IOException {
        try (Stream<Path> open = Files.list(Path.of("/proc/self/fd"))) {
            return open.count();
        }
    }

    private List<String> withStatus(List<String> ops, String status) {
        List<String> out = new ArrayList<>();
        for (String op : ops) if (s.get(s.tokenA, "/v1/operations/" + op).json().get("status").asText().equals(status)) out.add(op);
        return out;
    }

    private List<String> awaitExecuting(List<String> ops, int n) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (true) {
            List<String> running = withStatus(ops, "EXECUTING");
            if (running.size() >= n) return running;
            assertThat(System.nanoTime()).as(n + " executing, have " + running).isLessThan(deadline);
            Thread.sleep(100);
        }
    }

    private void report(String phase) {
        HostCapacity.Reading r = new HostCapacity("contree").read();
        System.out.printf("MemoryAdmissionTest %s: MemAvailable %d MiB, heap headroom %d MiB, sandboxes' cgroups %d MiB%n", phase,
                r.memAvailableBytes() >> 20, r.heapHeadroomBytes() >> 20, r.sandboxBytes() >> 20);
    }

    private int effectiveLimit() {
        return s.get(s.tokenA, "/v1/whoami").json().get("limits").get("instance_max_concurrency").asInt();
    }

    @Test
    void admissionStopsAtTheMemoryBoundAndResumesAsSandboxesEnd() throws Exception {
        // A first server imports the image; the measured one starts on the same data dir, so what starting and
        // importing cost the process is already spent when the reserve is taken.
        dir = Files.createTempDirectory("memadmit");
        String image;
        try (TestServer first = new TestServer(dir.resolve("data"), c -> c.withRuntime("runc", "ptrace"))) {
            image = first.importBusybox(null);
        }
        HostCapacity.Reading now = new HostCapacity("contree").read();
        // The same sum the policy takes: what is available, minus the heap this JVM may still take, minus the reserve.
        long reserve = now.memAvailableBytes() - now.heapHeadroomBytes() - (HOG * 5 / 2);
        assertThat(reserve).as("the host has room for this test").isPositive();
        s = new TestServer(dir.resolve("data"), c -> c.withRuntime("runc", "ptrace").withExecutions(6, 900)
                .withSandboxLimits(new ServerConfig.SandboxLimits(HOG + (512L << 20), 512, 1.0))
                .withAdmission(reserve, HOG)
                .withAccountConcurrency(6)); // the test's two tenants: no share kept back, memory alone decides
        assertThat(effectiveLimit()).as("the host admits fewer than --concurrency 6").isBetween(1, 5);

        long fdsBefore = fds();
        List<String> ops = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            ops.add(s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + image + "\",\"command\":\"dd if=/dev/zero bs=" + (HOG >> 20)
                    + "M count=1 | sleep 600\",\"shell\":true,\"disposable\":true,\"timeout\":900}"));
        }
        List<String> first = awaitExecuting(ops, 2);
        report("two admitted");
        System.out.printf("MemoryAdmissionTest: %d descriptors in the server for %d running sandboxes%n", fds() - fdsBefore, first.size());
        // Past the settle time their real cost shows in MemAvailable, and that keeps the rest waiting. The bound is the
        // host's real memory, which other work on a shared test host moves too: 2 fit by construction, a third only if
        // something else freed a sandbox's worth meanwhile; never all five that --concurrency 6 would allow.
        Thread.sleep(7_000);
        report("held");
        List<String> held = withStatus(ops, "EXECUTING");
        assertThat(held).as("admission stops at the memory bound").hasSizeBetween(2, 3);
        assertThat(withStatus(ops, "PENDING")).hasSize(5 - held.size());
        assertThat(effectiveLimit()).as("whoami: what could run now, below --concurrency").isBetween(1, 5);

        // One ends: its memory frees and one waiting run starts.
        String ended = held.get(0);
        assertThat(s.delete(s.tokenA, "/v1/operations/" + ended).status()).isEqualTo(202);
        s.await(s.tokenA, ended, Duration.ofSeconds(60));
        report("one ended");
        List<String> rest = new ArrayList<>(ops);
        rest.remove(ended);
        awaitExecuting(rest, held.size());
        report("resumed");
        for (String op : ops) s.delete(s.tokenA, "/v1/operations/" + op);
    }
}
