package dev.contree.inspect;

import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Where inspect work runs. HTTP requests are served on virtual threads, which the JVM does not preempt: a
 * CPU-bound loop on one pins a carrier, and with two cores two such loops stall every request. So inspect work
 * runs on a small pool of platform threads the OS scheduler time-slices, behind a server-wide and a
 * per-account limit; a request past either is refused at once ({@link Busy} → 429) before any work was done.
 */
public final class InspectPool implements AutoCloseable {
    private final ExecutorService threads;
    private final Semaphore global;
    private final int perAccount;
    private final ConcurrentHashMap<String, AtomicInteger> running = new ConcurrentHashMap<>();
    private final AtomicLong finished = new AtomicLong();
    private final AtomicInteger active = new AtomicInteger();

    /** No permit free: the request was not started. */
    public static final class Busy extends RuntimeException {
        Busy(String message) { super(message, null, false, false); }
    }

    public InspectPool(int threads, int perAccount) {
        AtomicInteger n = new AtomicInteger();
        // Idle threads end after 30 s: a server (or a test) that stops inspecting leaves none behind.
        java.util.concurrent.ThreadPoolExecutor pool = new java.util.concurrent.ThreadPoolExecutor(threads, threads,
                30, java.util.concurrent.TimeUnit.SECONDS, new java.util.concurrent.LinkedBlockingQueue<>(), r -> {
            Thread t = new Thread(r, "inspect-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        pool.allowCoreThreadTimeOut(true);
        this.threads = pool;
        this.global = new Semaphore(threads);
        this.perAccount = perAccount;
    }

    /**
     * Runs {@code work} on an inspect thread and waits for it (the caller, a virtual thread, unmounts while
     * waiting). Unwraps the work's exception.
     *
     * @throws Busy when {@code account} already runs its share or the server is full
     */
    public <T> T run(String account, Callable<T> work) throws Exception {
        AtomicInteger mine = running.computeIfAbsent(account, k -> new AtomicInteger());
        if (mine.incrementAndGet() > perAccount) {
            release(account, mine);
            throw new Busy("too many inspect requests in progress for this account (limit " + perAccount + "); retry shortly");
        }
        if (!global.tryAcquire()) {
            release(account, mine);
            throw new Busy("the server is busy with inspect requests; retry shortly");
        }
        try {
            Future<T> f = threads.submit(() -> {
                active.incrementAndGet();
                try {
                    return work.call();
                } finally {
                    active.decrementAndGet();
                    finished.incrementAndGet();
                }
            });
            try {
                return f.get();
            } catch (ExecutionException e) {
                if (e.getCause() instanceof Exception x) throw x;
                if (e.getCause() instanceof Error err) throw err;
                throw e;
            } catch (InterruptedException e) {
                f.cancel(true);
                Thread.currentThread().interrupt();
                throw e;
            }
        } finally {
            global.release();
            release(account, mine);
        }
    }

    private static void release(String account, AtomicInteger mine) {
        mine.decrementAndGet(); // counters stay in the map: one per account, never a race on removal
    }

    /** Work items running now (tests: an abandoned request must end). */
    public int active() { return active.get(); }

    /** Work items finished so far. */
    public long finished() { return finished.get(); }

    @Override
    public void close() {
        threads.shutdownNow();
    }
}
