package dev.contree.linux;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import static dev.contree.linux.Linux.A;
import static dev.contree.linux.Linux.I;
import static dev.contree.linux.Linux.call;
import static dev.contree.linux.Linux.check;
import static dev.contree.linux.Linux.errno;
import static dev.contree.linux.Linux.fn;

/**
 * One epoll set and one platform thread for the whole process: descriptors that are not ready park the
 * (virtual) thread that wants them instead of blocking it in a native call. A blocking read of a pipe on a
 * virtual thread pins its carrier, and the JDK caps carriers at 256, so a few hundred sandboxes each with a
 * blocked reader starve every other virtual thread (HTTP requests included); parked threads cost no carrier.
 *
 * <p>Interest is one-shot (EPOLLONESHOT): each readiness wakes one handler, which re-arms when it wants more.
 * An event carries the descriptor number; a handler is looked up when it fires, so an event for a descriptor
 * closed and reused meanwhile can only cause a spurious wake-up, which every handler tolerates (it retries
 * its non-blocking call and waits again). Owners call {@link #forget} before closing a descriptor.
 */
public final class Poller {
    private static final Logger log = LoggerFactory.getLogger(Poller.class);

    public static final int IN = 0x001, OUT = 0x004;
    private static final int ONESHOT = 1 << 30;
    private static final int CTL_ADD = 1, CTL_DEL = 2, CTL_MOD = 3;
    private static final int EINTR = 4, EBADF = 9;
    private static final int MAX_EVENTS = 256;
    // struct epoll_event is packed on x86-64 (12 bytes), naturally aligned elsewhere (16 bytes).
    private static final boolean PACKED = System.getProperty("os.arch").equals("amd64");
    private static final long EVENT_SIZE = PACKED ? 12 : 16, DATA_OFFSET = PACKED ? 4 : 8;

    private static final MethodHandle EPOLL_CREATE1 = fn("epoll_create1", FunctionDescriptor.of(I, I));
    private static final MethodHandle EPOLL_CTL = fn("epoll_ctl", FunctionDescriptor.of(I, I, I, I, A));
    private static final MethodHandle EPOLL_WAIT = fn("epoll_wait", FunctionDescriptor.of(I, I, A, I, I));

    private static volatile Poller shared;

    private final int epfd;
    private final Map<Integer, Runnable> handlers = new ConcurrentHashMap<>();

    private Poller() throws IOException {
        epfd = call((a, st) -> (int) check((int) EPOLL_CREATE1.invokeExact(st, Linux.O_CLOEXEC), st, "epoll_create1", ""));
        Thread.ofPlatform().daemon().name("contree-poller").start(this::loop);
    }

    /** The process-wide poller, started on first use. */
    public static Poller shared() {
        Poller p = shared;
        if (p != null) return p;
        synchronized (Poller.class) {
            if (shared == null) {
                try {
                    shared = new Poller();
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }
            return shared;
        }
    }

    /**
     * Runs {@code handler} once on the poller thread when {@code fd} is ready for {@code events} (or has hung up
     * or failed). The handler must be quick and must not block: it delays every other descriptor.
     */
    public void onReady(int fd, int events, Runnable handler) throws IOException {
        if (handlers.putIfAbsent(fd, handler) != null) throw new IllegalStateException("descriptor " + fd + " already awaited");
        try {
            arm(fd, events);
        } catch (IOException | RuntimeException e) {
            handlers.remove(fd, handler);
            throw e;
        }
    }

    /**
     * Parks the calling thread until {@code fd} is ready, {@code nanos} pass (negative: no limit) or {@code stop}
     * holds; returns whether it is ready (spurious readiness is possible: retry the call and wait again).
     * An interrupt ends the wait with {@link InterruptedIOException}, the interrupt status kept.
     */
    public boolean await(int fd, int events, long nanos, BooleanSupplier stop) throws IOException {
        Thread me = Thread.currentThread();
        AtomicBoolean ready = new AtomicBoolean();
        Runnable wake = () -> {
            ready.set(true);
            LockSupport.unpark(me);
        };
        onReady(fd, events, wake);
        try {
            long deadline = nanos < 0 ? 0 : System.nanoTime() + nanos;
            while (!ready.get()) {
                if (stop.getAsBoolean()) return false;
                if (me.isInterrupted()) throw new InterruptedIOException("interrupted while waiting for descriptor " + fd);
                if (nanos < 0) {
                    LockSupport.park(this);
                } else {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) return false;
                    LockSupport.parkNanos(this, left);
                }
            }
            return true;
        } finally {
            handlers.remove(fd, wake);
        }
    }

    /** Runs the handler waiting on {@code fd} now, if any (a closing owner wakes its waiter this way). */
    public void wake(int fd) {
        Runnable r = handlers.remove(fd);
        if (r != null) r.run();
    }

    /** Removes {@code fd} from the set; call before closing it. */
    public void forget(int fd) {
        handlers.remove(fd);
        try {
            call((a, st) -> (int) EPOLL_CTL.invokeExact(st, epfd, CTL_DEL, fd, MemorySegment.NULL));
        } catch (IOException e) {
            throw new AssertionError(e); // the body throws none: an absent descriptor is not an error here
        }
    }

    private void arm(int fd, int events) throws IOException {
        call((a, st) -> {
            MemorySegment ev = a.allocate(EVENT_SIZE, 8);
            ev.set(I, 0, events | ONESHOT);
            ev.set(ValueLayout.JAVA_LONG_UNALIGNED, DATA_OFFSET, fd);
            int r = (int) EPOLL_CTL.invokeExact(st, epfd, CTL_MOD, fd, ev);
            if (r < 0 && errno(st) == Linux.ENOENT) r = (int) EPOLL_CTL.invokeExact(st, epfd, CTL_ADD, fd, ev);
            return check(r, st, "epoll_ctl", "descriptor " + fd);
        });
    }

    private void loop() {
        Arena arena = Arena.global();
        MemorySegment events = arena.allocate(EVENT_SIZE * MAX_EVENTS, 8);
        MemorySegment st = arena.allocate(Linux.CCS);
        while (true) {
            int n;
            try {
                n = (int) EPOLL_WAIT.invokeExact(st, epfd, events, MAX_EVENTS, -1);
            } catch (Throwable t) {
                throw new AssertionError(t);
            }
            if (n < 0) {
                int e = errno(st);
                if (e == EINTR) continue;
                log.error("epoll_wait failed: errno {}; sandbox I/O stops", e);
                if (e == EBADF) return;
                continue;
            }
            for (int i = 0; i < n; i++) {
                int fd = (int) events.get(ValueLayout.JAVA_LONG_UNALIGNED, i * EVENT_SIZE + DATA_OFFSET);
                Runnable r = handlers.remove(fd);
                if (r == null) continue; // stale: its waiter gave up or the descriptor was forgotten
                try {
                    r.run();
                } catch (Throwable t) {
                    log.warn("poller handler for descriptor {} failed", fd, t);
                }
            }
        }
    }
}
