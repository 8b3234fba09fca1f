package dev.contree.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.contree.inspect.MergedView;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Red team: {@code archive} of a directory of symlinks with long targets. commons-compress's
 * {@code TarUtils.formatNameBytes} shortens a name that does not fit the 100-byte ustar field one char
 * at a time, re-encoding it each time: O(n²) per entry. 10,000 symlinks with 4,000-byte targets (a 39 MB
 * layer) cost ~22 ms of CPU each: the archive ran at 100% of a core for over 3 minutes; 100,000 would hold a
 * core (and an InspectPool thread, two per account) for the whole 30-minute stream timeout. An entry's
 * header must cost time linear in its name.
 */
class ArchiveLongLinkNamesTest {
    @TempDir Path tmp;

    /**
     * Cost against a baseline in the same run (never a wall-clock bound): 500 symlinks with 4,000-byte targets
     * and 240-byte names against 500 with 500-byte targets. Linear headers cost about the same (fixed costs
     * dominate; at most the 8x of the bytes); the quadratic shortening cost ~50x. The archive must also carry
     * every full name and target.
     */
    @Test
    void longSymlinkTargetsArchiveInLinearTime() throws Exception {
        Path shortLayer = symlinks("short", "n".repeat(40), "t".repeat(500));
        Path longLayer = symlinks("long", "n".repeat(240), "t".repeat(4000));
        archiveNanos(shortLayer); // warm-up
        archiveNanos(longLayer);
        long shortNs = Math.min(archiveNanos(shortLayer), archiveNanos(shortLayer));
        long longNs = Math.min(archiveNanos(longLayer), archiveNanos(longLayer));
        double ratio = (double) longNs / shortNs;
        System.out.printf("archive of 500 long symlinks / 500 short ones: %.1fx (%d / %d ms)%n", ratio, longNs / 1_000_000, shortNs / 1_000_000);
        assertThat(ratio).as("long names cost linear time").isLessThan(16);

        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        try (MergedView view = new MergedView(List.of(longLayer))) {
            view.writeTar("/d", out);
        }
        int seen = 0;
        try (var in = new org.apache.commons.compress.archivers.tar.TarArchiveInputStream(new java.io.ByteArrayInputStream(out.toByteArray()))) {
            for (var e = in.getNextEntry(); e != null; e = in.getNextEntry()) {
                if (!e.isSymbolicLink()) continue;
                assertThat(e.getName()).matches("d/n{240}[0-9]+");
                assertThat(e.getLinkName()).isEqualTo("t".repeat(4000));
                seen++;
            }
        }
        assertThat(seen).isEqualTo(500);
    }

    private Path symlinks(String layerName, String prefix, String target) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve(layerName + "/d"));
        for (int i = 0; i < 500; i++) Files.createSymbolicLink(dir.resolve(prefix + i), Path.of(target));
        return dir.getParent();
    }

    private static long archiveNanos(Path layer) throws Exception {
        try (MergedView view = new MergedView(List.of(layer))) {
            long t0 = System.nanoTime();
            view.writeTar("/d", OutputStream.nullOutputStream());
            return System.nanoTime() - t0;
        }
    }
}
