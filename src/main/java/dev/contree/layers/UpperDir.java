package dev.contree.layers;

import dev.contree.linux.Dir;
import dev.contree.linux.DirStack;
import dev.contree.linux.Linux;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The overlayfs upper-dir format: whiteouts are character devices 0/0, an opaque directory carries
 * {@code trusted.overlay.opaque=y}. Also metadata-preserving copies of single inodes. Inodes are
 * described by {@link Linux.Stat} (statx: nanosecond times, dev/ino, rdev, nlink).
 *
 * <p>Layer content is hostile (a sandbox or an image wrote it): everything here works on {@link Dir}
 * descriptors and single names, so no symlink in a layer is ever followed on the host. Names are bytes.
 */
final class UpperDir {
    static final String OPAQUE_XATTR = "trusted.overlay.opaque";
    private static final String OVERLAY_XATTR_PREFIX = "trusted.overlay.";

    private UpperDir() {}

    /** Whether the entry {@code name} in {@code parent} carries the opaque marker. */
    static boolean isOpaque(Dir parent, Dir.Name name) throws IOException {
        byte[] v = parent.getxattr(name, OPAQUE_XATTR);
        return v != null && v.length == 1 && v[0] == 'y';
    }

    static void setOpaque(Dir parent, Dir.Name name) throws IOException {
        parent.setxattr(name, OPAQUE_XATTR, new byte[] {'y'});
    }

    /** {@link #isOpaque(Dir, Dir.Name)} for a trusted host path (tests, the store's own dirs). */
    static boolean isOpaque(Path p) throws IOException {
        try (Dir parent = Dir.open(p.getParent(), "/")) {
            return isOpaque(parent, Dir.Name.of(p.getFileName().toString()));
        }
    }

    /** Names in a trusted host directory the store made (layers/, mnt/, sizes/), sorted. */
    static List<String> list(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    /**
     * Creates {@code dstName} in {@code dst} as a copy of the non-directory {@code srcName} in {@code src}:
     * regular files share extents (FICLONE), symlinks (target bytes as they are), devices, fifos and sockets
     * are recreated. Metadata is copied by {@link #copyMeta}.
     */
    static void copyNonDir(Dir src, Dir.Name srcName, Linux.Stat st, Dir dst, Dir.Name dstName) throws IOException {
        switch (st.type()) {
            case Linux.S_IFREG -> {
                int out = dst.openFile(dstName, Linux.O_WRONLY | Linux.O_CREAT | Linux.O_EXCL, st.mode() & 07777);
                try {
                    if (st.size() > 0) {
                        int in = src.openFile(srcName, Linux.O_RDONLY, 0);
                        try {
                            Btrfs.cloneFd(in, out, (dst.label().endsWith("/") ? dst.label() : dst.label() + "/") + dstName);
                        } finally {
                            Linux.close(in);
                        }
                    }
                } finally {
                    Linux.close(out);
                }
            }
            case Linux.S_IFLNK -> dst.symlink(src.readlink(srcName), dstName);
            default -> dst.mknod(dstName, st.mode(), st.rdev()); // char/block devices, fifos, sockets
        }
        copyMeta(src, srcName, st, dst, dstName, false);
    }

    /**
     * Copies owner, mode (with setuid bits), xattrs (except overlay bookkeeping ones other than opaque,
     * which the caller decides) and atime/mtime. chown first: it clears setuid bits and file capabilities.
     */
    static void copyMeta(Dir src, Dir.Name srcName, Linux.Stat st, Dir dst, Dir.Name dstName, boolean keepOpaque)
            throws IOException {
        dst.chown(dstName, st.uid(), st.gid());
        if (!st.isSymlink()) dst.chmod(dstName, st.mode());
        for (String x : src.listxattr(srcName)) {
            if (x.startsWith(OVERLAY_XATTR_PREFIX) && !(keepOpaque && x.equals(OPAQUE_XATTR))) continue;
            byte[] v = src.getxattr(srcName, x);
            if (v != null) dst.setxattr(dstName, x, v);
        }
        dst.utimes(dstName, st.atimeSec(), st.atimeNsec(), st.mtimeSec(), st.mtimeNsec());
    }

    /** rm -rf of a trusted host path (the store's own dirs) whose content may be hostile: never follows a link. */
    static void deleteRecursively(Path p) throws IOException {
        if (Linux.lstatOrNull(p) == null) return;
        try (Dir parent = Dir.open(p.getParent(), "/")) {
            parent.deleteRecursively(Dir.Name.of(p.getFileName().toString()));
        }
    }

    /**
     * Bytes of file data below {@code dir}: each regular file's size, or its allocated blocks when fewer
     * (a sparse file counts what it holds, not the size it claims), hard links once. Walks with a
     * {@link DirStack} (no recursion, bounded descriptors); deeper than {@link LayerStore#MAX_TREE_DEPTH}:
     * {@link TreeTooDeepException}.
     */
    static long dataBytes(Dir dir) throws IOException {
        Set<Long> linkedInodes = new HashSet<>();
        long[] sum = {0};
        try (DirStack path = new DirStack(dir)) {
            Deque<Deque<Dir.Name>> subdirs = new ArrayDeque<>(); // per level of the path: subdirectories still to visit
            subdirs.push(sizeFiles(dir, linkedInodes, sum));
            while (!subdirs.isEmpty()) {
                Dir.Name next = subdirs.peek().poll();
                if (next == null) {
                    subdirs.pop();
                    if (path.depth() > 0) path.pop();
                    continue;
                }
                TreeTooDeepException.check(path.depth() + 1);
                subdirs.push(sizeFiles(path.push(next), linkedInodes, sum));
            }
        }
        return sum[0];
    }

    /** Adds the sizes of the regular files in {@code dir} to {@code sum}; returns its subdirectories. */
    private static Deque<Dir.Name> sizeFiles(Dir dir, Set<Long> linkedInodes, long[] sum) throws IOException {
        Deque<Dir.Name> subdirs = new ArrayDeque<>();
        for (Dir.Name n : dir.list()) {
            Linux.Stat st = dir.statOrNull(n);
            if (st == null) continue;
            if (st.isRegular()) {
                if (st.nlink() > 1 && !linkedInodes.add(st.ino())) continue;
                sum[0] += Math.min(st.size(), st.blocks() * 512);
            } else if (st.isDir()) {
                subdirs.add(n);
            }
        }
        return subdirs;
    }

    /** "a/b/c" as names; "" and "." components dropped, ".." refused (callers pass server-chosen paths). */
    static List<Dir.Name> names(String rel) {
        List<Dir.Name> out = new ArrayList<>();
        for (String part : rel.split("/")) {
            if (part.isEmpty() || part.equals(".")) continue;
            if (part.equals("..")) throw new IllegalArgumentException("path must not contain '..': " + rel);
            out.add(Dir.Name.of(part));
        }
        return out;
    }

    /**
     * The entry visible at {@code path} (non-empty) when the given upper dirs are stacked (top first),
     * honouring whiteouts, opaque directories and non-directories that hide paths below them; null when none.
     * A symlink on the way is an entry like any other: it hides the path below it, it is never followed.
     */
    static Linux.Stat lookup(List<Dir> diffsTopFirst, List<Dir.Name> path) throws IOException {
        if (path.isEmpty()) throw new IllegalArgumentException("empty path");
        for (Dir layer : diffsTopFirst) {
            Dir cur = layer;
            boolean hidesBelow = false;
            try {
                for (int i = 0; i < path.size(); i++) {
                    Dir.Name name = path.get(i);
                    Linux.Stat st = cur.statOrNull(name);
                    if (st == null) break;
                    if (st.isWhiteout()) return null;
                    if (i == path.size() - 1) return st;
                    if (!st.isDir()) return null;
                    if (isOpaque(cur, name)) hidesBelow = true;
                    Dir next = cur.openDir(name);
                    if (cur != layer) cur.close();
                    cur = next;
                }
            } finally {
                if (cur != layer) cur.close();
            }
            if (hidesBelow) return null;
        }
        return null;
    }
}
