package dev.contree.inspect;

import dev.contree.inspect.InspectException.Kind;
import dev.contree.linux.Dir;
import dev.contree.linux.Linux;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
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

    /**
     * What is left to do, depth-first: an explicit stack instead of recursion (a hostile tree is deeper than any
     * thread's stack; {@link MergedView#readDir} stops at {@link MergedView#MAX_DEPTH}). Tasks waiting here are
     * entries of directories already read, so the budget's entry limit bounds the stack too.
     */
    private sealed interface Task permits Dirs, Pair, Added, Deleted {}
    private record Dirs(MergedView.Node a, MergedView.Node b) implements Task {}
    private record Pair(MergedView.Node a, MergedView.Node b) implements Task {}
    private record Added(MergedView.Node n) implements Task {}
    private record Deleted(MergedView.Node n) implements Task {}

    private final Deque<Task> todo = new ArrayDeque<>();

    DiffResult run() throws IOException {
        todo.push(new Dirs(a.root(), b.root()));
        while (!todo.isEmpty()) {
            switch (todo.pop()) {
                case Dirs d -> diffDir(d.a(), d.b());
                case Pair p -> compare(p.a(), p.b());
                case Added x -> {
                    record(added, new DiffResult.Change(x.n().path(), null, b.entry(x.n())));
                    if (x.n().isDir()) later(b.readDir(x.n(), budget).values().stream().<Task>map(Added::new).toList());
                }
                case Deleted x -> {
                    record(deleted, new DiffResult.Change(x.n().path(), a.entry(x.n()), null));
                    if (x.n().isDir()) later(a.readDir(x.n(), budget).values().stream().<Task>map(Deleted::new).toList());
                }
            }
        }
        return new DiffResult(List.copyOf(added), List.copyOf(modified), List.copyOf(deleted));
    }

    /** Queues {@code tasks} to run next, in their order. */
    private void later(List<Task> tasks) {
        for (int i = tasks.size() - 1; i >= 0; i--) todo.push(tasks.get(i));
    }

    private void diffDir(MergedView.Node da, MergedView.Node db) throws IOException {
        if (da.dirs().equals(db.dirs())) return;
        Map<String, MergedView.Node> la = a.readDir(da, budget), lb = b.readDir(db, budget);
        TreeSet<String> names = new TreeSet<>(la.keySet());
        names.addAll(lb.keySet());
        List<Task> tasks = new ArrayList<>(names.size());
        for (String name : names) {
            MergedView.Node ca = la.get(name), cb = lb.get(name);
            if (ca == null) tasks.add(new Added(cb));
            else if (cb == null) tasks.add(new Deleted(ca));
            else tasks.add(new Pair(ca, cb));
        }
        later(tasks);
    }

    private void compare(MergedView.Node ca, MergedView.Node cb) throws IOException {
        Linux.Stat sa = ca.st(), sb = cb.st();
        if (ca.isDir() && cb.isDir()) {
            if (sa.mode() != sb.mode() || sa.uid() != sb.uid() || sa.gid() != sb.gid() || sa.mtimeSec() != sb.mtimeSec())
                record(modified, new DiffResult.Change(cb.path(), a.entry(ca), b.entry(cb)));
            todo.push(new Dirs(ca, cb));
            return;
        }
        if (sa.type() != sb.type()) {
            record(modified, new DiffResult.Change(cb.path(), a.entry(ca), b.entry(cb)));
            List<Task> tasks = new ArrayList<>();
            if (ca.isDir()) for (MergedView.Node c : a.readDir(ca, budget).values()) tasks.add(new Deleted(c));
            if (cb.isDir()) for (MergedView.Node c : b.readDir(cb, budget).values()) tasks.add(new Added(c));
            later(tasks);
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
}
