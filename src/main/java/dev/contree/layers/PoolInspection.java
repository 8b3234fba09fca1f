package dev.contree.layers;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * A look at a layer store's pool that changes nothing: what {@link LayerStore#open}'s recovery would
 * change, and which layers are committed. An unmounted pool image is loop-mounted read-only on a
 * temporary directory outside the data dir (a read-only loop device, and {@code rescue=nologreplay} so
 * btrfs does not even replay its log in memory) and unmounted again.
 */
public final class PoolInspection {
    /** Options for looking into a pool image without writing a byte of it. */
    static final String READ_ONLY_MOUNT = "ro,loop,nosuid,nodev,rescue=nologreplay";

    /**
     * @param present      whether there is a pool at all (a btrfs root or its image)
     * @param committed    committed layer ids
     * @param writable     committed layers that are not read-only
     * @param pending      {@code .pending-*} subvolumes (uncommitted layers)
     * @param staleMounts  mounts below the root (no server runs, so none should be there)
     * @param staleMountPoints entries of {@code mnt/} that are not mounts
     * @param orphanSizes  {@code sizes/} records whose layer does not exist
     */
    public record State(boolean present, List<String> committed, List<String> writable, List<String> pending,
                        List<Path> staleMounts, List<String> staleMountPoints, List<String> orphanSizes) {}

    private PoolInspection() {}

    public static State inspect(Path root) throws IOException {
        root = root.toAbsolutePath().normalize();
        List<Path> stale = Mounts.mountsUnder(root);
        if (Files.isDirectory(root) && Btrfs.isBtrfs(root)) return scan(root, stale);
        Path img = root.resolveSibling(root.getFileName() + ".img");
        if (!Files.isRegularFile(img)) return new State(false, List.of(), List.of(), List.of(), stale, List.of(), List.of());
        Path mnt = Files.createTempDirectory("contree-fsck-");
        try {
            LayerStore.run("mount", "-o", READ_ONLY_MOUNT, img.toString(), mnt.toString());
            try {
                return scan(mnt, stale);
            } finally {
                Mounts.unmount(mnt); // the loop device goes with it (autoclear)
            }
        } finally {
            Files.delete(mnt);
        }
    }

    private static State scan(Path base, List<Path> staleMounts) throws IOException {
        List<String> committed = new ArrayList<>(), writable = new ArrayList<>(), pending = new ArrayList<>();
        for (String name : listIfPresent(base.resolve("layers"))) {
            if (name.startsWith(".pending-")) {
                pending.add(name);
            } else if (!name.startsWith(".")) {
                committed.add(name);
                if (!Btrfs.isReadOnly(base.resolve("layers").resolve(name))) writable.add(name);
            }
        }
        List<String> mountPoints = new ArrayList<>();
        for (String name : listIfPresent(base.resolve("mnt"))) {
            if (!Mounts.isMountPoint(base.resolve("mnt").resolve(name))) mountPoints.add(name);
        }
        Set<String> ids = new HashSet<>(committed);
        List<String> orphanSizes = listIfPresent(base.resolve("sizes")).stream().filter(n -> !ids.contains(n)).toList();
        return new State(true, committed, writable, pending, staleMounts, mountPoints, orphanSizes);
    }

    private static List<String> listIfPresent(Path dir) throws IOException {
        return Files.isDirectory(dir) ? UpperDir.list(dir) : List.of();
    }
}
