package dev.contree.sandbox;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The seccomp filter's ABIs under runc: by default a 32-bit system call (the i386 ABI through {@code int 0x80})
 * kills the process with SIGSYS; with {@link RuntimeConfig#withCompat32} it is served. Needs root, runc, gcc and
 * /bin/busybox; skipped where the host kernel itself has no i386 emulation.
 */
class Compat32SyscallTest {
    /** i386 getpid (20) through the compat entry, then the native getpid: equal when the 32-bit call is served. */
    private static final String PROGRAM = """
            #include <stdio.h>
            #include <unistd.h>
            int main(void) {
                long r;
                __asm__ volatile ("int $0x80" : "=a"(r) : "a"(20L) : "memory");
                printf("int80 %ld native %ld\\n", r, (long)getpid());
                return 0;
            }
            """;
    private static Path work, binary;

    @TempDir Path tmp;

    @BeforeAll
    static void build() throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/bin/busybox")), "busybox-static missing");
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "needs root");
        work = Files.createTempDirectory("contree-compat32");
        Path src = Files.writeString(work.resolve("c32.c"), PROGRAM);
        binary = work.resolve("c32");
        Process gcc = new ProcessBuilder("gcc", "-static", "-O2", "-o", binary.toString(), src.toString()).redirectErrorStream(true).start();
        String out = new String(gcc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(gcc.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(gcc.exitValue()).as(out).isZero();
        Process host = new ProcessBuilder(binary.toString()).start();
        String hostOut = new String(host.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        host.waitFor(10, TimeUnit.SECONDS);
        Assumptions.assumeTrue(host.exitValue() == 0 && served(hostOut), "the host kernel serves no i386 system calls: " + hostOut);
    }

    @AfterAll
    static void clean() throws IOException {
        if (work == null) return;
        try (Stream<Path> s = Files.walk(work)) {
            s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    private static boolean served(String out) {
        String[] f = out.trim().split(" ");
        return f.length == 4 && f[0].equals("int80") && f[1].equals(f[3]);
    }

    private SandboxResult runIn(RuntimeConfig cfg) throws IOException {
        SandboxRuntime rt = SandboxRuntimes.create(cfg);
        Path rootfs = SandboxRuntimeTest.busyboxRootfs(tmp);
        Files.copy(binary, rootfs.resolve("bin/c32"));
        SandboxResult r = rt.run(SandboxSpec.builder("c32-" + System.nanoTime(), rootfs, List.of("/bin/c32"))
                .timeout(Duration.ofSeconds(30)).build());
        assertThat(r.infraError()).as("infra error").isNull();
        return r;
    }

    private RuntimeConfig runc() throws IOException {
        return new RuntimeConfig(RuntimeConfig.Kind.RUNC, null, "ptrace", Files.createDirectories(work.resolve("state")), 256L << 20, 64, 1.0,
                1 << 20, Duration.ofSeconds(10), "contree-test-compat32", null, false);
    }

    @Test
    void aThirtyTwoBitSystemCallKillsTheProcessByDefault() throws IOException {
        SandboxResult r = runIn(runc());
        assertThat(r.signal()).as("stdout %s", r.stdoutText()).isEqualTo(31); // SIGSYS: seccomp's verdict for a foreign ABI
        assertThat(r.stdoutText()).doesNotContain("int80");
    }

    @Test
    void theCompatSettingServesThem() throws IOException {
        SandboxResult r = runIn(runc().withCompat32(true));
        assertThat(r.exitCode()).as("stderr %s", r.stderrText()).isZero();
        assertThat(served(r.stdoutText())).as(r.stdoutText()).isTrue();
    }
}
