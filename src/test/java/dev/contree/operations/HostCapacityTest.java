package dev.contree.operations;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** What the host reports, checked against the same kernel files read by another program. */
class HostCapacityTest {
    static long cat(String path) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("cat", path).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).strip();
        assertThat(p.waitFor()).isZero();
        return Long.parseLong(out);
    }

    @Test
    void readsTheKernelsFigures() throws Exception {
        HostCapacity.Reading r = new HostCapacity("contree").read();
        assertThat(r.taskLimit()).isEqualTo(Math.min(cat("/proc/sys/kernel/pid_max"), cat("/proc/sys/kernel/threads-max")));
        assertThat(r.tasks()).isBetween(10L, r.taskLimit());
        assertThat(r.memAvailableBytes()).isBetween(64L << 20, HostCapacity.memTotalBytes());
        assertThat(r.heapHeadroomBytes()).isBetween(0L, Runtime.getRuntime().maxMemory());
    }

    /**
     * cgroup v1 moves a removed child's page cache to its parent: 512 MiB written by a "sandbox" that has ended must
     * not make the next sandbox look 512 MiB expensive (that held a second run back for minutes in CI).
     */
    @Test
    void pageCacheLeftByEndedSandboxesIsNotSandboxMemory() throws Exception {
        Path parent = Path.of("/sys/fs/cgroup/memory/contree-test-capacity");
        Path child = parent.resolve("writer");
        Path file = Files.createTempFile(Path.of("/var/tmp"), "capacity", ".bin");
        try {
            Files.createDirectories(child);
            Process p = new ProcessBuilder("sh", "-c", "echo $$ > " + child.resolve("cgroup.procs")
                    + " && dd if=/dev/zero of=" + file + " bs=1M count=512 status=none").start();
            assertThat(p.waitFor()).isZero();
            Files.delete(child);
            long usage = cat(parent.resolve("memory.usage_in_bytes").toString());
            assertThat(usage).as("the cache stays charged to the parent").isGreaterThan(400L << 20);
            assertThat(new HostCapacity("contree-test-capacity").read().sandboxBytes()).isBetween(0L, 32L << 20);
        } finally {
            Files.deleteIfExists(file);
            if (Files.isDirectory(child)) Files.delete(child);
            if (Files.isDirectory(parent)) Files.delete(parent);
        }
    }

    @Test
    void theOpenFileLimitEndsAtTheHardLimit() {
        HostCapacity.FileLimit l = HostCapacity.raiseFileLimit();
        assertThat(l).isNotNull();
        assertThat(l.soft()).isEqualTo(l.hard() < 0 ? l.soft() : l.hard()).isGreaterThanOrEqualTo(l.softBefore());
        var os = (com.sun.management.UnixOperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        assertThat(os.getMaxFileDescriptorCount()).isEqualTo(l.soft());
    }
}
