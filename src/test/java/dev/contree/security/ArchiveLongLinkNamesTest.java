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

    @Test
    void longSymlinkTargetsArchiveInLinearTime() throws Exception {
        Path layer = Files.createDirectories(tmp.resolve("layer/d"));
        String target = "t".repeat(4000);
        String prefix = "n".repeat(240);
        for (int i = 0; i < 500; i++) Files.createSymbolicLink(layer.resolve(prefix + i), Path.of(target));
        MergedView view = new MergedView(List.of(tmp.resolve("layer")));
        long t0 = System.nanoTime();
        view.writeTar("/d", OutputStream.nullOutputStream());
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertThat(ms).as("ms to archive 500 symlinks with 4,000-byte targets").isLessThan(2_000);
    }
}
