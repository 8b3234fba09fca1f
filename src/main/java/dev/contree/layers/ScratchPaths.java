package dev.contree.layers;

import dev.contree.linux.Linux;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
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
 */
final class ScratchPaths {
    private ScratchPaths() {}

    static void clean(Path diff, List<Path> lowerDiffsTopFirst, Collection<String> scratchPaths) throws IOException {
        if (scratchPaths == null || scratchPaths.isEmpty()) return;
        Set<String> todo = new LinkedHashSet<>();
        for (String s : scratchPaths) {
            String n = normalize(s);
            if (!n.isEmpty()) todo.add(n);
        }
        List<String> ordered = new ArrayList<>(todo);
        ordered.sort(Comparator.comparingInt((String s) -> s.split("/").length).reversed());
        for (String rel : ordered) {
            if (!removeIfScratch(diff, lowerDiffsTopFirst, rel, true)) continue;
            for (String parent = parentOf(rel); parent != null; parent = parentOf(parent)) {
                if (!removeIfScratch(diff, lowerDiffsTopFirst, parent, false)) break;
            }
        }
    }

    private static boolean removeIfScratch(Path diff, List<Path> lowers, String rel, boolean allowFile) throws IOException {
        Path p = diff.resolve(rel);
        Linux.Stat st = Linux.lstatOrNull(p);
        if (st == null) return false;
        if (st.isDir()) {
            if (!UpperDir.isEmptyDir(p)) return false;
            Linux.Stat lower = UpperDir.lookup(lowers, rel);
            boolean remove = lower == null || (lower.isDir() && !UpperDir.isOpaque(p));
            if (remove) Files.delete(p);
            return remove;
        }
        if (allowFile && st.isRegular() && st.size() == 0 && UpperDir.lookup(lowers, rel) == null) {
            Files.delete(p);
            return true;
        }
        return false;
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
