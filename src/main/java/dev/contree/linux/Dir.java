package dev.contree.linux;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static dev.contree.linux.Linux.A;
import static dev.contree.linux.Linux.I;
import static dev.contree.linux.Linux.L;

/**
 * An open directory of a tree the sandbox or an image controls, and every operation on the names in it,
 * relative to its descriptor. This is how the server touches hostile trees (upper dirs, layers, a sandbox's
 * rootfs): nothing here ever follows a symlink.
 *
 * <ul>
 *   <li>{@link #openDir} resolves a relative path with {@code openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 *       RESOLVE_NO_MAGICLINKS)}: a symlink in any component fails with ELOOP, {@code ..} cannot climb out,
 *       and the result is the directory itself, not whatever a path string names a moment later.</li>
 *   <li>Every other call takes a single name ({@link Name}: bytes, no '/', not "." or "..") inside this
 *       directory and uses the {@code *at} syscall with AT_SYMLINK_NOFOLLOW / O_NOFOLLOW.</li>
 *   <li>Names are bytes: {@link #list} returns what getdents64 returned, any byte string a Linux filename
 *       can be, and hands it back unchanged.</li>
 * </ul>
 * Error messages name the {@code label} given at open (an image path, never a host path), so they can be
 * shown to clients.
 */
public final class Dir implements AutoCloseable {
    private static final long RESOLVE_NO_MAGICLINKS = 0x02, RESOLVE_NO_SYMLINKS = 0x04, RESOLVE_BENEATH = 0x08;
    private static final long SYS_OPENAT2 = 437;
    private static final int AT_REMOVEDIR = 0x200;

    private static final MethodHandle SYSCALL_OPENAT2 = Linux.fn("syscall",
            FunctionDescriptor.of(L, L, I, A, A, L), Linker.Option.firstVariadicArg(1));
    private static final MethodHandle GETDENTS64 = Linux.fn("getdents64", FunctionDescriptor.of(L, I, A, L));
    private static final MethodHandle OPENAT = Linux.fn("openat", FunctionDescriptor.of(I, I, A, I, I),
            Linker.Option.firstVariadicArg(3));
    private static final MethodHandle STATX = Linux.fn("statx", FunctionDescriptor.of(I, I, A, I, I, A));
    private static final MethodHandle UNLINKAT = Linux.fn("unlinkat", FunctionDescriptor.of(I, I, A, I));
    private static final MethodHandle MKDIRAT = Linux.fn("mkdirat", FunctionDescriptor.of(I, I, A, I));
    private static final MethodHandle MKNODAT = Linux.fn("mknodat", FunctionDescriptor.of(I, I, A, I, L));
    private static final MethodHandle SYMLINKAT = Linux.fn("symlinkat", FunctionDescriptor.of(I, A, I, A));
    private static final MethodHandle READLINKAT = Linux.fn("readlinkat", FunctionDescriptor.of(L, I, A, A, L));
    private static final MethodHandle LINKAT = Linux.fn("linkat", FunctionDescriptor.of(I, I, A, I, A, I));
    private static final MethodHandle RENAMEAT = Linux.fn("renameat", FunctionDescriptor.of(I, I, A, I, A));
    private static final MethodHandle FCHOWNAT = Linux.fn("fchownat", FunctionDescriptor.of(I, I, A, I, I, I));
    private static final MethodHandle FCHMODAT = Linux.fn("fchmodat", FunctionDescriptor.of(I, I, A, I, I));
    private static final MethodHandle FCHMOD = Linux.fn("fchmod", FunctionDescriptor.of(I, I, I));
    private static final MethodHandle UTIMENSAT = Linux.fn("utimensat", FunctionDescriptor.of(I, I, A, A, I));
    private static final MethodHandle LSEEK = Linux.fn("lseek", FunctionDescriptor.of(L, I, L, I));
    private static final int SEEK_DATA = 3, SEEK_HOLE = 4, ENXIO = 6;
    private static final MethodHandle WRITE = Linux.fn("write", FunctionDescriptor.of(L, I, A, L));
    private static final MethodHandle FUTIMENS = Linux.fn("futimens", FunctionDescriptor.of(I, I, A));
    private static final MethodHandle FCHOWN = Linux.fn("fchown", FunctionDescriptor.of(I, I, I, I));
    private static final MethodHandle FSETXATTR = Linux.fn("fsetxattr", FunctionDescriptor.of(I, I, A, A, L, I));

    private final int fd;
    private final String label;

    private Dir(int fd, String label) {
        this.fd = fd;
        this.label = label;
    }

    /**
     * A file name inside one directory: the exact bytes (no '/', no NUL, not empty, "." or ".."). {@link #toString}
     * is a lossy UTF-8 rendering for messages; compare and key by the record itself.
     */
    public record Name(byte[] bytes) implements Comparable<Name> {
        public Name {
            if (bytes.length == 0 || bytes.length > 255) throw new IllegalArgumentException("bad file name length " + bytes.length);
            for (byte b : bytes) if (b == '/' || b == 0) throw new IllegalArgumentException("bad file name " + render(bytes));
            if (bytes[0] == '.' && (bytes.length == 1 || (bytes.length == 2 && bytes[1] == '.')))
                throw new IllegalArgumentException("bad file name " + render(bytes));
        }

        public static Name of(String name) {
            return new Name(name.getBytes(StandardCharsets.UTF_8));
        }

        /** Whether the bytes are valid UTF-8 (so {@link #toString} is exact). */
        public boolean isUtf8() {
            return StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(bytes), java.nio.CharBuffer.allocate(bytes.length),
                    true).isUnderflow();
        }

        @Override public boolean equals(Object o) { return o instanceof Name n && java.util.Arrays.equals(bytes, n.bytes); }
        @Override public int hashCode() { return java.util.Arrays.hashCode(bytes); }
        @Override public int compareTo(Name o) { return java.util.Arrays.compareUnsigned(bytes, o.bytes); }
        @Override public String toString() { return render(bytes); }

        private static String render(byte[] b) { return new String(b, StandardCharsets.UTF_8); }
    }

    /**
     * Opens a trusted host directory (one the server created, e.g. a layer's diff dir) as the root of a
     * hostile tree. The final component must be a directory, not a symlink. {@code label} names it in errors.
     */
    public static Dir open(Path trustedDir, String label) throws IOException {
        return new Dir(Linux.open(trustedDir, Linux.O_RDONLY | Linux.O_DIRECTORY | Linux.O_NOFOLLOW, 0), label);
    }

    /** The descriptor; valid until {@link #close}. */
    public int fd() { return fd; }

    /** What error messages call this directory. */
    public String label() { return label; }

    /**
     * The directory at {@code rel} ("a/b/c", or "" for a second handle on this one) below this one, never
     * through a symlink: ELOOP when a component is one (ENOTDIR when the last one is), EXDEV when ".." would
     * climb out, ENOENT/ENOTDIR when missing or not a directory.
     */
    public Dir openDir(String rel) throws IOException {
        return openDir(rel.getBytes(StandardCharsets.UTF_8), rel);
    }

    /** {@link #openDir(String)} for a path given as bytes (components separated by '/'). */
    public Dir openDir(byte[] rel, String relLabel) throws IOException {
        String child = childLabel(relLabel);
        int r = openDirOrErrno(rel);
        if (r < 0) throw new Linux.ErrnoException("open directory", child, -r);
        return new Dir(r, child);
    }

    /** Like {@link #openDir(String)}, but null when the path is missing or not a directory (ENOENT/ENOTDIR). */
    public Dir openDirOrNull(String rel) throws IOException {
        return openDirUnless(rel, Linux.ENOENT, Linux.ENOTDIR);
    }

    /** Like {@link #openDir(String)}, but null when the path is missing (ENOENT only). */
    public Dir openDirIfExists(String rel) throws IOException {
        return openDirUnless(rel, Linux.ENOENT, Linux.ENOENT);
    }

    /** {@link #openDir(String)}, or null on either errno: no exception is made for an expected miss. */
    private Dir openDirUnless(String rel, int errno1, int errno2) throws IOException {
        int r = openDirOrErrno(rel.getBytes(StandardCharsets.UTF_8));
        if (r == -errno1 || r == -errno2) return null;
        if (r < 0) throw new Linux.ErrnoException("open directory", childLabel(rel), -r);
        return new Dir(r, childLabel(rel));
    }

    /** openat2 of a directory below this one, never through a symlink: the descriptor, or -errno. */
    private int openDirOrErrno(byte[] rel) throws IOException {
        if (rel.length == 0 || (rel.length == 1 && rel[0] == '.')) rel = new byte[] {'.'};
        byte[] path = rel;
        return Linux.call((a, st) -> {
            MemorySegment how = a.allocate(24, 8); // struct open_how {u64 flags; u64 mode; u64 resolve;}
            how.set(L, 0, (long) (Linux.O_RDONLY | Linux.O_DIRECTORY | Linux.O_NOFOLLOW | Linux.O_CLOEXEC));
            how.set(L, 8, 0L);
            how.set(L, 16, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
            long res = (long) SYSCALL_OPENAT2.invokeExact(st, SYS_OPENAT2, fd, bytes(a, path), how, 24L);
            return res < 0 ? -Linux.errno(st) : (int) res;
        });
    }

    /** {@link #openDir} of one name (a subdirectory). */
    public Dir openDir(Name name) throws IOException {
        return openDir(name.bytes(), name.toString());
    }

    /** This directory's own metadata. */
    public Linux.Stat stat() throws IOException {
        return statx(new byte[0], Linux.AT_EMPTY_PATH, label);
    }

    /** lstat of {@code name} in this directory; null when absent. */
    public Linux.Stat statOrNull(Name name) throws IOException {
        return statxAtOrNull(fd, name.bytes(), Linux.AT_SYMLINK_NOFOLLOW, childLabel(name.toString()));
    }

    private Linux.Stat statx(byte[] name, int flags, String what) throws IOException {
        return statxAt(fd, name, flags, what);
    }

    /** The names in this directory (without "." and ".."), in the order the file system returns them. */
    public List<Name> list() throws IOException {
        return listAtMost(Integer.MAX_VALUE);
    }

    /**
     * Like {@link #list}, but stops reading after {@code max} names (a directory of a million entries costs
     * no more than {@code max}); callers ask for one more than they accept to tell "too many".
     */
    public List<Name> listAtMost(int max) throws IOException {
        List<Name> out = new ArrayList<>();
        // A second descriptor so concurrent listings of one Dir do not share a file offset.
        try (Dir again = openDir("")) {
            Linux.call((a, st) -> {
                MemorySegment buf = a.allocate(64 * 1024, 8);
                for (;;) {
                    if (out.size() >= max) return null;
                    long n = (long) GETDENTS64.invokeExact(st, again.fd, buf, buf.byteSize());
                    Linux.check(n, st, "getdents64", label);
                    if (n == 0) return null;
                    for (long off = 0; off < n && out.size() < max; ) {
                        int reclen = Short.toUnsignedInt(buf.get(ValueLayout.JAVA_SHORT_UNALIGNED, off + 16));
                        long nameOff = off + 19;
                        long end = nameOff;
                        while (buf.get(ValueLayout.JAVA_BYTE, end) != 0) end++;
                        byte[] nm = buf.asSlice(nameOff, end - nameOff).toArray(ValueLayout.JAVA_BYTE);
                        if (!(nm.length == 1 && nm[0] == '.') && !(nm.length == 2 && nm[0] == '.' && nm[1] == '.'))
                            out.add(new Name(nm));
                        off += reclen;
                    }
                }
            });
        }
        return out;
    }

    /** The names, sorted by their bytes. */
    public List<Name> listSorted() throws IOException {
        List<Name> names = list();
        names.sort(null);
        return names;
    }

    public boolean isEmpty() throws IOException {
        return listAtMost(1).isEmpty(); // one name answers it: a full /tmp is not read to the end
    }

    /** Removes the non-directory {@code name} (a symlink itself, never its target). */
    public void unlink(Name name) throws IOException {
        unlinkat(name, 0);
    }

    /** Removes the empty directory {@code name}. */
    public void rmdir(Name name) throws IOException {
        unlinkat(name, AT_REMOVEDIR);
    }

    /** Removes the directory {@code name} if it is empty: false (and no exception made) when it is not. */
    boolean rmdirIfEmpty(Name name) throws IOException {
        int r = Linux.call((a, st) -> (int) UNLINKAT.invokeExact(st, fd, bytes(a, name.bytes()), AT_REMOVEDIR) < 0 ? -Linux.errno(st) : 0);
        if (r == -Linux.ENOTEMPTY) return false;
        if (r < 0) throw new Linux.ErrnoException("remove", childLabel(name.toString()), -r);
        return true;
    }

    private void unlinkat(Name name, int flags) throws IOException {
        Linux.call((a, st) -> Linux.check((int) UNLINKAT.invokeExact(st, fd, bytes(a, name.bytes()), flags), st,
                "remove", childLabel(name.toString())));
    }

    /**
     * rm -rf of {@code name} without following symlinks; absent is fine. Any depth: descends with a
     * {@link DirStack} (bounded descriptors, no recursion), and each directory is re-listed a batch at a time
     * as it empties, so a wide one costs no memory either.
     */
    public void deleteRecursively(Name name) throws IOException {
        Linux.Stat st = statOrNull(name);
        if (st == null) return;
        if (!st.isDir()) {
            unlink(name);
            return;
        }
        try (DirStack path = new DirStack(this)) {
            enterForDelete(path, name);
            while (path.depth() > 0) {
                Name sub = removeAllButOneSubdir(path.top());
                if (sub != null) {
                    enterForDelete(path, sub);
                } else {
                    Name done = path.pop();
                    (path.depth() == 0 ? this : path.top()).rmdir(done);
                }
            }
        }
    }

    private static void enterForDelete(DirStack path, Name name) throws IOException {
        Dir d = path.push(name);
        if ((d.stat().mode() & 0700) != 0700) d.chmodSelf(0700); // overlay's work/work is mode 000
    }

    /** Removes non-directories and empty directories until it meets a non-empty subdirectory: returns it, or null when empty. */
    private static Name removeAllButOneSubdir(Dir dir) throws IOException {
        for (;;) {
            List<Name> batch = dir.listAtMost(256);
            if (batch.isEmpty()) return null;
            for (Name n : batch) {
                Linux.Stat st = dir.statOrNull(n);
                if (st == null) continue;
                if (!st.isDir()) {
                    dir.unlink(n);
                    continue;
                }
                if (!dir.rmdirIfEmpty(n)) return n; // entries before it are gone: the next listing starts about here
            }
        }
    }

    /**
     * The directory at {@code names} below this one, never through a symlink, whatever the path's length: the
     * names are resolved in runs of at most 4,095 bytes (openat2 refuses longer paths with ENAMETOOLONG).
     */
    public Dir openPath(List<Name> names) throws IOException {
        Dir cur = openDir("");
        int i = 0;
        try {
            while (i < names.size()) {
                java.io.ByteArrayOutputStream run = new java.io.ByteArrayOutputStream();
                while (i < names.size() && run.size() + 1 + names.get(i).bytes().length <= 4095) {
                    if (run.size() > 0) run.write('/');
                    run.writeBytes(names.get(i++).bytes());
                }
                byte[] rel = run.toByteArray();
                Dir next = cur.openDir(rel, new String(rel, StandardCharsets.UTF_8));
                cur.close();
                cur = next;
            }
            return cur;
        } catch (IOException | RuntimeException e) {
            cur.close();
            throw e;
        }
    }

    public void mkdir(Name name, int mode) throws IOException {
        Linux.call((a, st) -> Linux.check((int) MKDIRAT.invokeExact(st, fd, bytes(a, name.bytes()), mode), st,
                "mkdir", childLabel(name.toString())));
    }

    /** mknod: {@code mode} includes the type bits. */
    public void mknod(Name name, int mode, long dev) throws IOException {
        mknodAt(fd, name.bytes(), mode, dev, childLabel(name.toString()));
    }

    /** An overlayfs whiteout (character device 0/0) named {@code name}. */
    public void mkwhiteout(Name name) throws IOException {
        mknod(name, Linux.S_IFCHR, 0);
    }

    /** Creates the symlink {@code name} pointing at {@code target} (bytes, stored as given, never resolved). */
    public void symlink(byte[] target, Name name) throws IOException {
        Linux.call((a, st) -> Linux.check((int) SYMLINKAT.invokeExact(st, bytes(a, target), fd, bytes(a, name.bytes())),
                st, "symlink", childLabel(name.toString())));
    }

    /** The target of the symlink {@code name}, as bytes. */
    public byte[] readlink(Name name) throws IOException {
        return Linux.call((a, st) -> {
            MemorySegment buf = a.allocate(4097);
            long n = (long) READLINKAT.invokeExact(st, fd, bytes(a, name.bytes()), buf, 4097L);
            Linux.check(n, st, "readlink", childLabel(name.toString()));
            if (n > 4096) throw new Linux.ErrnoException("readlink", childLabel(name.toString()), Linux.ENAMETOOLONG);
            return buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
        });
    }

    /** A hard link {@code name} here to {@code srcName} in {@code srcDir} (never following a symlink). */
    public void link(Dir srcDir, Name srcName, Name name) throws IOException {
        Linux.call((a, st) -> Linux.check((int) LINKAT.invokeExact(st, srcDir.fd, bytes(a, srcName.bytes()), fd,
                bytes(a, name.bytes()), 0), st, "link", childLabel(name.toString())));
    }

    /** Renames {@code from} here to {@code to} in {@code toDir} (replacing a non-directory there). */
    public void rename(Name from, Dir toDir, Name to) throws IOException {
        Linux.call((a, st) -> Linux.check((int) RENAMEAT.invokeExact(st, fd, bytes(a, from.bytes()), toDir.fd,
                bytes(a, to.bytes())), st, "rename", childLabel(from.toString())));
    }

    /**
     * Opens {@code name} with {@code flags} plus O_NOFOLLOW and O_CLOEXEC;
     * a symlink there fails with ELOOP. The caller closes the returned descriptor ({@link Linux#close}).
     */
    public int openFile(Name name, int flags, int mode) throws IOException {
        return Linux.call((a, st) -> (int) Linux.check((int) OPENAT.invokeExact(st, fd, bytes(a, name.bytes()),
                flags | Linux.O_NOFOLLOW | Linux.O_CLOEXEC, mode), st, "open", childLabel(name.toString())));
    }

    /**
     * A channel on the file behind descriptor {@code fd} (from {@link #openFile}), reopened through
     * /proc/self/fd: the magic link names the inode already opened, so no path is resolved again.
     */
    public static java.nio.channels.FileChannel channel(int fd, java.nio.file.OpenOption... options) throws IOException {
        return java.nio.channels.FileChannel.open(Path.of("/proc/self/fd/" + fd), options);
    }

    /**
     * write(2) of {@code b[off, off+len)} to descriptor {@code fd} (from {@link #openFile}), all of it; {@code what}
     * names the file in errors. Cheaper than {@link #channel} for many small files: nothing is opened again.
     */
    public static void write(int fd, byte[] b, int off, int len, String what) throws IOException {
        Linux.call((a, st) -> {
            MemorySegment buf = a.allocate(Math.max(1, len));
            MemorySegment.copy(b, off, buf, ValueLayout.JAVA_BYTE, 0, len);
            for (long done = 0; done < len; ) {
                long n = (long) WRITE.invokeExact(st, fd, buf.asSlice(done), (long) len - done);
                done += Linux.check(n, st, "write", what);
            }
            return null;
        });
    }

    /** fstat of an open descriptor. */
    public static Linux.Stat fstat(int fd) throws IOException {
        return statxAt(fd, new byte[0], Linux.AT_EMPTY_PATH, "fd " + fd);
    }

    /**
     * lseek(SEEK_DATA): the first offset at or after {@code offset} holding data, or -1 when only a hole
     * follows (ENXIO). Lets callers skip a sparse file's holes instead of reading zeros.
     */
    public static long seekData(int fd, long offset) throws IOException {
        return seek(fd, offset, SEEK_DATA);
    }

    /** lseek(SEEK_HOLE): the first hole at or after {@code offset} (EOF counts as one), or -1 past EOF. */
    public static long seekHole(int fd, long offset) throws IOException {
        return seek(fd, offset, SEEK_HOLE);
    }

    private static long seek(int fd, long offset, int whence) throws IOException {
        return Linux.call((a, st) -> {
            long r = (long) LSEEK.invokeExact(st, fd, offset, whence);
            if (r < 0 && Linux.errno(st) == ENXIO) return -1L;
            return Linux.check(r, st, "lseek", "fd " + fd);
        });
    }

    /** lchown of {@code name}. */
    public void chown(Name name, int uid, int gid) throws IOException {
        chownAt(fd, name.bytes(), uid, gid, "chown", childLabel(name.toString()));
    }

    /** chmod of {@code name} with all 12 bits; fails (ENOTSUP) on a symlink instead of touching its target. */
    public void chmod(Name name, int mode) throws IOException {
        chmodAt(fd, name.bytes(), mode, "chmod", childLabel(name.toString()));
    }

    /** chmod of this directory itself. */
    public void chmodSelf(int mode) throws IOException {
        Linux.call((a, st) -> Linux.check((int) FCHMOD.invokeExact(st, fd, mode & 07777), st, "chmod", label));
    }

    /** chown of this directory itself. */
    public void chownSelf(int uid, int gid) throws IOException {
        Linux.call((a, st) -> Linux.check((int) FCHOWN.invokeExact(st, fd, uid, gid), st, "chown", label));
    }

    /** atime/mtime of this directory itself. */
    public void utimesSelf(long atimeSec, int atimeNsec, long mtimeSec, int mtimeNsec) throws IOException {
        Linux.call((a, st) -> Linux.check((int) FUTIMENS.invokeExact(st, fd, timespecs(a, atimeSec, atimeNsec, mtimeSec, mtimeNsec)),
                st, "futimens", label));
    }

    /** fsetxattr of this directory itself. */
    public void setxattrSelf(String attr, byte[] value) throws IOException {
        Linux.call((a, st) -> {
            MemorySegment v = a.allocate(Math.max(1, value.length));
            MemorySegment.copy(value, 0, v, ValueLayout.JAVA_BYTE, 0, value.length);
            return Linux.check((int) FSETXATTR.invokeExact(st, fd, Linux.cstr(a, attr), v, (long) value.length, 0), st,
                    "setxattr " + attr, label);
        });
    }

    /** atime/mtime of {@code name} itself (symlinks too). */
    public void utimes(Name name, long atimeSec, int atimeNsec, long mtimeSec, int mtimeNsec) throws IOException {
        utimesAt(fd, name.bytes(), atimeSec, atimeNsec, mtimeSec, mtimeNsec, childLabel(name.toString()));
    }

    // ---- one binding per syscall: these take the directory descriptor, so Linux's path calls (AT_FDCWD) share them ----

    /**
     * {@link #statxAt}, or null when the name is missing (ENOENT/ENOTDIR): a lookup that expects misses makes no
     * exception for them (a message with strerror and a stack trace each, some ten per execution).
     */
    static Linux.Stat statxAtOrNull(int dirFd, byte[] name, int flags, Object what) throws IOException {
        return Linux.call((a, st) -> {
            MemorySegment buf = a.allocate(256, 8);
            int r = (int) STATX.invokeExact(st, dirFd, bytes(a, name), flags, Linux.STATX_BASIC_STATS, buf);
            if (r < 0) {
                int errno = Linux.errno(st);
                if (errno == Linux.ENOENT || errno == Linux.ENOTDIR) return null;
                throw new Linux.ErrnoException("statx", what, errno);
            }
            return Linux.parseStatx(buf);
        });
    }

    /** statx(2) of {@code name} relative to {@code dirFd}. */
    static Linux.Stat statxAt(int dirFd, byte[] name, int flags, Object what) throws IOException {
        return Linux.call((a, st) -> {
            MemorySegment buf = a.allocate(256, 8);
            int r = (int) STATX.invokeExact(st, dirFd, bytes(a, name), flags, Linux.STATX_BASIC_STATS, buf);
            Linux.check(r, st, "statx", what);
            return Linux.parseStatx(buf);
        });
    }

    static void mknodAt(int dirFd, byte[] name, int mode, long dev, Object what) throws IOException {
        Linux.call((a, st) -> Linux.check((int) MKNODAT.invokeExact(st, dirFd, bytes(a, name), mode, dev), st, "mknod", what));
    }

    /** fchownat(2) with AT_SYMLINK_NOFOLLOW: the link itself, never its target. */
    static void chownAt(int dirFd, byte[] name, int uid, int gid, String op, Object what) throws IOException {
        Linux.call((a, st) -> Linux.check((int) FCHOWNAT.invokeExact(st, dirFd, bytes(a, name), uid, gid,
                Linux.AT_SYMLINK_NOFOLLOW), st, op, what));
    }

    /** fchmodat(2) with AT_SYMLINK_NOFOLLOW and all 12 bits. */
    static void chmodAt(int dirFd, byte[] name, int mode, String op, Object what) throws IOException {
        Linux.call((a, st) -> Linux.check((int) FCHMODAT.invokeExact(st, dirFd, bytes(a, name), mode & 07777,
                Linux.AT_SYMLINK_NOFOLLOW), st, op, what));
    }

    /** utimensat(2) with AT_SYMLINK_NOFOLLOW. */
    static void utimesAt(int dirFd, byte[] name, long atimeSec, int atimeNsec, long mtimeSec, int mtimeNsec, Object what)
            throws IOException {
        Linux.call((a, st) -> Linux.check((int) UTIMENSAT.invokeExact(st, dirFd, bytes(a, name),
                timespecs(a, atimeSec, atimeNsec, mtimeSec, mtimeNsec), Linux.AT_SYMLINK_NOFOLLOW), st, "utimensat", what));
    }

    /** struct timespec[2] {atime, mtime}, as utimensat and futimens take it. */
    private static MemorySegment timespecs(Arena a, long atimeSec, int atimeNsec, long mtimeSec, int mtimeNsec) {
        MemorySegment ts = a.allocate(32, 8);
        ts.set(L, 0, atimeSec);
        ts.set(L, 8, atimeNsec);
        ts.set(L, 16, mtimeSec);
        ts.set(L, 24, mtimeNsec);
        return ts;
    }

    /** lgetxattr of {@code name}; null when absent. */
    public byte[] getxattr(Name name, String attr) throws IOException {
        return Linux.lgetxattrBytes(procBytes(name), attr, childLabel(name.toString()));
    }

    /** lsetxattr of {@code name}. */
    public void setxattr(Name name, String attr, byte[] value) throws IOException {
        Linux.lsetxattrBytes(procBytes(name), attr, value, childLabel(name.toString()));
    }

    /** llistxattr of {@code name}. */
    public List<String> listxattr(Name name) throws IOException {
        return Linux.llistxattrBytes(procBytes(name), childLabel(name.toString()));
    }

    /** /proc/self/fd/FD/NAME as raw bytes (the name may not be valid UTF-8). */
    private byte[] procBytes(Name name) {
        byte[] prefix = ("/proc/self/fd/" + fd + "/").getBytes(StandardCharsets.US_ASCII);
        byte[] out = java.util.Arrays.copyOf(prefix, prefix.length + name.bytes().length);
        System.arraycopy(name.bytes(), 0, out, prefix.length, name.bytes().length);
        return out;
    }

    /** The label of a child: "label/child", for messages. */
    private String childLabel(String child) {
        if (child.isEmpty() || child.equals(".")) return label;
        // Deep trees: keep the tail, so labels stay short and building them is not quadratic in the depth.
        String l = label.length() > 1024 ? "…" + label.substring(label.length() - 512) : label;
        return l.endsWith("/") ? l + child : l + "/" + child;
    }

    /** A NUL-terminated copy of {@code b}. */
    static MemorySegment bytes(Arena a, byte[] b) {
        MemorySegment s = a.allocate(b.length + 1L);
        MemorySegment.copy(b, 0, s, ValueLayout.JAVA_BYTE, 0, b.length);
        s.set(ValueLayout.JAVA_BYTE, b.length, (byte) 0);
        return s;
    }

    @Override
    public void close() {
        Linux.close(fd);
    }

    @Override
    public String toString() {
        return "Dir[" + label + "]";
    }
}
