package dev.contree.linux;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Children started with posix_spawn whose pipes and exit are served by the poller. */
class SpawnedProcessTest {
    static final Path CWD = Path.of("/");

    static SpawnedProcess sh(String script) throws IOException {
        return SpawnedProcess.start(List.of("sh", "-c", script), CWD, SpawnedProcess.Stderr.PIPE);
    }

    @Test
    void stdoutStderrExitCodeAndWorkingDirectory() throws Exception {
        Path dir = Files.createTempDirectory("spawn");
        SpawnedProcess p = SpawnedProcess.start(List.of("sh", "-c", "pwd; echo err >&2; exit 7"), dir, SpawnedProcess.Stderr.PIPE);
        p.getOutputStream().close();
        assertThat(new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8)).isEqualTo(dir.toRealPath() + "\n");
        assertThat(new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8)).isEqualTo("err\n");
        assertThat(p.waitFor()).isEqualTo(7);
        assertThat(p.isAlive()).isFalse();
        assertThat(p.exitValue()).isEqualTo(7);
        Files.delete(dir);
    }

    @Test
    void stdinLargerThanAPipeRoundTrips() throws Exception {
        SpawnedProcess p = sh("cat");
        byte[] data = new byte[3 << 20];
        for (int i = 0; i < data.length; i++) data[i] = (byte) (i * 31);
        Thread writer = Thread.ofVirtual().start(() -> {
            try (OutputStream os = p.getOutputStream()) {
                os.write(data);
            } catch (IOException e) {
                throw new AssertionError(e);
            }
        });
        assertThat(p.getInputStream().readAllBytes()).isEqualTo(data);
        writer.join();
        assertThat(p.waitFor()).isZero();
    }

    @Test
    void mergedAndDiscardedStderr() throws Exception {
        SpawnedProcess merged = SpawnedProcess.start(List.of("sh", "-c", "echo a; echo b >&2"), CWD, SpawnedProcess.Stderr.TO_STDOUT);
        assertThat(new String(merged.getInputStream().readAllBytes(), StandardCharsets.UTF_8)).isEqualTo("a\nb\n");
        SpawnedProcess discarded = SpawnedProcess.start(List.of("sh", "-c", "echo a; echo b >&2"), CWD, SpawnedProcess.Stderr.DISCARD);
        assertThat(new String(discarded.getInputStream().readAllBytes(), StandardCharsets.UTF_8)).isEqualTo("a\n");
        assertThat(discarded.getErrorStream().read()).isEqualTo(-1);
        assertThat(merged.waitFor() + discarded.waitFor()).isZero();
    }

    @Test
    void killedChildReportsSignalAsTheJdkDoes() throws Exception {
        SpawnedProcess p = sh("sleep 60");
        assertThat(p.waitFor(200, TimeUnit.MILLISECONDS)).isFalse();
        assertThatThrownBy(p::exitValue).isInstanceOf(IllegalThreadStateException.class);
        p.destroyForcibly();
        assertThat(p.waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).isEqualTo(128 + 9);
        p.destroyForcibly(); // after the reap: a no-op, never a signal to a recycled pid
        SpawnedProcess t = sh("sleep 60");
        t.destroy();
        assertThat(t.waitFor()).isEqualTo(128 + 15);
    }

    @Test
    void aMissingProgramFailsLikeProcessBuilder() {
        assertThatThrownBy(() -> SpawnedProcess.start(List.of("/no/such/program"), CWD, SpawnedProcess.Stderr.PIPE))
                .isInstanceOf(IOException.class).hasMessageContaining("Cannot run program \"/no/such/program\"")
                .hasMessageContaining("error=2");
    }

    /** Only 0, 1 and 2 reach the child, whatever the parent has open. */
    @Test
    void noOtherDescriptorLeaksIntoTheChild() throws Exception {
        int leaky = Linux.open(Path.of("/dev/null"), Linux.O_RDONLY, 0);
        try {
            SpawnedProcess p = sh("ls /proc/self/fd");
            String fds = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            p.waitFor();
            // ls itself opens one for the directory it lists
            assertThat(fds.lines().filter(l -> !l.isBlank()).count()).isLessThanOrEqualTo(4);
            assertThat(fds.lines().toList()).contains("0", "1", "2");
        } finally {
            Linux.close(leaky);
        }
    }

    /** Closing a stream another thread is parked on wakes it with an error; the descriptor is released. */
    @Test
    void closeWakesAParkedReader() throws Exception {
        SpawnedProcess p = sh("sleep 60");
        AtomicReference<Throwable> got = new AtomicReference<>();
        InputStream in = p.getInputStream();
        Thread reader = Thread.ofVirtual().start(() -> {
            try {
                in.read();
            } catch (IOException e) {
                got.set(e);
            }
        });
        Thread.sleep(200);
        assertThat(reader.isAlive()).isTrue();
        in.close();
        reader.join(5000);
        assertThat(reader.isAlive()).isFalse();
        assertThat(got.get()).hasMessageContaining("closed");
        p.destroyForcibly();
        p.waitFor();
    }

    /** Many children each with a parked reader and a parked waiter hold no carrier: other virtual threads run. */
    @Test
    void parkedReadersDoNotPinCarriers() throws Exception {
        int n = 300;
        List<SpawnedProcess> ps = new ArrayList<>();
        List<Thread> readers = new ArrayList<>();
        try {
            for (int i = 0; i < n; i++) {
                SpawnedProcess p = sh("read x; echo $x");
                ps.add(p);
                readers.add(Thread.ofVirtual().start(() -> {
                    try { p.getInputStream().readAllBytes(); p.getErrorStream().readAllBytes(); p.waitFor(); }
                    catch (IOException | InterruptedException e) { throw new AssertionError(e); }
                }));
            }
            Thread.sleep(500);
            long t0 = System.nanoTime();
            Thread.ofVirtual().start(() -> { }).join(2000);
            assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0)).isLessThan(1000);
            int carriers = (int) ManagementFactory.getThreadMXBean().getThreadCount();
            assertThat(carriers).as("platform threads").isLessThan(100);
            for (SpawnedProcess p : ps) {
                try (OutputStream os = p.getOutputStream()) { os.write("hi\n".getBytes()); }
            }
            for (Thread r : readers) r.join(20_000);
            for (SpawnedProcess p : ps) assertThat(p.waitFor()).isZero();
        } finally {
            ps.forEach(Process::destroyForcibly);
        }
    }
}
