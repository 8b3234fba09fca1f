package dev.contree.linux;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import static dev.contree.linux.Linux.A;
import static dev.contree.linux.Linux.I;
import static dev.contree.linux.Linux.L;
import static dev.contree.linux.Linux.LIBC;
import static dev.contree.linux.Linux.LINKER;
import static dev.contree.linux.Linux.call;
import static dev.contree.linux.Linux.check;
import static dev.contree.linux.Linux.cstr;
import static dev.contree.linux.Linux.errno;
import static dev.contree.linux.Linux.fn;

/**
 * A child process whose waiting and I/O never hold a thread in a blocking native call: its pipes are
 * non-blocking on our side and its exit is a pidfd, all served by the {@link Poller}. {@code java.lang.Process}
 * cannot do this: its pipes are blocking streams (each reader pins a carrier when read from a virtual thread)
 * and it keeps a reaper thread per child blocked in waitpid. ProcessBuilder's redirects cannot take a
 * descriptor either, so the child is started here with posix_spawnp(3) (glibc's vfork-style spawn, the
 * mechanism the JDK itself uses): the pipes' far ends become 0/1/2, every other descriptor is closed
 * (addclosefrom_np), signal mask and dispositions are reset, the environment is ours, as with ProcessBuilder.
 *
 * <p>Reading a stream or waiting for the exit parks the calling (virtual) thread. {@link #exitValue()}
 * follows the JDK: the exit status, or 128 + signal for a child killed by a signal. Signals go through the
 * pidfd, so they can never reach a recycled pid.
 */
public final class SpawnedProcess extends FutureExitProcess {
    private static final Logger log = LoggerFactory.getLogger(SpawnedProcess.class);

    /** What the child's stderr is. */
    public enum Stderr { PIPE, TO_STDOUT, DISCARD }

    private static final int SIGTERM = 15, SIGKILL = 9, ESRCH = 3, WNOHANG = 1;
    private static final short POSIX_SPAWN_SETSIGDEF = 0x04, POSIX_SPAWN_SETSIGMASK = 0x08;
    private static final long SYS_PIDFD_SEND_SIGNAL = 424, SYS_PIDFD_OPEN = 434;
    // glibc's posix_spawn_file_actions_t is 80 bytes, posix_spawnattr_t 336, sigset_t 128: room to spare.
    private static final long OPAQUE = 1024, SIGSET = 128;

    private static MethodHandle plain(String name, FunctionDescriptor fd) {
        return LINKER.downcallHandle(LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError(name)), fd);
    }

    private static final MethodHandle FA_INIT = plain("posix_spawn_file_actions_init", FunctionDescriptor.of(I, A));
    private static final MethodHandle FA_DESTROY = plain("posix_spawn_file_actions_destroy", FunctionDescriptor.of(I, A));
    private static final MethodHandle FA_DUP2 = plain("posix_spawn_file_actions_adddup2", FunctionDescriptor.of(I, A, I, I));
    private static final MethodHandle FA_CHDIR = plain("posix_spawn_file_actions_addchdir_np", FunctionDescriptor.of(I, A, A));
    private static final MethodHandle FA_CLOSEFROM = plain("posix_spawn_file_actions_addclosefrom_np", FunctionDescriptor.of(I, A, I));
    private static final MethodHandle ATTR_INIT = plain("posix_spawnattr_init", FunctionDescriptor.of(I, A));
    private static final MethodHandle ATTR_DESTROY = plain("posix_spawnattr_destroy", FunctionDescriptor.of(I, A));
    private static final MethodHandle ATTR_FLAGS = plain("posix_spawnattr_setflags", FunctionDescriptor.of(I, A, ValueLayout.JAVA_SHORT));
    private static final MethodHandle ATTR_SIGMASK = plain("posix_spawnattr_setsigmask", FunctionDescriptor.of(I, A, A));
    private static final MethodHandle ATTR_SIGDEFAULT = plain("posix_spawnattr_setsigdefault", FunctionDescriptor.of(I, A, A));
    private static final MethodHandle SIGEMPTYSET = plain("sigemptyset", FunctionDescriptor.of(I, A));
    private static final MethodHandle SIGFILLSET = plain("sigfillset", FunctionDescriptor.of(I, A));
    private static final MethodHandle SPAWNP = plain("posix_spawnp", FunctionDescriptor.of(I, A, A, A, A, A, A));
    private static final MethodHandle SYSCALL4 = fn("syscall", FunctionDescriptor.of(L, L, I, I, A, I), Linker.Option.firstVariadicArg(1));
    private static final MethodHandle SYSCALL2 = fn("syscall", FunctionDescriptor.of(L, L, I, I), Linker.Option.firstVariadicArg(1));
    private static final MethodHandle KILL = fn("kill", FunctionDescriptor.of(I, I, I));
    private static final MethodHandle WAITPID = fn("waitpid", FunctionDescriptor.of(I, I, A, I));

    private final int pid;
    private int pidfd; // -1 once reaped; guarded by this
    private final OutputStream stdin;
    private final InputStream stdout, stderr;

    private SpawnedProcess(int pid, int pidfd, PolledFd in, PolledFd out, PolledFd err) {
        this.pid = pid;
        this.pidfd = pidfd;
        this.stdin = in.outputStream();
        this.stdout = new BufferedInputStream(out.inputStream());
        this.stderr = err == null ? InputStream.nullInputStream() : new BufferedInputStream(err.inputStream());
    }

    /** Starts {@code argv} (argv[0] looked up in PATH) in {@code dir} with this process's environment. */
    public static SpawnedProcess start(List<String> argv, Path dir, Stderr stderrMode) throws IOException {
        List<Integer> toClose = new ArrayList<>();  // the child's ends, closed here once it has them
        List<PolledFd> ours = new ArrayList<>();
        try {
            int[] in = PolledFd.pipe();
            toClose.add(in[0]);
            PolledFd stdinFd = PolledFd.adopt(in[1], "stdin of " + argv.getFirst());
            ours.add(stdinFd);
            int[] out = PolledFd.pipe();
            toClose.add(out[1]);
            PolledFd stdoutFd = PolledFd.adopt(out[0], "stdout of " + argv.getFirst());
            ours.add(stdoutFd);
            PolledFd stderrFd = null;
            int childErr;
            switch (stderrMode) {
                case PIPE -> {
                    int[] err = PolledFd.pipe();
                    toClose.add(err[1]);
                    stderrFd = PolledFd.adopt(err[0], "stderr of " + argv.getFirst());
                    ours.add(stderrFd);
                    childErr = err[1];
                }
                case TO_STDOUT -> childErr = out[1];
                default -> {
                    childErr = Linux.open(Path.of("/dev/null"), Linux.O_WRONLY, 0);
                    toClose.add(childErr);
                }
            }
            int pid = spawn(argv, dir, in[0], out[1], childErr);
            Reaper.own(pid); // ours to reap: the orphan sweep keeps off it
            int pidfd;
            try {
                pidfd = call((a, st) -> (int) check((long) SYSCALL2.invokeExact(st, SYS_PIDFD_OPEN, pid, 0), st, "pidfd_open", pid));
            } catch (IOException e) {
                // Cannot watch it: kill and reap it (it has just started, so this is quick), then fail.
                kill(pid);
                Reaper.disown(pid);
                throw e;
            }
            SpawnedProcess p = new SpawnedProcess(pid, pidfd, stdinFd, stdoutFd, stderrFd);
            try {
                Poller.shared().onReady(pidfd, Poller.IN, p::reap);
            } catch (IOException | RuntimeException e) {
                Linux.close(pidfd);
                kill(pid);
                Reaper.disown(pid);
                throw e;
            }
            ours.clear();
            return p;
        } finally {
            toClose.forEach(Linux::close);
            ours.forEach(PolledFd::close);
        }
    }

    /** SIGKILL and reap a child nobody watches (start failed half-way): never left a zombie. */
    private static void kill(int pid) {
        try {
            call((a, st) -> {
                int r = (int) KILL.invokeExact(st, pid, SIGKILL);
                MemorySegment status = a.allocate(I);
                return r == 0 ? (int) WAITPID.invokeExact(st, pid, status, 0) : r;
            });
        } catch (IOException ignored) {
        }
    }

    private static int spawn(List<String> argv, Path dir, int in, int out, int err) throws IOException {
        return call((a, st) -> {
            MemorySegment fa = a.allocate(OPAQUE, 16), attr = a.allocate(OPAQUE, 16), set = a.allocate(SIGSET, 8);
            MemorySegment pid = a.allocate(I);
            MemorySegment argvSeg = cstrings(a, argv), envSeg = cstrings(a, environment());
            MemorySegment file = cstr(a, argv.getFirst()), cwd = cstr(a, dir.toString());
            spawnCheck((int) FA_INIT.invokeExact(fa), "posix_spawn_file_actions_init");
            try {
                spawnCheck((int) ATTR_INIT.invokeExact(attr), "posix_spawnattr_init");
                try {
                    spawnCheck((int) FA_DUP2.invokeExact(fa, in, 0), "adddup2");
                    spawnCheck((int) FA_DUP2.invokeExact(fa, out, 1), "adddup2");
                    spawnCheck((int) FA_DUP2.invokeExact(fa, err, 2), "adddup2");
                    spawnCheck((int) FA_CHDIR.invokeExact(fa, cwd), "addchdir_np");
                    spawnCheck((int) FA_CLOSEFROM.invokeExact(fa, 3), "addclosefrom_np");
                    spawnCheck((int) SIGEMPTYSET.invokeExact(set), "sigemptyset");
                    spawnCheck((int) ATTR_SIGMASK.invokeExact(attr, set), "setsigmask");
                    spawnCheck((int) SIGFILLSET.invokeExact(set), "sigfillset");
                    spawnCheck((int) ATTR_SIGDEFAULT.invokeExact(attr, set), "setsigdefault");
                    spawnCheck((int) ATTR_FLAGS.invokeExact(attr, (short) (POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)), "setflags");
                    int r = (int) SPAWNP.invokeExact(pid, file, fa, attr, argvSeg, envSeg);
                    // The same words as ProcessBuilder's failure.
                    if (r != 0) throw new IOException("Cannot run program \"" + argv.getFirst() + "\": error=" + r + ", " + Linux.strerror(r));
                    return pid.get(I, 0);
                } finally {
                    int ignored = (int) ATTR_DESTROY.invokeExact(attr);
                }
            } finally {
                int ignored = (int) FA_DESTROY.invokeExact(fa);
            }
        });
    }

    private static void spawnCheck(int r, String what) throws IOException {
        if (r != 0) throw new IOException("posix_spawn: " + what + ": " + Linux.strerror(r) + " (errno " + r + ")");
    }

    private static List<String> environment() {
        List<String> env = new ArrayList<>();
        for (Map.Entry<String, String> e : System.getenv().entrySet()) env.add(e.getKey() + "=" + e.getValue());
        return env;
    }

    /** A NULL-terminated array of C strings. */
    private static MemorySegment cstrings(Arena a, List<String> list) throws IOException {
        MemorySegment arr = a.allocate(ValueLayout.ADDRESS, list.size() + 1);
        for (int i = 0; i < list.size(); i++) arr.setAtIndex(ValueLayout.ADDRESS, i, cstr(a, list.get(i)));
        arr.setAtIndex(ValueLayout.ADDRESS, list.size(), MemorySegment.NULL);
        return arr;
    }

    /** On the poller thread when the pidfd is readable: reaps the child, closes the pidfd, completes the exit. */
    private void reap() {
        int code;
        synchronized (this) {
            if (pidfd < 0) return;
            int[] status = new int[1];
            int r;
            try {
                r = call((a, st) -> {
                    MemorySegment s = a.allocate(I);
                    int x = (int) WAITPID.invokeExact(st, pid, s, WNOHANG);
                    status[0] = s.get(I, 0);
                    return x < 0 ? -errno(st) : x;
                });
            } catch (IOException e) {
                throw new AssertionError(e);
            }
            if (r == 0) { // not yet (a spurious wake-up): wait again
                try {
                    Poller.shared().onReady(pidfd, Poller.IN, this::reap);
                    return;
                } catch (IOException | RuntimeException e) {
                    log.warn("cannot watch pid {}: {}", pid, e.toString());
                    return;
                }
            }
            if (r < 0) {
                log.warn("waitpid({}) failed: {}", pid, Linux.strerror(-r));
                code = 128 + SIGKILL;
            } else {
                int s = status[0];
                code = (s & 0x7f) == 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f);
            }
            Poller.shared().forget(pidfd);
            Linux.close(pidfd);
            pidfd = -1;
        }
        Reaper.disown(pid);
        exit.complete(code);
    }

    private synchronized void signal(int sig) {
        if (pidfd < 0) return; // reaped: its pid may belong to someone else now
        try {
            call((a, st) -> {
                long r = (long) SYSCALL4.invokeExact(st, SYS_PIDFD_SEND_SIGNAL, pidfd, sig, MemorySegment.NULL, 0);
                if (r < 0 && errno(st) != ESRCH) log.warn("pidfd_send_signal({}, {}): {}", pid, sig, Linux.strerror(errno(st)));
                return r;
            });
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    @Override public OutputStream getOutputStream() { return stdin; }
    @Override public InputStream getInputStream() { return stdout; }
    @Override public InputStream getErrorStream() { return stderr; }
    @Override public long pid() { return pid; }
    @Override public boolean supportsNormalTermination() { return true; }
    @Override public void destroy() { signal(SIGTERM); }

    @Override
    public Process destroyForcibly() {
        signal(SIGKILL);
        return this;
    }
}
