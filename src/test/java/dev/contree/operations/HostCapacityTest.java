package dev.contree.operations;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;

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

    @Test
    void theOpenFileLimitEndsAtTheHardLimit() {
        HostCapacity.FileLimit l = HostCapacity.raiseFileLimit();
        assertThat(l).isNotNull();
        assertThat(l.soft()).isEqualTo(l.hard() < 0 ? l.soft() : l.hard()).isGreaterThanOrEqualTo(l.softBefore());
        var os = (com.sun.management.UnixOperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        assertThat(os.getMaxFileDescriptorCount()).isEqualTo(l.soft());
    }
}
