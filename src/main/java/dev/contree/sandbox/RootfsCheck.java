package dev.contree.sandbox;

import dev.contree.linux.Dir;
import dev.contree.linux.Linux;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * The last check before a runtime starts: no path it resolves on the host ({@link SandboxRuntime#rootfsMountPoints})
 * goes through a symlink or a non-directory in the rootfs. Runtimes join such paths to the rootfs on the host
 * (runc 1.1 replaces {@code <rootfs>/dev/ptmx} through a plain path; runsc bind-mounts {@code <rootfs>/tmp}),
 * so a link there would point them at a host directory. The caller (the layer store) has replaced such entries
 * already; finding one here is a bug or a race, and the run is refused.
 */
final class RootfsCheck {
    private RootfsCheck() {}

    static void verify(Path rootfs, List<SandboxRuntime.MountPoint> points) throws IOException {
        try (Dir root = Dir.open(rootfs, "/")) {
            for (SandboxRuntime.MountPoint mp : points) verify(root, mp);
        }
    }

    private static void verify(Dir root, SandboxRuntime.MountPoint mp) throws IOException {
        String path = mp.path();
        int slash = path.lastIndexOf('/');
        String parent = path.substring(0, slash), name = path.substring(slash + 1);
        Dir dir;
        try {
            dir = root.openDirIfExists(parent.isEmpty() ? "" : parent.substring(1));
        } catch (Linux.ErrnoException e) {
            throw refused(parent);
        }
        if (dir == null) return; // missing: the runtime creates it, nothing is in the way
        try (dir) {
            Linux.Stat st = dir.statOrNull(Dir.Name.of(name));
            if (st == null) return;
            if (mp.directory() ? !st.isDir() : !st.isRegular()) throw refused(path);
        }
    }

    private static IOException refused(String imagePath) {
        return new IOException("the rootfs has a symlink or a non-directory at " + imagePath
                + ", where the runtime mounts something; refusing to start");
    }
}
