package dev.contree.sandbox;

import dev.contree.cancel.CancelToken;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The vm runtime's execution contract on a real QEMU microVM (TCG here: each test boots a guest in 2-5 s, so
 * tests combine checks to keep the boots few). Opt-in: {@link VmTests#enabled()}.
 */
class VmSandboxRuntimeTest {
    static Path stateDir;
    static VmSandboxRuntime vm;

    @TempDir Path tmp;

    @BeforeAll
    static void setUp() throws IOException {
        VmTests.assumeEnabled();
        stateDir = Files.createTempDirectory("contree-vm-state");
        vm = VmTests.runtime(stateDir, 256L << 20);
    }

    @AfterAll
    static void tearDown() throws IOException {
        if (vm != null) vm.cleanupStale();
        VmTests.deleteTree(stateDir);
    }

    SandboxSpec.Builder sh(String script) throws IOException {
        return SandboxSpec.shell("vm" + SandboxRuntimeTest.SEQ.incrementAndGet(), SandboxRuntimeTest.busyboxRootfs(tmp), script)
                .timeout(Duration.ofSeconds(30));
    }

    @Test
    void echoExitCodeStderrAndTheGuestKernel() throws IOException {
        SandboxResult r = vm.run(sh("echo out; echo err >&2; uname -r; hostname; id -u; echo $FOO; pwd; exit 3")
                .env("FOO", "bar").hostname("box").cwd("/work/here").user(1000, 1000).build());
        assertThat(r.infraError()).isNull();
        assertThat(r.exitCode()).isEqualTo(3);
        assertThat(r.stderrText()).isEqualTo("err\n");
        String[] lines = r.stdoutText().split("\n");
        assertThat(lines[0]).isEqualTo("out");
        assertThat(lines[1]).as("the guest's kernel, not the host's").startsWith("6.1.").isNotEqualTo(System.getProperty("os.version"));
        assertThat(lines[2]).isEqualTo("box");
        assertThat(lines[3]).isEqualTo("1000");
        assertThat(lines[4]).isEqualTo("bar");
        assertThat(lines[5]).isEqualTo("/work/here");
        assertThat(r.usage().elapsedSeconds()).isPositive();
        assertThat(r.usage().minorFaults()).as("the guest's wait4 rusage").isPositive();
        VmTests.assertNothingLeft(vm);
    }
}
