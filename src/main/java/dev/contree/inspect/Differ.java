package dev.contree.inspect;

import dev.contree.inspect.InspectException.Kind;
import dev.contree.linux.Dir;
import dev.contree.linux.Linux;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;

/**
 * Diff of two merged views. Cheap for related images: a directory whose contributing host dirs
 * are the same list in both views is the same subtree (same layers, nothing above them) and is
 * skipped without listing; a non-directory backed by the same host inode is the same file; file
 * contents are read only when sizes are equal and the backing inodes differ, and then only where
 * either file has data (SEEK_DATA/SEEK_HOLE: two 16 GiB sparse files cost what their data costs).
 *
 * <p>Bounded: entries visited and content bytes compared count against the {@link Budget} (413 past
 * them), and so does the number of changes reported ({@link #MAX_CHANGES} unless set).
 */
final class Differ {
    static final int MAX_CHANGES = 100_000;
    private static final int CHUNK = 1 << 20;
    private final MergedView a, b;
    private final Budget budget;
    private final int maxChanges;
    private final List<DiffResult.Change> added = new ArrayList<>();
    private final List<DiffResult.Change> modified = new ArrayList<>();
    private final List<DiffResult.Change> deleted = new ArrayList<>();

    Differ(MergedView a, MergedView b, Budget budget) {
        this(a, b, budget, MAX_CHANGES);
    }

    Differ(MergedView a, MergedView b, Budget budget, int maxChanges) {
        this.a = a;
        this.b = b;
        this.budget = budget;
        this.maxChanges = maxChanges;
    }

    private void record(List<DiffResult.Change> list, DiffResult.Change c) {
        if (added.size() + modified.size() + deleted.size() >= maxChanges)
            throw new InspectException(Kind.TOO_LARGE, null, "more than " + maxChanges + " changed paths (the server's limit for one diff)");
        list.add(c);
    }

    DiffResult run() throws IOException {
        diffDir(a.root(), b.root());
        return new DiffResult(List.copyOf(added), List.copyOf(modified), List.copyOf(deleted));
    }

    private void diffDir(MergedView.Node da, MergedView.Node db) throws IOException {
        if (da.dirs().equals(db.dirs())) return;
        Map<String, MergedView.Node> la = a.readDir(da, budget), lb = b.readDir(db, budget);
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
                record(modified, new DiffResult.Change(cb.path(), a.entry(ca), b.entry(cb)));
            diffDir(ca, cb);
            return;
        }
        if (sa.type() != sb.type()) {
            record(modified, new DiffResult.Change(cb.path(), a.entry(ca), b.entry(cb)));
            if (ca.isDir()) for (MergedView.Node c : a.readDir(ca, budget).values()) deleteAll(c);
            if (cb.isDir()) for (MergedView.Node c : b.readDir(cb, budget).values()) addAll(c);
            return;
        }
        if (sameInode(sa, sb)) return;
        boolean differs = sa.mode() != sb.mode() || sa.uid() != sb.uid() || sa.gid() != sb.gid()
                || sa.size() != sb.size() || sa.mtimeSec() != sb.mtimeSec() || sa.rdev() != sb.rdev()
                || !Objects.equals(ca.target(), cb.target());
        budget.check();
        if (!differs && sa.isRegular()) differs = !sameContent(ca, cb);
        if (differs) record(modified, new DiffResult.Change(cb.path(), a.entry(ca), b.entry(cb)));
    }

    private static boolean sameInode(Linux.Stat x, Linux.Stat y) {
        return x.dev() == y.dev() && x.ino() == y.ino();
    }

    /** Equal sizes, different inodes: compares only where either file has data; holes read as zeros. */
    private boolean sameContent(MergedView.Node x, MergedView.Node y) throws IOException {
        long size = x.st().size();
        try (MergedView.HostFile fx = a.openFile(x); MergedView.HostFile fy = b.openFile(y)) {
            ByteBuffer bx = ByteBuffer.allocate(CHUNK), by = ByteBuffer.allocate(CHUNK);
            long off = 0;
            while (off < size) {
                long dx = dataAt(fx, off, size), dy = dataAt(fy, off, size);
                off = Math.min(dx, dy); // [off, min) is a hole in both: equal
                if (off >= size) return true;
                long end = Math.min(Math.min(extentEnd(fx, off, dx, size), extentEnd(fy, off, dy, size)), off + CHUNK);
                int n = (int) (end - off);
                budget.countBytes(2L * n);
                if (!readFully(fx, bx, off, n) || !readFully(fy, by, off, n)) return false; // shrank: not equal
                if (!bx.flip().equals(by.flip())) return false;
                off = end;
            }
            return true;
        }
    }

    /** The next offset at or after {@code off} with data, or {@code size} when only a hole remains. */
    private static long dataAt(MergedView.HostFile f, long off, long size) throws IOException {
        long d = Dir.seekData(f.fd(), off);
        return d < 0 ? size : Math.min(d, size);
    }

    /** Where the current stretch ends: the hole after data at {@code off}, or the data after a hole. */
    private static long extentEnd(MergedView.HostFile f, long off, long data, long size) throws IOException {
        if (data > off) return data;
        long h = Dir.seekHole(f.fd(), off);
        return h < 0 ? size : Math.min(h, size);
    }

    private static boolean readFully(MergedView.HostFile f, ByteBuffer buf, long off, int n) throws IOException {
        buf.clear().limit(n);
        while (buf.hasRemaining()) {
            int r = f.channel().read(buf, off + buf.position());
            if (r < 0) return false;
        }
        return true;
    }

    private void addAll(MergedView.Node n) throws IOException {
        record(added, new DiffResult.Change(n.path(), null, b.entry(n)));
        if (n.isDir()) for (MergedView.Node c : b.readDir(n, budget).values()) addAll(c);
    }

    private void deleteAll(MergedView.Node n) throws IOException {
        record(deleted, new DiffResult.Change(n.path(), a.entry(n), null));
        if (n.isDir()) for (MergedView.Node c : a.readDir(n, budget).values()) deleteAll(c);
    }
}
