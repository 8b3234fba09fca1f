package dev.contree.layers;

import dev.contree.linux.Linux;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * The overlayfs upper-dir format: whiteouts are character devices 0/0, an opaque directory carries
 * {@code trusted.overlay.opaque=y}. Also metadata-preserving copies of single inodes. Inodes are
 * described by {@link Linux.Stat} (statx: nanosecond times, dev/ino, rdev, nlink).
 */
final class UpperDir {
    static final String OPAQUE_XATTR = "trusted.overlay.opaque";
    private static final String OVERLAY_XATTR_PREFIX = "trusted.overlay.";

    private UpperDir() {}

    static boolean isOpaque(Path dir) throws IOException {
        byte[] v = Linux.lgetxattr(dir, OPAQUE_XATTR);
        return v != null && v.length == 1 && v[0] == 'y';
    }

    static void setOpaque(Path dir) throws IOException {
        Linux.lsetxattr(dir, OPAQUE_XATTR, new byte[] {'y'});
    }

    static boolean isEmptyDir(Path dir) throws IOException {
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            return !ds.iterator().hasNext();
        }
    }

    static List<String> list(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    /**
     * Creates {@code dst} as a copy of the non-directory {@code src}: regular files share extents (FICLONE),
     * symlinks, devices, fifos and sockets are recreated. Metadata is copied by {@link #copyMeta}.
     */
    static void copyNonDir(Path src, Linux.Stat st, Path dst) throws IOException {
        switch (st.type()) {
            case Linux.S_IFREG -> {
                if (st.size() == 0) {
                    Linux.close(Linux.open(dst, Linux.O_WRONLY | Linux.O_CREAT | Linux.O_EXCL, st.mode() & 07777));
                } else {
                    Btrfs.cloneFile(src, dst, st.mode());
                }
            }
            case Linux.S_IFLNK -> Files.createSymbolicLink(dst, Files.readSymbolicLink(src));
            default -> Linux.mknod(dst, st.mode(), st.rdev()); // char/block devices, fifos, sockets
        }
        copyMeta(src, st, dst, false);
    }

    /**
     * Copies owner, mode (with setuid bits), xattrs (except overlay bookkeeping ones other than opaque,
     * which the caller decides) and atime/mtime. chown first: it clears setuid bits and file capabilities.
     */
    static void copyMeta(Path src, Linux.Stat st, Path dst, boolean keepOpaque) throws IOException {
        Linux.lchown(dst, st.uid(), st.gid());
        if (!st.isSymlink()) Linux.lchmod(dst, st.mode());
        for (String name : Linux.llistxattr(src)) {
            if (name.startsWith(OVERLAY_XATTR_PREFIX) && !(keepOpaque && name.equals(OPAQUE_XATTR))) continue;
            byte[] v = Linux.lgetxattr(src, name);
            if (v != null) Linux.lsetxattr(dst, name, v);
        }
        setTimes(dst, st);
    }

    static void setTimes(Path dst, Linux.Stat st) throws IOException {
        Linux.lutimes(dst, st.atimeSec(), st.atimeNsec(), st.mtimeSec(), st.mtimeNsec());
    }

    /** rm -rf without following symlinks; absent is fine. */
    static void deleteRecursively(Path p) throws IOException {
        Linux.Stat st = Linux.lstatOrNull(p);
        if (st == null) return;
        if (st.isDir()) {
            if ((st.mode() & 0700) != 0700) Linux.lchmod(p, 0700); // overlay's work/work is mode 000
            for (String n : list(p)) deleteRecursively(p.resolve(n));
        }
        Files.delete(p);
    }

    /**
     * Bytes of file data below {@code p}: each regular file's size, or its allocated blocks when fewer
     * (a sparse file counts what it holds, not the size it claims), hard links once.
     */
    static long dataBytes(Path p) throws IOException {
        return dataBytes(p, new java.util.HashSet<>());
    }

    private static long dataBytes(Path p, java.util.Set<Long> linkedInodes) throws IOException {
        Linux.Stat st = Linux.lstatOrNull(p);
        if (st == null) return 0;
        if (st.isRegular()) {
            if (st.nlink() > 1 && !linkedInodes.add(st.ino())) return 0;
            return Math.min(st.size(), st.blocks() * 512);
        }
        if (!st.isDir()) return 0;
        long sum = 0;
        for (String n : list(p)) sum += dataBytes(p.resolve(n), linkedInodes);
        return sum;
    }

    /**
     * The entry visible at {@code rel} when the given upper dirs are stacked (top first), honouring
     * whiteouts, opaque directories and non-directories that hide paths below them; null when none.
     */
    static Linux.Stat lookup(List<Path> diffsTopFirst, String rel) throws IOException {
        String[] parts = Arrays.stream(rel.split("/")).filter(s -> !s.isEmpty() && !s.equals(".")).toArray(String[]::new);
        if (parts.length == 0) return diffsTopFirst.isEmpty() ? null : Linux.lstatOrNull(diffsTopFirst.get(0));
        for (Path layer : diffsTopFirst) {
            Path cur = layer;
            boolean hidesBelow = false;
            for (int i = 0; i < parts.length; i++) {
                cur = cur.resolve(parts[i]);
                Linux.Stat st = Linux.lstatOrNull(cur);
                if (st == null) break;
                if (st.isWhiteout()) return null;
                if (i == parts.length - 1) return st;
                if (!st.isDir()) return null;
                if (isOpaque(cur)) hidesBelow = true;
            }
            if (hidesBelow) return null;
        }
        return null;
    }
}
