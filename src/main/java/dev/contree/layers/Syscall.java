package dev.contree.layers;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Thin libc bindings (java.lang.foreign) for the few system calls the JDK lacks. Every call captures errno
 * and failures become {@link IOException}s carrying strerror text, the operation and the path.
 */
final class Syscall {
    static final int O_RDONLY = 0, O_WRONLY = 1, O_CREAT = 0100, O_EXCL = 0200, O_NOFOLLOW = 0400000,
            O_DIRECTORY = 0200000, O_CLOEXEC = 02000000;
    static final int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100;
    static final int EEXIST = 17, ENOENT = 2, EBUSY = 16, EINVAL = 22, ENODATA = 61, ERANGE = 34, EDQUOT = 122;
    static final int S_IFCHR = 0020000, S_IFMT = 0170000;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final MemoryLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));

    private static final MethodHandle OPEN = fn("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), 2);
    private static final MethodHandle CLOSE = fn("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT), -1);
    private static final MethodHandle IOCTL_PTR = fn("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS), 2);
    private static final MethodHandle IOCTL_LONG = fn("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), 2);
    private static final MethodHandle MOUNT = fn("mount", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS), -1);
    private static final MethodHandle UMOUNT2 = fn("umount2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), -1);
    private static final MethodHandle MKNOD = fn("mknod", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG), -1);
    private static final MethodHandle LCHOWN = fn("lchown", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), -1);
    private static final MethodHandle CHMOD = fn("chmod", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), -1);
    private static final MethodHandle UTIMENSAT = fn("utimensat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT), -1);
    private static final MethodHandle LGETXATTR = fn("lgetxattr", FunctionDescriptor.of(JAVA_LONG, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG), -1);
    private static final MethodHandle LSETXATTR = fn("lsetxattr", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT), -1);
    private static final MethodHandle LLISTXATTR = fn("llistxattr", FunctionDescriptor.of(JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG), -1);
    private static final MethodHandle SYNCFS = fn("syncfs", FunctionDescriptor.of(JAVA_INT, JAVA_INT), -1);
    private static final MethodHandle STRERROR = LINKER.downcallHandle(LIBC.find("strerror").orElseThrow(),
            FunctionDescriptor.of(ADDRESS, JAVA_INT));

    private Syscall() {}

    private static MethodHandle fn(String name, FunctionDescriptor desc, int firstVariadic) {
        MemorySegment sym = LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError(name));
        return firstVariadic < 0
                ? LINKER.downcallHandle(sym, desc, Linker.Option.captureCallState("errno"))
                : LINKER.downcallHandle(sym, desc, Linker.Option.firstVariadicArg(firstVariadic),
                        Linker.Option.captureCallState("errno"));
    }

    /** Thrown for a failed call; {@link #errno()} lets callers branch on the cause. */
    static final class ErrnoException extends IOException {
        private final int errno;

        ErrnoException(String op, Object target, int errno) {
            super(op + " " + target + ": " + strerror(errno) + " (errno " + errno + ")");
            this.errno = errno;
        }

        int errno() { return errno; }
    }

    static String strerror(int errno) {
        try {
            MemorySegment s = (MemorySegment) STRERROR.invokeExact(errno);
            return s.reinterpret(1024).getString(0);
        } catch (Throwable t) {
            return "errno " + errno;
        }
    }

    private static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }

    static int open(Path path, int flags, int mode) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            int fd = (int) OPEN.invokeExact(st, a.allocateFrom(path.toString()), flags | O_CLOEXEC, mode);
            if (fd < 0) throw new ErrnoException("open", path, errno(st));
            return fd;
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static int openDir(Path path) throws IOException {
        return open(path, O_RDONLY | O_DIRECTORY, 0);
    }

    static void close(int fd) {
        try (Arena a = Arena.ofConfined()) {
            int ignored = (int) CLOSE.invokeExact(a.allocate(CAPTURE), fd);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** ioctl with a pointer argument; {@code what} names the request in error messages. */
    static void ioctl(int fd, long request, MemorySegment arg, String what, Object target) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            int rc = (int) IOCTL_PTR.invokeExact(st, fd, request, arg);
            if (rc < 0) throw new ErrnoException(what, target, errno(st));
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** ioctl with an integer argument (e.g. FICLONE takes the source fd). */
    static void ioctl(int fd, long request, long arg, String what, Object target) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            int rc = (int) IOCTL_LONG.invokeExact(st, fd, request, arg);
            if (rc < 0) throw new ErrnoException(what, target, errno(st));
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void mount(String source, Path target, String fstype, long flags, String data) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            MemorySegment d = data == null ? MemorySegment.NULL : a.allocateFrom(data);
            int rc = (int) MOUNT.invokeExact(st, a.allocateFrom(source), a.allocateFrom(target.toString()),
                    a.allocateFrom(fstype), flags, d);
            if (rc < 0) throw new ErrnoException("mount " + fstype, target, errno(st));
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void umount2(Path target, int flags) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            int rc = (int) UMOUNT2.invokeExact(st, a.allocateFrom(target.toString()), flags);
            if (rc < 0) throw new ErrnoException("umount", target, errno(st));
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void mknod(Path path, int mode, long dev) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            int rc = (int) MKNOD.invokeExact(st, a.allocateFrom(path.toString()), mode, dev);
            if (rc < 0) throw new ErrnoException("mknod", path, errno(st));
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void lchown(Path path, int uid, int gid) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            int rc = (int) LCHOWN.invokeExact(st, a.allocateFrom(path.toString()), uid, gid);
            if (rc < 0) throw new ErrnoException("lchown", path, errno(st));
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** chmod with the full mode including setuid/setgid/sticky bits (never on symlinks). */
    static void chmod(Path path, int mode) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            int rc = (int) CHMOD.invokeExact(st, a.allocateFrom(path.toString()), mode & 07777);
            if (rc < 0) throw new ErrnoException("chmod", path, errno(st));
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Sets atime and mtime (nanosecond precision) without following symlinks. */
    static void setTimes(Path path, long atimeSec, long atimeNsec, long mtimeSec, long mtimeNsec) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            MemorySegment ts = a.allocate(JAVA_LONG, 4);
            ts.setAtIndex(JAVA_LONG, 0, atimeSec);
            ts.setAtIndex(JAVA_LONG, 1, atimeNsec);
            ts.setAtIndex(JAVA_LONG, 2, mtimeSec);
            ts.setAtIndex(JAVA_LONG, 3, mtimeNsec);
            int rc = (int) UTIMENSAT.invokeExact(st, AT_FDCWD, a.allocateFrom(path.toString()), ts, AT_SYMLINK_NOFOLLOW);
            if (rc < 0) throw new ErrnoException("utimensat", path, errno(st));
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Names of all extended attributes (any namespace) of the path itself, never following a symlink. */
    static String[] listXattrs(Path path) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            MemorySegment p = a.allocateFrom(path.toString());
            for (long size = 1024; ; size *= 4) {
                MemorySegment buf = a.allocate(size);
                long n = (long) LLISTXATTR.invokeExact(st, p, buf, size);
                if (n < 0) {
                    int e = errno(st);
                    if (e == ERANGE) continue;
                    throw new ErrnoException("llistxattr", path, e);
                }
                if (n == 0) return new String[0];
                String all = new String(buf.asSlice(0, n - 1).toArray(ValueLayout.JAVA_BYTE), java.nio.charset.StandardCharsets.UTF_8);
                return all.split("\0");
            }
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Value of an extended attribute, or null when it is absent. */
    static byte[] getXattr(Path path, String name) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            MemorySegment p = a.allocateFrom(path.toString());
            MemorySegment nm = a.allocateFrom(name);
            for (long size = 256; ; size *= 8) {
                MemorySegment buf = a.allocate(size);
                long n = (long) LGETXATTR.invokeExact(st, p, nm, buf, size);
                if (n < 0) {
                    int e = errno(st);
                    if (e == ERANGE && size < (1 << 20)) continue;
                    if (e == ENODATA) return null;
                    throw new ErrnoException("lgetxattr " + name, path, e);
                }
                return buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
            }
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void setXattr(Path path, String name, byte[] value) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            MemorySegment v = a.allocate(Math.max(1, value.length));
            MemorySegment.copy(value, 0, v, ValueLayout.JAVA_BYTE, 0, value.length);
            int rc = (int) LSETXATTR.invokeExact(st, a.allocateFrom(path.toString()), a.allocateFrom(name), v,
                    (long) value.length, 0);
            if (rc < 0) throw new ErrnoException("lsetxattr " + name, path, errno(st));
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static void syncfs(int fd, Object what) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE);
            int rc = (int) SYNCFS.invokeExact(st, fd);
            if (rc < 0) throw new ErrnoException("syncfs", what, errno(st));
        } catch (IOException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }
}
