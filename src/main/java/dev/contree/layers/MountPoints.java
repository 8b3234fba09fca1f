package dev.contree.layers;

import dev.contree.linux.Dir;
import dev.contree.linux.Linux;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Makes the paths where an OCI runtime mounts or creates something real in a writable layer's merged
 * rootfs, before the runtime starts. Runtimes resolve those paths on the host (runc 1.1 creates
 * {@code dev/ptmx} through a plain path join; runsc bind-mounts {@code <rootfs>/tmp}), so a symlink an image
 * or an earlier run left at {@code /dev}, {@code /tmp}, {@code /.contree}... would point them at host
 * directories.
 *
 * <p>For each component of a target that is a symlink or another non-directory where a directory is
 * needed, the entry is removed and a real directory made in its place (through the overlay: a whiteout-over
 * plus an opaque directory in the upper dir); at a file target anything but a regular file is removed (the
 * runtime creates the file). Missing components are left to the runtime (it creates them; nothing can be in
 * the way). Each replaced path is returned so that commit can put the image's own entry back when the run
 * left the replacement empty ({@link ScratchPaths}). An ordinary image is not touched at all.
 */
final class MountPoints {
    private MountPoints() {}

    /** @return the replaced paths (relative, "dev", ".contree/init") */
    static List<String> secure(Dir rootfs, List<String> dirs, List<String> files) throws IOException {
        List<String> replaced = new ArrayList<>();
        for (String d : dirs) secure(rootfs, UpperDir.names(d), true, replaced);
        for (String f : files) secure(rootfs, UpperDir.names(f), false, replaced);
        return replaced;
    }

    private static void secure(Dir rootfs, List<Dir.Name> path, boolean directory, List<String> replaced) throws IOException {
        Dir cur = rootfs.openDir("");
        try {
            for (int i = 0; i < path.size(); i++) {
                Dir.Name name = path.get(i);
                boolean last = i == path.size() - 1;
                Linux.Stat st = cur.statOrNull(name);
                if (st == null) return; // the runtime creates it and what follows
                String rel = new String(ScratchPaths.join(path.subList(0, i + 1)), java.nio.charset.StandardCharsets.UTF_8);
                if (last && !directory) {
                    if (!st.isRegular()) {
                        cur.deleteRecursively(name);
                        replaced.add(rel);
                    }
                    return;
                }
                if (!st.isDir()) {
                    cur.unlink(name);
                    cur.mkdir(name, 0755);
                    // /tmp is everyone's scratch space: keep its usual mode (mkdir is subject to the umask)
                    cur.chmod(name, rel.equals("tmp") ? 01777 : 0755);
                    replaced.add(rel);
                }
                Dir next = cur.openDir(name);
                cur.close();
                cur = next;
            }
        } finally {
            cur.close();
        }
    }
}
