package dev.contree.linux;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static dev.contree.linux.Linux.A;
import static dev.contree.linux.Linux.I;
import static dev.contree.linux.Linux.L;
import static dev.contree.linux.Linux.call;
import static dev.contree.linux.Linux.check;
import static dev.contree.linux.Linux.errno;
import static dev.contree.linux.Linux.fn;

/**
 * Our end of a pipe, non-blocking, served by the {@link Poller}: a read or write that would block parks the
 * calling thread until the pipe is ready. Closing from another thread wakes a parked caller (which then fails
 * with "Stream closed"); the descriptor itself is closed only once no call is using it, so a descriptor number
 * is never reused under a running call.
 */
final class PolledFd {
    static final int O_NONBLOCK = 04000;
    private static final int F_GETFL = 3, F_SETFL = 4;
    private static final int EAGAIN = 11, EINTR = 4;
    private static final int CHUNK = 64 * 1024;

    private static final MethodHandle PIPE2 = fn("pipe2", FunctionDescriptor.of(I, A, I));
    private static final MethodHandle FCNTL = fn("fcntl", FunctionDescriptor.of(I, I, I, I),
            Linker.Option.firstVariadicArg(2));
    // Non-blocking calls return at once, so they may touch the Java array directly (critical: no copy, no buffer).
    private static final MethodHandle READ = fn("read", FunctionDescriptor.of(L, I, A, L), Linker.Option.critical(true));
    private static final MethodHandle WRITE = fn("write", FunctionDescriptor.of(L, I, A, L), Linker.Option.critical(true));

    private final int fd;
    private final String what;
    private int users;
    private boolean released;
    private volatile boolean closed;

    private PolledFd(int fd, String what) throws IOException {
        this.fd = fd;
        this.what = what;
        int flags = call((a, st) -> (int) check((int) FCNTL.invokeExact(st, fd, F_GETFL, 0), st, "fcntl", what));
        call((a, st) -> check((int) FCNTL.invokeExact(st, fd, F_SETFL, flags | O_NONBLOCK), st, "fcntl", what));
    }

    /** pipe2(O_CLOEXEC): {@code [read end, write end]}, both blocking; the child's end stays so. */
    static int[] pipe() throws IOException {
        return call((a, st) -> {
            MemorySegment fds = a.allocate(I, 2);
            check((int) PIPE2.invokeExact(st, fds, Linux.O_CLOEXEC), st, "pipe2", "");
            return new int[] {fds.getAtIndex(I, 0), fds.getAtIndex(I, 1)};
        });
    }

    /** Takes ownership of {@code fd} and makes it non-blocking. */
    static PolledFd adopt(int fd, String what) throws IOException {
        try {
            return new PolledFd(fd, what);
        } catch (IOException e) {
            Linux.close(fd);
            throw e;
        }
    }

    InputStream inputStream() {
        return new InputStream() {
            @Override public int read() throws IOException {
                byte[] b = new byte[1];
                return PolledFd.this.read(b, 0, 1) < 0 ? -1 : b[0] & 0xff;
            }

            @Override public int read(byte[] b, int off, int len) throws IOException {
                return PolledFd.this.read(b, off, len);
            }

            @Override public void close() { PolledFd.this.close(); }
        };
    }

    OutputStream outputStream() {
        return new OutputStream() {
            @Override public void write(int b) throws IOException {
                write(new byte[] {(byte) b}, 0, 1);
            }

            @Override public void write(byte[] b, int off, int len) throws IOException {
                PolledFd.this.write(b, off, len);
            }

            @Override public void close() { PolledFd.this.close(); }
        };
    }

    /** Like {@link InputStream#read(byte[], int, int)}: parks until some bytes or the end (-1). */
    int read(byte[] b, int off, int len) throws IOException {
        if (len == 0) return 0;
        enter();
        try {
            while (true) {
                int want = Math.min(len, CHUNK);
                MemorySegment buf = MemorySegment.ofArray(b).asSlice(off, want);
                long n = call((a, st) -> {
                    long r = (long) READ.invokeExact(st, fd, buf, (long) want);
                    return r < 0 ? (long) -errno(st) : r;
                });
                if (n > 0) return (int) n;
                if (n == 0) return -1;
                if (n == -EAGAIN) await(Poller.IN);
                else if (n != -EINTR) throw new Linux.ErrnoException("read", what, (int) -n);
            }
        } finally {
            exit();
        }
    }

    /** Writes all of it, parking while the pipe is full; a reader gone is an IOException (EPIPE). */
    void write(byte[] b, int off, int len) throws IOException {
        enter();
        try {
            while (len > 0) {
                int want = Math.min(len, CHUNK), from = off;
                MemorySegment buf = MemorySegment.ofArray(b).asSlice(from, want);
                long n = call((a, st) -> {
                    long r = (long) WRITE.invokeExact(st, fd, buf, (long) want);
                    return r < 0 ? (long) -errno(st) : r;
                });
                if (n >= 0) {
                    off += (int) n;
                    len -= (int) n;
                } else if (n == -EAGAIN) {
                    await(Poller.OUT);
                } else if (n != -EINTR) {
                    throw new Linux.ErrnoException("write", what, (int) -n);
                }
            }
        } finally {
            exit();
        }
    }

    private void await(int events) throws IOException {
        Poller.shared().await(fd, events, -1, () -> closed);
        if (closed) throw new IOException("Stream closed");
    }

    private synchronized void enter() throws IOException {
        if (closed) throw new IOException("Stream closed");
        users++;
    }

    private void exit() {
        boolean release;
        synchronized (this) {
            users--;
            release = closed && users == 0 && !released;
            if (release) released = true;
        }
        if (release) release();
    }

    /** Idempotent; safe from any thread. */
    void close() {
        boolean release;
        synchronized (this) {
            if (closed) return;
            closed = true;
            release = users == 0;
            if (release) released = true;
        }
        if (release) release();
        else Poller.shared().wake(fd);
    }

    private void release() {
        Poller.shared().forget(fd);
        Linux.close(fd);
    }
}
