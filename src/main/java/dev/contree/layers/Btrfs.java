package dev.contree.layers;

import dev.contree.linux.Linux;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/** btrfs ioctls (subvolumes, read-only flag, simple quotas) and FICLONE, each one system call, no processes. */
final class Btrfs {
    // Request numbers from <linux/btrfs.h> / <linux/fs.h> on x86_64 (verified with a C program).
    private static final long IOC_SUBVOL_CREATE = 0x5000940eL;
    private static final long IOC_SNAP_DESTROY = 0x5000940fL;
    private static final long IOC_SUBVOL_GETFLAGS = 0x80089419L;
    private static final long IOC_SUBVOL_SETFLAGS = 0x4008941aL;
    private static final long IOC_QUOTA_CTL = 0xc0109428L;
    private static final long IOC_QGROUP_LIMIT = 0x8030942bL;
    private static final long IOC_INO_LOOKUP = 0xd0009412L;
    private static final long IOC_TREE_SEARCH = 0xd0009411L;
    private static final long FICLONE = 0x40049409L;

    private static final long SUBVOL_RDONLY = 1L << 1;
    static final long QUOTA_CTL_ENABLE_SIMPLE_QUOTA = 4;
    private static final long QGROUP_LIMIT_MAX_RFER = 1, QGROUP_LIMIT_MAX_EXCL = 2;
    private static final long QUOTA_TREE_OBJECTID = 8, QGROUP_INFO_KEY = 242, FIRST_FREE_OBJECTID = 256;
    private static final int VOL_ARGS_SIZE = 4096, VOL_NAME_OFFSET = 8, VOL_NAME_MAX = 4087;

    private Btrfs() {}

    static boolean isBtrfs(Path p) throws IOException {
        return "btrfs".equals(Files.getFileStore(p).type());
    }

    static void createSubvolume(Path parent, String name) throws IOException {
        subvolCall(parent, name, IOC_SUBVOL_CREATE, "BTRFS_IOC_SUBVOL_CREATE");
    }

    /** Deletes a subvolume (read-only or not) by its name in {@code parent}; the cleaner frees space later. */
    static void deleteSubvolume(Path parent, String name) throws IOException {
        subvolCall(parent, name, IOC_SNAP_DESTROY, "BTRFS_IOC_SNAP_DESTROY");
    }

    private static void subvolCall(Path parent, String name, long req, String what) throws IOException {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        if (n.length > VOL_NAME_MAX || name.contains("/")) throw new IllegalArgumentException("bad subvolume name " + name);
        onDir(parent, (fd, a) -> {
            MemorySegment args = a.allocate(VOL_ARGS_SIZE);
            MemorySegment.copy(n, 0, args, JAVA_BYTE, VOL_NAME_OFFSET, n.length);
            Linux.ioctl(fd, req, args, what, parent.resolve(name));
            return null;
        });
    }

    static boolean isReadOnly(Path subvol) throws IOException {
        return onDir(subvol, (fd, a) -> {
            MemorySegment flags = a.allocate(JAVA_LONG);
            Linux.ioctl(fd, IOC_SUBVOL_GETFLAGS, flags, "BTRFS_IOC_SUBVOL_GETFLAGS", subvol);
            return (flags.get(JAVA_LONG, 0) & SUBVOL_RDONLY) != 0;
        });
    }

    static void setReadOnly(Path subvol, boolean readOnly) throws IOException {
        onDir(subvol, (fd, a) -> {
            MemorySegment flags = a.allocate(JAVA_LONG);
            Linux.ioctl(fd, IOC_SUBVOL_GETFLAGS, flags, "BTRFS_IOC_SUBVOL_GETFLAGS", subvol);
            long f = flags.get(JAVA_LONG, 0);
            long nf = readOnly ? f | SUBVOL_RDONLY : f & ~SUBVOL_RDONLY;
            if (nf == f) return null;
            flags.set(JAVA_LONG, 0, nf);
            Linux.ioctl(fd, IOC_SUBVOL_SETFLAGS, flags, "BTRFS_IOC_SUBVOL_SETFLAGS", subvol);
            return null;
        });
    }

    /** BTRFS_IOC_QUOTA_CTL; enabling simple quotas again when they are on already succeeds. */
    static void quotaCtl(Path fsPath, long cmd) throws IOException {
        onDir(fsPath, (fd, a) -> {
            MemorySegment args = a.allocate(16);
            args.set(JAVA_LONG, 0, cmd);
            Linux.ioctl(fd, IOC_QUOTA_CTL, args, "BTRFS_IOC_QUOTA_CTL(" + cmd + ")", fsPath);
            return null;
        });
    }

    /** Caps the referenced and exclusive bytes of the subvolume whose root is {@code subvol} (qgroup 0/id). */
    static void limit(Path subvol, long bytes) throws IOException {
        onDir(subvol, (fd, a) -> {
            MemorySegment args = a.allocate(48);
            args.set(JAVA_LONG, 0, 0); // 0 = the subvolume the fd belongs to
            args.set(JAVA_LONG, 8, QGROUP_LIMIT_MAX_RFER | QGROUP_LIMIT_MAX_EXCL);
            args.set(JAVA_LONG, 16, bytes);
            args.set(JAVA_LONG, 24, bytes);
            Linux.ioctl(fd, IOC_QGROUP_LIMIT, args, "BTRFS_IOC_QGROUP_LIMIT", subvol);
            return null;
        });
    }

    /** The subvolume (tree) id of the subvolume containing {@code path}. */
    static long subvolId(Path path) throws IOException {
        return onDir(path, (fd, a) -> {
            MemorySegment args = a.allocate(4096);
            args.set(JAVA_LONG, 0, 0);
            args.set(JAVA_LONG, 8, FIRST_FREE_OBJECTID);
            Linux.ioctl(fd, IOC_INO_LOOKUP, args, "BTRFS_IOC_INO_LOOKUP", path);
            return args.get(JAVA_LONG, 0);
        });
    }

    /**
     * Referenced bytes of qgroup 0/{@code subvolId}, read from the quota tree with BTRFS_IOC_TREE_SEARCH;
     * -1 when there is no such qgroup (quotas off).
     */
    static long qgroupReferenced(Path fsPath, long subvolId) throws IOException {
        return onDir(fsPath, (fd, a) -> {
            MemorySegment args = a.allocate(4096);
            args.set(JAVA_LONG, 0, QUOTA_TREE_OBJECTID); // tree_id
            args.set(JAVA_LONG, 8, 0);                   // min_objectid
            args.set(JAVA_LONG, 16, 0);                  // max_objectid
            args.set(JAVA_LONG, 24, subvolId);           // min_offset
            args.set(JAVA_LONG, 32, subvolId);           // max_offset
            args.set(JAVA_LONG, 40, 0);                  // min_transid
            args.set(JAVA_LONG, 48, -1L);                // max_transid
            args.set(JAVA_INT, 56, (int) QGROUP_INFO_KEY);
            args.set(JAVA_INT, 60, (int) QGROUP_INFO_KEY);
            args.set(JAVA_INT, 64, 1);                   // nr_items
            try {
                Linux.ioctl(fd, IOC_TREE_SEARCH, args, "BTRFS_IOC_TREE_SEARCH(quota)", fsPath);
            } catch (Linux.ErrnoException e) {
                if (e.errno() == Linux.ENOENT) return -1L; // no quota tree
                throw e;
            }
            if (args.get(JAVA_INT, 64) < 1) return -1L;
            // buf at 104: search header (32 bytes), then btrfs_qgroup_info_item {generation, rfer, ...}
            return args.get(JAVA_LONG, 104 + 32 + 8);
        });
    }

    /** FICLONE: {@code out} (an open, empty file) shares all of {@code in}'s extents; {@code what} names it in errors. */
    static void cloneFd(int in, int out, String what) throws IOException {
        Linux.ioctl(out, FICLONE, in, "FICLONE to", what);
    }

    static void syncfs(Path path) throws IOException {
        onDir(path, (fd, a) -> {
            Linux.syncfs(fd, path);
            return null;
        });
    }

    /** Work done with an open directory descriptor (the ioctl target) and an arena for its arguments. */
    @FunctionalInterface
    private interface DirCall<T> {
        T run(int fd, Arena a) throws IOException;
    }

    /** Opens {@code dir}, runs {@code body}, and always closes the descriptor again. */
    private static <T> T onDir(Path dir, DirCall<T> body) throws IOException {
        int fd = Linux.openDir(dir);
        try (Arena a = Arena.ofConfined()) {
            return body.run(fd, a);
        } finally {
            Linux.close(fd);
        }
    }
}
