package dev.contree;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;

/** Cleanup for test data dirs that may hold mounts (the layer store's btrfs image) and read-only subvolumes. */
public final class TestDirs {
    private TestDirs() {}

    public static void removeWithMounts(Path dir) throws IOException, InterruptedException {
        if (dir == null || !Files.exists(dir)) return;
        String prefix = dir.toAbsolutePath().normalize().toString();
        List<String> mounts = Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                .map(l -> l.split(" ")[4]).filter(m -> m.startsWith(prefix)).sorted(Comparator.reverseOrder()).toList();
        for (String m : mounts) new ProcessBuilder("umount", "-l", m).inheritIO().start().waitFor();
        try (var walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                if (!p.toFile().delete() && Files.exists(p)) {
                    // read-only btrfs subvolumes outside a mounted image: nothing more to do here
                }
            }
        }
    }
}
