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
import java.util.Arrays;
import java.util.List;

/**
 * The Linux syscalls the JDK lacks, through the Foreign Function &amp; Memory API: the one place in
 * ConTree that binds libc. Path calls act on the path itself and never follow a final symlink
 * (l* / AT_SYMLINK_NOFOLLOW variants, O_NOFOLLOW when the caller asks) except {@link #mknod}, which
 * creates. Every call captures errno; failures raise {@link ErrnoException} carrying errno and its text.
 * Each syscall is bound once: the calls relative to a directory live in {@link Dir}, and the path calls
 * here that have an {@code *at} form use it with AT_FDCWD.
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
    public static final int EBUSY = 16;
    public static final int EEXIST = 17;
    public static final int ENOTDIR = 20;
    public static final int EINVAL = 22;
    public static final int ERANGE = 34;
    public static final int ENAMETOOLONG = 36;
    public static final int ENODATA = 61;
    public static final int ENOTSUP = 95;
    public static final int EXDEV = 18;
    public static final int ENOTEMPTY = 39;
    public static final int ELOOP = 40;
    public static final int EPERM = 1;

    /** open(2) flags; {@link #open} always adds O_CLOEXEC so no descriptor leaks into child processes. */
    public static final int O_RDONLY = 0, O_WRONLY = 1, O_CREAT = 0100, O_EXCL = 0200, O_DIRECTORY = 0200000,
            O_NOFOLLOW = 0400000;
    static final int O_CLOEXEC = 02000000;

    static final int AT_FDCWD = -100;
    static final int AT_SYMLINK_NOFOLLOW = 0x100;
    static final int AT_EMPTY_PATH = 0x1000;
    static final int STATX_BASIC_STATS = 0x7ff;

    /** Result of {@link #lstat}: the fields of statx(2) we use (times with nanoseconds). */
    public record Stat(long dev, long ino, int mode, long nlink, int uid, int gid, long size,
                       long atimeSec, int atimeNsec, long mtimeSec, int mtimeNsec, long rdev, long blocks) {
        public int type() { return mode & S_IFMT; }
        public boolean isDir() { return type() == S_IFDIR; }
        public boolean isRegular() { return type() == S_IFREG; }
        public boolean isSymlink() { return type() == S_IFLNK; }
        public int rdevMajor() { return major(rdev); }
        public int rdevMinor() { return minor(rdev); }
        /** An overlayfs whiteout: a character device 0/0. */
        public boolean isWhiteout() { return type() == S_IFCHR && rdev == 0; }
    }

    /** A failed call; {@link #errno()} lets callers branch on the cause. */
    public static final class ErrnoException extends IOException {
        private final int errno;

        /** Message: "{@code op target}: strerror text (errno N)". */
        ErrnoException(String op, Object target, int errno) {
            super(op + " " + target + ": " + strerror(errno) + " (errno " + errno + ")");
            this.errno = errno;
        }

        public int errno() { return errno; }
    }

    static final Linker LINKER = Linker.nativeLinker();
    static final SymbolLookup LIBC = LINKER.defaultLookup();
    static final StructLayout CCS = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CCS.varHandle(StructLayout.PathElement.groupElement("errno"));

    static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;
    static final ValueLayout.OfLong L = ValueLayout.JAVA_LONG;
    static final ValueLayout A = ValueLayout.ADDRESS;

    // open and ioctl are variadic in C: the linker must know where the "..." starts.
    private static final MethodHandle OPEN = fn("open", FunctionDescriptor.of(I, A, I, I), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOSE = fn("close", FunctionDescriptor.of(I, I));
    private static final MethodHandle IOCTL_PTR = fn("ioctl", FunctionDescriptor.of(I, I, L, A), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle IOCTL_LONG = fn("ioctl", FunctionDescriptor.of(I, I, L, L), Linker.Option.firstVariadicArg(2));
    private static final MethodHandle MOUNT = fn("mount", FunctionDescriptor.of(I, A, A, A, L, A));
    private static final MethodHandle UMOUNT2 = fn("umount2", FunctionDescriptor.of(I, A, I));
    private static final MethodHandle SYNCFS = fn("syncfs", FunctionDescriptor.of(I, I));
    private static final MethodHandle LGETXATTR = fn("lgetxattr", FunctionDescriptor.of(L, A, A, A, L));
    private static final MethodHandle LSETXATTR = fn("lsetxattr", FunctionDescriptor.of(I, A, A, A, L, I));
    private static final MethodHandle LLISTXATTR = fn("llistxattr", FunctionDescriptor.of(L, A, A, L));
    private static final MethodHandle STRERROR = LINKER.downcallHandle(
            LIBC.find("strerror").orElseThrow(), FunctionDescriptor.of(A, I));
    private static final MethodHandle PRCTL = fn("prctl", FunctionDescriptor.of(I, I, L), Linker.Option.firstVariadicArg(1));
    private static final MethodHandle WAITID = fn("waitid", FunctionDescriptor.of(I, I, I, A, I));
    private static final MethodHandle SYSCALL2 = fn("syscall", FunctionDescriptor.of(L, L, I, I), Linker.Option.firstVariadicArg(1));
    private static final MethodHandle SYSCALL4 = fn("syscall", FunctionDescriptor.of(L, L, I, I, A, I), Linker.Option.firstVariadicArg(1));

    /** A libc downcall whose errno is captured into a state segment passed as the first argument. */
    static MethodHandle fn(String name, FunctionDescriptor fd, Linker.Option... extra) {
        Linker.Option[] opts = Arrays.copyOf(extra, extra.length + 1);
        opts[extra.length] = Linker.Option.captureCallState("errno");
        return LINKER.downcallHandle(LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError(name)), fd, opts);
    }

    /** The body of one call: gets a confined arena and the errno capture segment. */
    @FunctionalInterface
    interface Call<T> {
        T run(Arena a, MemorySegment errnoState) throws Throwable;
    }

    /**
     * Runs {@code body} with a fresh arena. invokeExact declares Throwable; natives throw nothing, so
     * anything checked that is not an IOException is a bug.
     */
    static <T> T call(Call<T> body) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            return body.run(a, a.allocate(CCS));
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** libc's convention: a negative result means failure, errno says why. */
    static long check(long r, MemorySegment st, String op, Object target) throws ErrnoException {
        if (r < 0) throw new ErrnoException(op, target, errno(st));
        return r;
    }

    static int errno(MemorySegment st) {
        return (int) ERRNO.get(st, 0L);
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

    // ---- file descriptors, ioctl, mounts ----

    /** open(2) (with O_CLOEXEC); returns the descriptor, which the caller must {@link #close}. */
    public static int open(Path path, int flags, int mode) throws IOException {
        return call((a, st) -> (int) check((int) OPEN.invokeExact(st, cpath(a, path), flags | O_CLOEXEC, mode),
                st, "open", path));
    }

    /** A read-only descriptor for a directory, e.g. as the target of a btrfs ioctl. */
    public static int openDir(Path path) throws IOException {
        return open(path, O_RDONLY | O_DIRECTORY, 0);
    }

    /** close(2); errors are ignored: the descriptor is gone either way. */
    public static void close(int fd) {
        try {
            call((a, st) -> (int) CLOSE.invokeExact(st, fd));
        } catch (IOException e) {
            throw new AssertionError(e); // call() only throws IOExceptions the body throws; this one throws none
        }
    }

    /** ioctl(2) with a pointer argument; {@code what} names the request in error messages. */
    public static void ioctl(int fd, long request, MemorySegment arg, String what, Object target) throws IOException {
        call((a, st) -> check((int) IOCTL_PTR.invokeExact(st, fd, request, arg), st, what, target));
    }

    /** ioctl(2) with an integer argument (e.g. FICLONE takes the source fd). */
    public static void ioctl(int fd, long request, long arg, String what, Object target) throws IOException {
        call((a, st) -> check((int) IOCTL_LONG.invokeExact(st, fd, request, arg), st, what, target));
    }

    /** mount(2); {@code data} (file system options) may be null. */
    public static void mount(String source, Path target, String fstype, long flags, String data) throws IOException {
        call((a, st) -> {
            MemorySegment d = data == null ? MemorySegment.NULL : cstr(a, data);
            int r = (int) MOUNT.invokeExact(st, cstr(a, source), cpath(a, target), cstr(a, fstype), flags, d);
            return check(r, st, "mount " + fstype, target);
        });
    }

    /** umount2(2). */
    public static void umount2(Path target, int flags) throws IOException {
        call((a, st) -> check((int) UMOUNT2.invokeExact(st, cpath(a, target), flags), st, "umount", target));
    }

    /** syncfs(2) of the file system holding {@code fd}; {@code what} names it in error messages. */
    public static void syncfs(int fd, Object what) throws IOException {
        call((a, st) -> check((int) SYNCFS.invokeExact(st, fd), st, "syncfs", what));
    }

    // ---- inodes ----

    /** mknod(2): {@code mode} includes the type bits (S_IFCHR, S_IFBLK, S_IFIFO, S_IFREG, S_IFSOCK). */
    public static void mknod(Path path, int mode, long dev) throws IOException {
        Dir.mknodAt(AT_FDCWD, pathBytes(path), mode, dev, path);
    }

    /** An overlayfs whiteout: character device 0/0. */
    public static void mkwhiteout(Path path) throws IOException {
        mknod(path, S_IFCHR, 0);
    }

    /** lchown(2): changes the link itself, never its target. */
    public static void lchown(Path path, int uid, int gid) throws IOException {
        Dir.chownAt(AT_FDCWD, pathBytes(path), uid, gid, "lchown", path);
    }

    /**
     * fchmodat(2) with AT_SYMLINK_NOFOLLOW: sets all 12 permission bits (incl. setuid/setgid/sticky,
     * which Java's PosixFilePermission cannot express). Fails (ENOTSUP) on a symlink instead of
     * touching its target.
     */
    public static void lchmod(Path path, int mode) throws IOException {
        Dir.chmodAt(AT_FDCWD, pathBytes(path), mode, "fchmodat", path);
    }

    /** utimensat(2) with AT_SYMLINK_NOFOLLOW: sets atime and mtime of the path itself (symlinks too). */
    public static void lutimes(Path path, long atimeSec, int atimeNsec, long mtimeSec, int mtimeNsec) throws IOException {
        Dir.utimesAt(AT_FDCWD, pathBytes(path), atimeSec, atimeNsec, mtimeSec, mtimeNsec, path);
    }

    /** statx(2) with AT_SYMLINK_NOFOLLOW. */
    public static Stat lstat(Path path) throws IOException {
        Stat s = lstatOrNull(path);
        if (s == null) throw new ErrnoException("statx", path, ENOENT);
        return s;
    }

    /** Like {@link #lstat} but {@code null} when the path does not exist (ENOENT/ENOTDIR). */
    public static Stat lstatOrNull(Path path) throws IOException {
        return Dir.statxAtOrNull(AT_FDCWD, pathBytes(path), AT_SYMLINK_NOFOLLOW, path);
    }

    /** Decodes a struct statx buffer (256 bytes) filled with STATX_BASIC_STATS. */
    static Stat parseStatx(MemorySegment buf) {
        // Offsets into struct statx (<linux/stat.h>).
        int nlink = buf.get(I, 16);
        int uid = buf.get(I, 20);
        int gid = buf.get(I, 24);
        int mode = Short.toUnsignedInt(buf.get(ValueLayout.JAVA_SHORT, 28));
        long ino = buf.get(L, 32);
        long size = buf.get(L, 40);
        long blocks = buf.get(L, 48); // 512-byte units, delayed allocation included
        long atime = buf.get(L, 64);
        int atimeNs = buf.get(I, 72);
        long mtime = buf.get(L, 112);
        int mtimeNs = buf.get(I, 120);
        int rdevMajor = buf.get(I, 128), rdevMinor = buf.get(I, 132);
        int devMajor = buf.get(I, 136), devMinor = buf.get(I, 140);
        return new Stat(makedev(devMajor, devMinor), ino, mode, Integer.toUnsignedLong(nlink), uid, gid, size,
                atime, atimeNs, mtime, mtimeNs, makedev(rdevMajor, rdevMinor), blocks);
    }

    // ---- extended attributes (all namespaces this process can see; root sees trusted.*) ----

    /** lgetxattr(2); {@code null} when the attribute is absent. */
    public static byte[] lgetxattr(Path path, String name) throws IOException {
        return lgetxattrBytes(pathBytes(path), name, path);
    }

    /** lsetxattr(2) with flags 0 (create or replace). */
    public static void lsetxattr(Path path, String name, byte[] value) throws IOException {
        lsetxattrBytes(pathBytes(path), name, value, path);
    }

    /** llistxattr(2): attribute names; empty when the file system has no xattr support. */
    public static List<String> llistxattr(Path path) throws IOException {
        return llistxattrBytes(pathBytes(path), path);
    }

    /** {@link #lgetxattr} of a path given as bytes; {@code what} names it in errors. */
    static byte[] lgetxattrBytes(byte[] path, String name, Object what) throws IOException {
        return call((a, st) -> {
            MemorySegment p = Dir.bytes(a, path), n = cstr(a, name);
            for (int attempt = 0; ; attempt++) {
                long size = (long) LGETXATTR.invokeExact(st, p, n, MemorySegment.NULL, 0L);
                if (size < 0 && errno(st) == ENODATA) return null;
                check(size, st, "lgetxattr " + name, what);
                MemorySegment buf = a.allocate(Math.max(1, size));
                long got = (long) LGETXATTR.invokeExact(st, p, n, buf, size);
                if (got < 0) {
                    int e = errno(st);
                    if (e == ENODATA) return null;
                    if (e == ERANGE && attempt < 5) continue; // grew between the calls
                }
                check(got, st, "lgetxattr " + name, what);
                return buf.asSlice(0, got).toArray(ValueLayout.JAVA_BYTE);
            }
        });
    }

    static void lsetxattrBytes(byte[] path, String name, byte[] value, Object what) throws IOException {
        call((a, st) -> {
            MemorySegment v = a.allocate(Math.max(1, value.length));
            MemorySegment.copy(value, 0, v, ValueLayout.JAVA_BYTE, 0, value.length);
            int r = (int) LSETXATTR.invokeExact(st, Dir.bytes(a, path), cstr(a, name), v, (long) value.length, 0);
            return check(r, st, "lsetxattr " + name, what);
        });
    }

    static List<String> llistxattrBytes(byte[] path, Object what) throws IOException {
        return call((a, st) -> {
            MemorySegment p = Dir.bytes(a, path);
            for (int attempt = 0; ; attempt++) {
                long size = (long) LLISTXATTR.invokeExact(st, p, MemorySegment.NULL, 0L);
                if (size < 0 && errno(st) == ENOTSUP) return List.<String>of();
                check(size, st, "llistxattr", what);
                if (size == 0) return List.<String>of();
                MemorySegment buf = a.allocate(size);
                long got = (long) LLISTXATTR.invokeExact(st, p, buf, size);
                if (got < 0 && errno(st) == ERANGE && attempt < 5) continue; // grew between the calls
                check(got, st, "llistxattr", what);
                return splitNul(buf.asSlice(0, got).toArray(ValueLayout.JAVA_BYTE));
            }
        });
    }

    private static byte[] pathBytes(Path p) throws IOException {
        String s = p.toString();
        if (s.indexOf('\0') >= 0) throw new IOException("NUL byte in " + s.replace('\0', '?'));
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static List<String> splitNul(byte[] b) {
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

    // ---- processes ----

    public static final int SIGKILL = 9, SIGTERM = 15;
    public static final int ECHILD = 10, ESRCH = 3;
    static final int P_ALL = 0, P_PIDFD = 3;
    static final int WNOHANG = 1, WEXITED = 4, WNOWAIT = 0x01000000;
    private static final int PR_SET_CHILD_SUBREAPER = 36;
    private static final long SYS_PIDFD_SEND_SIGNAL = 424, SYS_PIDFD_OPEN = 434; // the same on every architecture
    private static final int CLD_KILLED = 2, CLD_DUMPED = 3;
    private static final long SIGINFO_SIZE = 128;

    /** How a child ended, from waitid(2)'s siginfo. */
    public record ChildStatus(int pid, boolean signaled, int value, boolean coreDumped) {
        /** As {@code java.lang.Process} reports it: the exit status, or 128 + the signal. */
        public int exitValue() { return signaled ? 128 + value : value; }
    }

    /**
     * prctl(PR_SET_CHILD_SUBREAPER): orphans among our descendants are re-parented to this process instead of
     * PID 1, so they become our children (waitable, and our job to reap).
     */
    public static void setChildSubreaper() throws IOException {
        call((a, st) -> check((int) PRCTL.invokeExact(st, PR_SET_CHILD_SUBREAPER, 1L), st, "prctl", "PR_SET_CHILD_SUBREAPER"));
    }

    /** pidfd_open(2) (close-on-exec): a descriptor that names this process, never a later one with its pid. */
    public static int pidfdOpen(int pid) throws IOException {
        return call((a, st) -> (int) check((long) SYSCALL2.invokeExact(st, SYS_PIDFD_OPEN, pid, 0), st, "pidfd_open", pid));
    }

    /** pidfd_send_signal(2); false when the process has already exited (ESRCH). */
    public static boolean pidfdSendSignal(int pidfd, int sig) throws IOException {
        return call((a, st) -> {
            long r = (long) SYSCALL4.invokeExact(st, SYS_PIDFD_SEND_SIGNAL, pidfd, sig, MemorySegment.NULL, 0);
            if (r < 0 && errno(st) == ESRCH) return false;
            check(r, st, "pidfd_send_signal", "signal " + sig);
            return true;
        });
    }

    /**
     * waitid(2) for an exited child ({@code WEXITED} is implied); {@code null} when, with {@code WNOHANG}, none has
     * exited yet. With {@code WNOWAIT} the child stays waitable. No such child is an {@link ErrnoException} (ECHILD).
     */
    static ChildStatus waitid(int idtype, int id, int options) throws IOException {
        return call((a, st) -> {
            MemorySegment si = a.allocate(SIGINFO_SIZE, 8); // zeroed: si_pid stays 0 when nothing is reported
            int r;
            do {
                r = (int) WAITID.invokeExact(st, idtype, id, si, options | WEXITED);
            } while (r < 0 && errno(st) == 4); // EINTR
            check(r, st, "waitid", id);
            // siginfo_t on 64-bit Linux: si_code at 8, then _sigchld: si_pid at 16, si_status at 24.
            int pid = si.get(I, 16);
            if (pid == 0) return null;
            int code = si.get(I, 8);
            boolean signaled = code == CLD_KILLED || code == CLD_DUMPED;
            return new ChildStatus(pid, signaled, si.get(I, 24), code == CLD_DUMPED);
        });
    }

    // ---- helpers ----

    private static MemorySegment cpath(Arena a, Path p) throws IOException {
        return cstr(a, p.toString());
    }

    /** A C string; a NUL inside would silently truncate it, so refuse. */
    static MemorySegment cstr(Arena a, String s) throws IOException {
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
