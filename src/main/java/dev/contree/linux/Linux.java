package dev.contree.linux;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The few Linux syscalls the JDK lacks, through the Foreign Function &amp; Memory API.
 * Every call acts on the path itself and never follows a final symlink (l* / AT_SYMLINK_NOFOLLOW
 * variants) except {@link #mknod}, which creates (and so cannot follow). Failures raise
 * {@link ErrnoException} carrying errno and its text.
 */
public final class Linux {
    private Linux() {}

    public static final int S_IFMT = 0170000;
    public static final int S_IFSOCK = 0140000;
    public static final int S_IFLNK = 0120000;
    public static final int S_IFREG = 0100000;
    public static final int S_IFBLK = 0060000;
    public static final int S_IFDIR = 0040000;
    public static final int S_IFCHR = 0020000;
    public static final int S_IFIFO = 0010000;

    public static final int ENOENT = 2;
    public static final int EEXIST = 17;
    public static final int ENODATA = 61;
    public static final int ERANGE = 34;
    public static final int ENOTSUP = 95;

    private static final int AT_FDCWD = -100;
    private static final int AT_SYMLINK_NOFOLLOW = 0x100;
    private static final int STATX_BASIC_STATS = 0x7ff;

    /** Result of {@link #lstat}: the fields of statx(2) we use. */
    public record Stat(long dev, long ino, int mode, long nlink, int uid, int gid, long size,
                       long mtimeSec, int mtimeNsec, long rdev) {
        public int type() { return mode & S_IFMT; }
        public boolean isDir() { return type() == S_IFDIR; }
        public boolean isRegular() { return type() == S_IFREG; }
        public boolean isSymlink() { return type() == S_IFLNK; }
        public int rdevMajor() { return major(rdev); }
        public int rdevMinor() { return minor(rdev); }
        /** An overlayfs whiteout: a character device 0/0. */
        public boolean isWhiteout() { return type() == S_IFCHR && rdev == 0; }
    }

    /** A failed syscall. */
    public static final class ErrnoException extends IOException {
        private final int errno;
        ErrnoException(String call, Path path, int errno) {
            super(call + "(" + path + "): " + strerror(errno) + " (errno " + errno + ")");
            this.errno = errno;
        }
        public int errno() { return errno; }
    }

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CCS = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CCS.varHandle(StructLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE = Linker.Option.captureCallState("errno");

    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong L = ValueLayout.JAVA_LONG;
    private static final ValueLayout A = ValueLayout.ADDRESS;

    private static final MethodHandle MKNOD = fn("mknod", FunctionDescriptor.of(I, A, I, L));
    private static final MethodHandle LGETXATTR = fn("lgetxattr", FunctionDescriptor.of(L, A, A, A, L));
    private static final MethodHandle LSETXATTR = fn("lsetxattr", FunctionDescriptor.of(I, A, A, A, L, I));
    private static final MethodHandle LLISTXATTR = fn("llistxattr", FunctionDescriptor.of(L, A, A, L));
    private static final MethodHandle LCHOWN = fn("lchown", FunctionDescriptor.of(I, A, I, I));
    private static final MethodHandle UTIMENSAT = fn("utimensat", FunctionDescriptor.of(I, I, A, A, I));
    private static final MethodHandle FCHMODAT = fn("fchmodat", FunctionDescriptor.of(I, I, A, I, I));
    private static final MethodHandle STATX = fn("statx", FunctionDescriptor.of(I, I, A, I, I, A));
    private static final MethodHandle STRERROR = LINKER.downcallHandle(
            LIBC.find("strerror").orElseThrow(), FunctionDescriptor.of(A, I));

    private static MethodHandle fn(String name, FunctionDescriptor fd) {
        return LINKER.downcallHandle(LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError(name)), fd, CAPTURE);
    }

    public static long makedev(int major, int minor) {
        long ma = major & 0xffffffffL, mi = minor & 0xffffffffL;
        return ((ma & 0xfffff000L) << 32) | ((ma & 0xfffL) << 8) | ((mi & 0xffffff00L) << 12) | (mi & 0xffL);
    }

    public static int major(long dev) {
        return (int) (((dev >>> 32) & 0xfffff000L) | ((dev >>> 8) & 0xfffL));
    }

    public static int minor(long dev) {
        return (int) (((dev >>> 12) & 0xffffff00L) | (dev & 0xffL));
    }

    /** mknod(2): {@code mode} includes the type bits (S_IFCHR, S_IFBLK, S_IFIFO, S_IFREG, S_IFSOCK). */
    public static void mknod(Path path, int mode, long dev) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CCS);
            int r = (int) MKNOD.invokeExact(st, cpath(a, path), mode, dev);
            check(r, st, "mknod", path);
        } catch (IOException e) { throw e; } catch (Throwable t) { throw new AssertionError(t); }
    }

    /** An overlayfs whiteout: character device 0/0. */
    public static void mkwhiteout(Path path) throws IOException {
        mknod(path, S_IFCHR, 0);
    }

    /** lgetxattr(2); {@code null} when the attribute is absent. */
    public static byte[] lgetxattr(Path path, String name) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CCS);
            MemorySegment p = cpath(a, path), n = cstr(a, name);
            for (int attempt = 0; ; attempt++) {
                long size = (long) LGETXATTR.invokeExact(st, p, n, MemorySegment.NULL, 0L);
                if (size < 0) {
                    int e = (int) ERRNO.get(st, 0L);
                    if (e == ENODATA) return null;
                    throw new ErrnoException("lgetxattr " + name, path, e);
                }
                MemorySegment buf = a.allocate(Math.max(1, size));
                long got = (long) LGETXATTR.invokeExact(st, p, n, buf, size);
                if (got < 0) {
                    int e = (int) ERRNO.get(st, 0L);
                    if (e == ENODATA) return null;
                    if (e == ERANGE && attempt < 5) continue; // grew between the calls
                    throw new ErrnoException("lgetxattr " + name, path, e);
                }
                return buf.asSlice(0, got).toArray(ValueLayout.JAVA_BYTE);
            }
        } catch (IOException e) { throw e; } catch (Throwable t) { throw new AssertionError(t); }
    }

    /** lsetxattr(2) with flags 0 (create or replace). */
    public static void lsetxattr(Path path, String name, byte[] value) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CCS);
            MemorySegment v = a.allocate(Math.max(1, value.length));
            MemorySegment.copy(value, 0, v, ValueLayout.JAVA_BYTE, 0, value.length);
            int r = (int) LSETXATTR.invokeExact(st, cpath(a, path), cstr(a, name), v, (long) value.length, 0);
            check(r, st, "lsetxattr " + name, path);
        } catch (IOException e) { throw e; } catch (Throwable t) { throw new AssertionError(t); }
    }

    /** llistxattr(2): names of every attribute this process can see (root sees trusted.*). */
    public static List<String> llistxattr(Path path) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CCS);
            MemorySegment p = cpath(a, path);
            for (int attempt = 0; ; attempt++) {
                long size = (long) LLISTXATTR.invokeExact(st, p, MemorySegment.NULL, 0L);
                if (size < 0) {
                    int e = (int) ERRNO.get(st, 0L);
                    if (e == ENOTSUP) return List.of();
                    throw new ErrnoException("llistxattr", path, e);
                }
                if (size == 0) return List.of();
                MemorySegment buf = a.allocate(size);
                long got = (long) LLISTXATTR.invokeExact(st, p, buf, size);
                if (got < 0) {
                    int e = (int) ERRNO.get(st, 0L);
                    if (e == ERANGE && attempt < 5) continue;
                    throw new ErrnoException("llistxattr", path, e);
                }
                byte[] b = buf.asSlice(0, got).toArray(ValueLayout.JAVA_BYTE);
                List<String> names = new ArrayList<>();
                int start = 0;
                for (int i = 0; i < b.length; i++) {
                    if (b[i] == 0) {
                        if (i > start) names.add(new String(b, start, i - start, StandardCharsets.UTF_8));
                        start = i + 1;
                    }
                }
                return names;
            }
        } catch (IOException e) { throw e; } catch (Throwable t) { throw new AssertionError(t); }
    }

    /** lchown(2): changes the link itself, never its target. */
    public static void lchown(Path path, int uid, int gid) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CCS);
            int r = (int) LCHOWN.invokeExact(st, cpath(a, path), uid, gid);
            check(r, st, "lchown", path);
        } catch (IOException e) { throw e; } catch (Throwable t) { throw new AssertionError(t); }
    }

    /** utimensat(2) with AT_SYMLINK_NOFOLLOW: sets atime and mtime of the path itself (symlinks too). */
    public static void lutimes(Path path, long atimeSec, int atimeNsec, long mtimeSec, int mtimeNsec) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CCS);
            MemorySegment ts = a.allocate(32, 8);
            ts.set(L, 0, atimeSec);
            ts.set(L, 8, atimeNsec);
            ts.set(L, 16, mtimeSec);
            ts.set(L, 24, mtimeNsec);
            int r = (int) UTIMENSAT.invokeExact(st, AT_FDCWD, cpath(a, path), ts, AT_SYMLINK_NOFOLLOW);
            check(r, st, "utimensat", path);
        } catch (IOException e) { throw e; } catch (Throwable t) { throw new AssertionError(t); }
    }

    /**
     * fchmodat(2) with AT_SYMLINK_NOFOLLOW: sets all 12 permission bits (incl. setuid/setgid/sticky,
     * which Java's PosixFilePermission cannot express). Fails (ENOTSUP) on a symlink instead of
     * touching its target.
     */
    public static void lchmod(Path path, int mode) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CCS);
            int r = (int) FCHMODAT.invokeExact(st, AT_FDCWD, cpath(a, path), mode & 07777, AT_SYMLINK_NOFOLLOW);
            check(r, st, "fchmodat", path);
        } catch (IOException e) { throw e; } catch (Throwable t) { throw new AssertionError(t); }
    }

    /** statx(2) with AT_SYMLINK_NOFOLLOW. */
    public static Stat lstat(Path path) throws IOException {
        Stat s = lstatOrNull(path);
        if (s == null) throw new ErrnoException("statx", path, ENOENT);
        return s;
    }

    /** Like {@link #lstat} but {@code null} when the path does not exist (ENOENT/ENOTDIR). */
    public static Stat lstatOrNull(Path path) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CCS);
            MemorySegment buf = a.allocate(256, 8);
            int r = (int) STATX.invokeExact(st, AT_FDCWD, cpath(a, path), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, buf);
            if (r != 0) {
                int e = (int) ERRNO.get(st, 0L);
                if (e == ENOENT || e == 20 /* ENOTDIR */) return null;
                throw new ErrnoException("statx", path, e);
            }
            int nlink = buf.get(I, 16);
            int uid = buf.get(I, 20);
            int gid = buf.get(I, 24);
            int mode = Short.toUnsignedInt(buf.get(ValueLayout.JAVA_SHORT, 28));
            long ino = buf.get(L, 32);
            long size = buf.get(L, 40);
            long mtime = buf.get(L, 112);
            int mtimeNs = buf.get(I, 120);
            int rdevMajor = buf.get(I, 128), rdevMinor = buf.get(I, 132);
            int devMajor = buf.get(I, 136), devMinor = buf.get(I, 140);
            return new Stat(makedev(devMajor, devMinor), ino, mode, Integer.toUnsignedLong(nlink), uid, gid, size,
                    mtime, mtimeNs, makedev(rdevMajor, rdevMinor));
        } catch (IOException e) { throw e; } catch (Throwable t) { throw new AssertionError(t); }
    }

    private static void check(int r, MemorySegment st, String call, Path path) throws ErrnoException {
        if (r != 0) throw new ErrnoException(call, path, (int) ERRNO.get(st, 0L));
    }

    private static MemorySegment cpath(Arena a, Path p) throws IOException {
        return cstr(a, p.toString());
    }

    private static MemorySegment cstr(Arena a, String s) throws IOException {
        if (s.indexOf('\0') >= 0) throw new IOException("NUL byte in " + s.replace('\0', '?'));
        return a.allocateFrom(s, StandardCharsets.UTF_8);
    }

    static String strerror(int errno) {
        try {
            MemorySegment s = (MemorySegment) STRERROR.invokeExact(errno);
            return s.reinterpret(1024).getString(0, StandardCharsets.UTF_8);
        } catch (Throwable t) {
            return "errno " + errno;
        }
    }
}
