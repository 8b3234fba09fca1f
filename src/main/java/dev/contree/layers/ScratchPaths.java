package dev.contree.layers;

import dev.contree.linux.Dir;
import dev.contree.linux.Linux;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Removes from an upper dir what an OCI runtime left behind by creating mount points ("proc", "dev/pts",
 * ".contree", ...), so that a run that changed nothing else commits as "unchanged".
 *
 * <p>Rules for a scratch path {@code p} that exists in the upper dir (deepest paths first):
 * <ul>
 *   <li>empty directory, and the lower layers have nothing at {@code p}: remove (the runtime's mkdir).</li>
 *   <li>empty directory without the opaque xattr, and the lowers have a directory at {@code p}: remove.
 *       Such an upper copy only exists because something was created inside it (a mount point) and that
 *       has been removed already; without it the merged view shows the lower directory with the same
 *       (empty in upper) contents. Only a metadata-only change of that directory (chmod/chown/utime) is
 *       lost, which is accepted for these runtime-owned paths. An opaque empty directory means the
 *       sandbox emptied the directory (rm -rf + mkdir) and is kept; so is a directory that replaced a
 *       lower non-directory.</li>
 *   <li>empty regular file, and the lowers have nothing at {@code p}: remove (a bind-mount target).
 *       An empty file over a lower file is a truncation and is kept.</li>
 *   <li>anything else (non-empty, whiteout, symlink, ...) is a real change and is kept.</li>
 * </ul>
 * Ancestors of a removed path are examined by the same directory rules, so "dev" copied up only because
 * "dev/pts" was created goes too.
 *
 * <p>A path the store replaced before the run because the image had a symlink or non-directory there
 * ({@link MountPoints}) is put back: an empty directory, empty file or whiteout at it is removed whatever
 * the lowers hold, so the image keeps its own entry unless the run wrote something there.
 *
 * <p>The upper dir is hostile: paths are walked with {@link Dir}, and a symlink on the way means the path
 * is not a runtime mount point (the runtime never receives such a rootfs): it is left alone, never followed.
 */
final class ScratchPaths {
    private ScratchPaths() {}

    static void clean(Dir diff, List<Dir> lowersTopFirst, Collection<String> scratchPaths, Collection<String> replaced)
            throws IOException {
        Set<String> restore = new LinkedHashSet<>();
        for (String s : replaced) if (!normalize(s).isEmpty()) restore.add(normalize(s));
        Set<String> todo = new LinkedHashSet<>(restore);
        for (String s : scratchPaths) {
            String n = normalize(s);
            if (!n.isEmpty()) todo.add(n);
        }
        List<String> ordered = new ArrayList<>(todo);
        ordered.sort(Comparator.comparingInt((String s) -> s.split("/").length).reversed());
        for (String rel : ordered) {
            if (!removeIfScratch(diff, lowersTopFirst, rel, true, restore.contains(rel))) continue;
            for (String parent = parentOf(rel); parent != null; parent = parentOf(parent)) {
                if (!removeIfScratch(diff, lowersTopFirst, parent, false, restore.contains(parent))) break;
            }
        }
    }

    private static boolean removeIfScratch(Dir diff, List<Dir> lowers, String rel, boolean allowFile, boolean restore)
            throws IOException {
        List<Dir.Name> path = UpperDir.names(rel);
        Dir.Name name = path.getLast();
        try (Dir parent = openOrNull(diff, path.subList(0, path.size() - 1))) {
            if (parent == null) return false;
            Linux.Stat st = parent.statOrNull(name);
            if (st == null) return false;
            if (st.isDir()) {
                try (Dir d = parent.openDir(name)) {
                    if (!d.isEmpty()) return false;
                }
                boolean remove = restore;
                if (!remove) {
                    Linux.Stat lower = UpperDir.lookup(lowers, path);
                    remove = lower == null || (lower.isDir() && !UpperDir.isOpaque(parent, name));
                }
                if (remove) parent.rmdir(name);
                return remove;
            }
            boolean emptyFile = st.isRegular() && st.size() == 0;
            if ((restore && (emptyFile || st.isWhiteout()))
                    || (allowFile && emptyFile && UpperDir.lookup(lowers, path) == null)) {
                parent.unlink(name);
                return true;
            }
            return false;
        }
    }

    /** The directory at {@code path} below {@code root}; null when missing or when a component is not a real directory. */
    static Dir openOrNull(Dir root, List<Dir.Name> path) throws IOException {
        try {
            return root.openPath(path);
        } catch (Linux.ErrnoException e) {
            if (e.errno() == Linux.ENOENT || e.errno() == Linux.ENOTDIR || e.errno() == Linux.ELOOP) return null;
            throw e;
        }
    }

    static byte[] join(List<Dir.Name> path) {
        java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
        for (Dir.Name n : path) {
            if (b.size() > 0) b.write('/');
            b.writeBytes(n.bytes());
        }
        return b.toByteArray();
    }

    private static String parentOf(String rel) {
        int i = rel.lastIndexOf('/');
        return i <= 0 ? null : rel.substring(0, i);
    }

    static String normalize(String s) {
        StringBuilder sb = new StringBuilder();
        for (String part : s.split("/")) {
            if (part.isEmpty() || part.equals(".")) continue;
            if (part.equals("..")) throw new IllegalArgumentException("scratch path must not contain '..': " + s);
            if (!sb.isEmpty()) sb.append('/');
            sb.append(part);
        }
        return sb.toString();
    }
}
