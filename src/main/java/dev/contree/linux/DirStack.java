package dev.contree.linux;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The path of directories a depth-first walk is in, from an open root down one {@link Dir.Name} at a time, with a
 * bounded number of open descriptors whatever the depth. A hostile tree may be 100,000 levels deep: a path string
 * to its bottom is far past PATH_MAX (openat2 fails with ENAMETOOLONG), one descriptor per level exhausts the
 * process's descriptors, and reopening a parent through ".." is unsafe while the tree can change.
 *
 * <p>Kept open: the root (not owned), every {@link #KEEP_EVERY}th level, and the levels just above the top. A
 * closed level is reopened by its names from the deepest open ancestor (fewer than {@link #KEEP_EVERY} single-name
 * openat2 steps, never a long path), and the levels between are kept open for the walk's way back up, so every
 * level is reopened at most once per visit. Open descriptors: at most about {@code depth / KEEP_EVERY + 2 * KEEP_EVERY}
 * (the window, and a reopened run below it).
 */
public final class DirStack implements AutoCloseable {
    static final int KEEP_EVERY = 64;

    private final Dir root;
    private final List<Dir.Name> names = new ArrayList<>();
    /** dirs.get(i) is the directory at depth i + 1, or null while closed. */
    private final List<Dir> dirs = new ArrayList<>();

    /** @param root the depth-0 directory; stays owned by the caller */
    public DirStack(Dir root) {
        this.root = root;
    }

    /** The depth-0 directory. */
    public Dir root() {
        return root;
    }

    /** Levels below the root (0 at the root). */
    public int depth() {
        return names.size();
    }

    /** The names from the root to the top. */
    public List<Dir.Name> names() {
        return List.copyOf(names);
    }

    /** The directory at the top, open (reopened from its nearest open ancestor if needed); owned by this stack. */
    public Dir top() throws IOException {
        return at(names.size());
    }

    /** Descends into the subdirectory {@code name} of the top (never through a symlink, see {@link Dir#openDir}). */
    public Dir push(Dir.Name name) throws IOException {
        Dir child = top().openDir(name);
        names.add(name);
        dirs.add(child);
        int old = names.size() - KEEP_EVERY; // keep a window of open levels above the top for the way back
        if (old >= 1 && old % KEEP_EVERY != 0) close(old);
        return child;
    }

    /** Leaves the top directory; returns its name. */
    public Dir.Name pop() {
        int d = names.size();
        if (d == 0) throw new IllegalStateException("at the root");
        close(d);
        dirs.removeLast();
        return names.removeLast();
    }

    /** Open descriptors this stack holds (tests check the bound). */
    public int openDescriptors() {
        int n = 0;
        for (Dir d : dirs) if (d != null) n++;
        return n;
    }

    private Dir at(int depth) throws IOException {
        if (depth == 0) return root;
        Dir d = dirs.get(depth - 1);
        if (d != null) return d;
        int from = depth - 1;
        while (from > 0 && dirs.get(from - 1) == null) from--;
        Dir cur = from == 0 ? root : dirs.get(from - 1);
        for (int i = from; i < depth; i++) {
            cur = cur.openDir(names.get(i));
            dirs.set(i, cur);
        }
        return cur;
    }

    private void close(int depth) {
        Dir d = dirs.get(depth - 1);
        if (d != null) {
            d.close();
            dirs.set(depth - 1, null);
        }
    }

    /** Closes every descriptor this stack opened (not the root). */
    @Override
    public void close() {
        for (int i = 1; i <= dirs.size(); i++) close(i);
    }
}
