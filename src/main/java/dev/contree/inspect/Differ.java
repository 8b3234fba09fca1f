package dev.contree.inspect;

import dev.contree.linux.Linux;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;

/**
 * Diff of two merged views. Cheap for related images: a directory whose contributing host dirs
 * are the same list in both views is the same subtree (same layers, nothing above them) and is
 * skipped without listing; a non-directory backed by the same host inode is the same file; file
 * contents are read only when sizes are equal and the backing inodes differ.
 */
final class Differ {
    private final MergedView a, b;
    private final List<DiffResult.Change> added = new ArrayList<>();
    private final List<DiffResult.Change> modified = new ArrayList<>();
    private final List<DiffResult.Change> deleted = new ArrayList<>();

    Differ(MergedView a, MergedView b) {
        this.a = a;
        this.b = b;
    }

    DiffResult run() throws IOException {
        diffDir(a.root(), b.root());
        return new DiffResult(List.copyOf(added), List.copyOf(modified), List.copyOf(deleted));
    }

    private void diffDir(MergedView.Node da, MergedView.Node db) throws IOException {
        if (da.dirs().equals(db.dirs())) return;
        Map<String, MergedView.Node> la = a.readDir(da), lb = b.readDir(db);
        TreeSet<String> names = new TreeSet<>(la.keySet());
        names.addAll(lb.keySet());
        for (String name : names) {
            MergedView.Node ca = la.get(name), cb = lb.get(name);
            if (ca == null) addAll(cb);
            else if (cb == null) deleteAll(ca);
            else compare(ca, cb);
        }
    }

    private void compare(MergedView.Node ca, MergedView.Node cb) throws IOException {
        Linux.Stat sa = ca.st(), sb = cb.st();
        if (ca.isDir() && cb.isDir()) {
            if (sa.mode() != sb.mode() || sa.uid() != sb.uid() || sa.gid() != sb.gid() || sa.mtimeSec() != sb.mtimeSec())
                modified.add(new DiffResult.Change(cb.path(), a.entry(ca), b.entry(cb)));
            diffDir(ca, cb);
            return;
        }
        if (sa.type() != sb.type()) {
            modified.add(new DiffResult.Change(cb.path(), a.entry(ca), b.entry(cb)));
            if (ca.isDir()) for (MergedView.Node c : a.readDir(ca).values()) deleteAll(c);
            if (cb.isDir()) for (MergedView.Node c : b.readDir(cb).values()) addAll(c);
            return;
        }
        if (sameInode(sa, sb)) return;
        boolean differs = sa.mode() != sb.mode() || sa.uid() != sb.uid() || sa.gid() != sb.gid()
                || sa.size() != sb.size() || sa.mtimeSec() != sb.mtimeSec() || sa.rdev() != sb.rdev()
                || !Objects.equals(ca.target(), cb.target());
        if (!differs && sa.isRegular()) differs = !sameContent(ca, cb);
        if (differs) modified.add(new DiffResult.Change(cb.path(), a.entry(ca), b.entry(cb)));
    }

    private static boolean sameInode(Linux.Stat x, Linux.Stat y) {
        return x.dev() == y.dev() && x.ino() == y.ino();
    }

    private static boolean sameContent(MergedView.Node x, MergedView.Node y) throws IOException {
        try (InputStream ix = Files.newInputStream(x.host(), LinkOption.NOFOLLOW_LINKS);
             InputStream iy = Files.newInputStream(y.host(), LinkOption.NOFOLLOW_LINKS)) {
            byte[] bx = new byte[64 * 1024], by = new byte[64 * 1024];
            while (true) {
                int nx = ix.readNBytes(bx, 0, bx.length);
                int ny = iy.readNBytes(by, 0, by.length);
                if (nx != ny || !Arrays.equals(bx, 0, nx, by, 0, ny)) return false;
                if (nx < bx.length) return true;
            }
        }
    }

    private void addAll(MergedView.Node n) throws IOException {
        added.add(new DiffResult.Change(n.path(), null, b.entry(n)));
        if (n.isDir()) for (MergedView.Node c : b.readDir(n).values()) addAll(c);
    }

    private void deleteAll(MergedView.Node n) throws IOException {
        deleted.add(new DiffResult.Change(n.path(), a.entry(n), null));
        if (n.isDir()) for (MergedView.Node c : a.readDir(n).values()) deleteAll(c);
    }
}
