package dev.contree.layers;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The overlayfs upper-dir format: whiteouts are character devices 0/0, an opaque directory carries
 * {@code trusted.overlay.opaque=y}. Also lstat and metadata-preserving copies of single inodes.
 */
final class UpperDir {
    static final String OPAQUE_XATTR = "trusted.overlay.opaque";
    private static final String OVERLAY_XATTR_PREFIX = "trusted.overlay.";
    static final int S_IFMT = 0170000, S_IFDIR = 0040000, S_IFREG = 0100000, S_IFLNK = 0120000, S_IFCHR = 0020000;

    private UpperDir() {}

    /** What lstat(2) says about one inode. */
    record Stat(int mode, int uid, int gid, long dev, long ino, long rdev, int nlink, long size, FileTime atime, FileTime mtime) {
        int type() { return mode & S_IFMT; }
        boolean isDir() { return type() == S_IFDIR; }
        boolean isRegular() { return type() == S_IFREG; }
        boolean isSymlink() { return type() == S_IFLNK; }
        boolean isWhiteout() { return type() == S_IFCHR && rdev == 0; }
    }

    /** lstat, or null when nothing is there. */
    static Stat lstat(Path p) throws IOException {
        Map<String, Object> a;
        try {
            a = Files.readAttributes(p, "unix:mode,uid,gid,dev,ino,rdev,nlink,size,lastAccessTime,lastModifiedTime",
                    LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException e) {
            return null;
        }
        return new Stat((Integer) a.get("mode"), (Integer) a.get("uid"), (Integer) a.get("gid"), (Long) a.get("dev"), (Long) a.get("ino"),
                (Long) a.get("rdev"), (Integer) a.get("nlink"), (Long) a.get("size"),
                (FileTime) a.get("lastAccessTime"), (FileTime) a.get("lastModifiedTime"));
    }

    static boolean isOpaque(Path dir) throws IOException {
        byte[] v = Syscall.getXattr(dir, OPAQUE_XATTR);
        return v != null && v.length == 1 && v[0] == 'y';
    }

    static void setOpaque(Path dir) throws IOException {
        Syscall.setXattr(dir, OPAQUE_XATTR, new byte[] {'y'});
    }

    static void makeWhiteout(Path p) throws IOException {
        Syscall.mknod(p, S_IFCHR, 0);
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
    static void copyNonDir(Path src, Stat st, Path dst) throws IOException {
        switch (st.type()) {
            case S_IFREG -> {
                if (st.size() == 0) {
                    Syscall.close(Syscall.open(dst, Syscall.O_WRONLY | Syscall.O_CREAT | Syscall.O_EXCL, st.mode() & 07777));
                } else {
                    Btrfs.cloneFile(src, dst, st.mode());
                }
            }
            case S_IFLNK -> Files.createSymbolicLink(dst, Files.readSymbolicLink(src));
            default -> Syscall.mknod(dst, st.mode(), st.rdev()); // char/block devices, fifos, sockets
        }
        copyMeta(src, st, dst, false);
    }

    /**
     * Copies owner, mode (with setuid bits), xattrs (except overlay bookkeeping ones other than opaque,
     * which the caller decides) and atime/mtime. chown first: it clears setuid bits and file capabilities.
     */
    static void copyMeta(Path src, Stat st, Path dst, boolean keepOpaque) throws IOException {
        Syscall.lchown(dst, st.uid(), st.gid());
        if (!st.isSymlink()) Syscall.chmod(dst, st.mode());
        for (String name : Syscall.listXattrs(src)) {
            if (name.startsWith(OVERLAY_XATTR_PREFIX) && !(keepOpaque && name.equals(OPAQUE_XATTR))) continue;
            byte[] v = Syscall.getXattr(src, name);
            if (v != null) Syscall.setXattr(dst, name, v);
        }
        setTimes(dst, st);
    }

    static void setTimes(Path dst, Stat st) throws IOException {
        Instant a = st.atime().toInstant(), m = st.mtime().toInstant();
        Syscall.setTimes(dst, a.getEpochSecond(), a.getNano(), m.getEpochSecond(), m.getNano());
    }

    /** rm -rf without following symlinks; absent is fine. */
    static void deleteRecursively(Path p) throws IOException {
        Stat st = lstat(p);
        if (st == null) return;
        if (st.isDir()) {
            if ((st.mode() & 0700) != 0700) Syscall.chmod(p, 0700); // overlay's work/work is mode 000
            for (String n : list(p)) deleteRecursively(p.resolve(n));
        }
        Files.delete(p);
    }

    /** Sum of apparent sizes of regular files below {@code p}. */
    static long apparentSize(Path p) throws IOException {
        Stat st = lstat(p);
        if (st == null) return 0;
        if (!st.isDir()) return st.isRegular() ? st.size() : 0;
        long sum = 0;
        for (String n : list(p)) sum += apparentSize(p.resolve(n));
        return sum;
    }

    /**
     * The entry visible at {@code rel} when the given upper dirs are stacked (top first), honouring
     * whiteouts, opaque directories and non-directories that hide paths below them; null when none.
     */
    static Stat lookup(List<Path> diffsTopFirst, String rel) throws IOException {
        String[] parts = Arrays.stream(rel.split("/")).filter(s -> !s.isEmpty() && !s.equals(".")).toArray(String[]::new);
        if (parts.length == 0) return diffsTopFirst.isEmpty() ? null : lstat(diffsTopFirst.get(0));
        for (Path layer : diffsTopFirst) {
            Path cur = layer;
            boolean hidesBelow = false;
            for (int i = 0; i < parts.length; i++) {
                cur = cur.resolve(parts[i]);
                Stat st = lstat(cur);
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
