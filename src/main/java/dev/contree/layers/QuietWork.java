package dev.contree.layers;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;

/**
 * Btrfs work that nobody waits for, done off the caller's path and out of the way of busy moments:
 * marking committed layers read-only and deleting discarded ones.
 *
 * <p>The read-only flag commits a btrfs transaction (2–10 ms), and while it commits every other
 * metadata change on the file system waits: a subvolume create in {@code prepare} took 3.7 ms instead
 * of 0.7 ms in a tight prepare/commit loop. Deleting a subvolume costs ~1 ms empty, 40 ms with 3,000
 * files, 150 ms with 10,000. So a task runs once the store has been quiet (no prepare, commit, discard
 * or create) for {@code quietNanos}, or at the latest {@code maxDelayNanos} after it was queued, so a
 * store that is never quiet still gets it done. Both are repaired when the store opens if a crash came
 * first (writable layers are sealed, pending ones deleted); nothing writes a committed layer meanwhile
 * (it is only ever an overlay lower) and nothing reads a discarded one.
 */
final class QuietWork {
    private static final Logger log = LoggerFactory.getLogger(QuietWork.class);

    /** One task; {@code what} names it in the log if it fails. */
    interface Task {
        void run() throws IOException;
    }

    private record Pending(String what, Task task, long queuedAt) {}

    private final long quietNanos, maxDelayNanos;
    private final ArrayDeque<Pending> queue = new ArrayDeque<>();
    private final Thread thread;
    private long lastActivity = System.nanoTime();
    private int flushWaiters;
    private boolean running, closed;

    QuietWork(long quietMillis, long maxDelayMillis) {
        this.quietNanos = TimeUnit.MILLISECONDS.toNanos(quietMillis);
        this.maxDelayNanos = TimeUnit.MILLISECONDS.toNanos(maxDelayMillis);
        this.thread = Thread.ofPlatform().daemon().name("layer-quiet-work").start(this::run);
    }

    /** The store is busy: postpone the work. */
    synchronized void activity() {
        lastActivity = System.nanoTime();
    }

    /** Runs {@code task} soon; at once, in the caller, if the worker is closed or gone. */
    void add(String what, Task task) throws IOException {
        synchronized (this) {
            if (!closed && thread.isAlive()) {
                long now = System.nanoTime();
                queue.add(new Pending(what, task, now));
                lastActivity = now;
                notifyAll();
                return;
            }
        }
        task.run();
    }

    /** Runs everything queued now and waits until done. */
    synchronized void flush() throws InterruptedException {
        flushWaiters++;
        notifyAll();
        try {
            while ((!queue.isEmpty() && thread.isAlive()) || running) wait(1000);
        } finally {
            flushWaiters--;
        }
    }

    /** Runs what is queued, then stops the thread. */
    void close() throws InterruptedException {
        synchronized (this) {
            closed = true;
            notifyAll();
        }
        thread.join(TimeUnit.SECONDS.toMillis(60));
        if (thread.isAlive()) log.warn("layer store work still running at close");
    }

    private void run() {
        while (true) {
            Pending next;
            synchronized (this) {
                try {
                    next = awaitTurn();
                } catch (InterruptedException e) {
                    return;
                }
                if (next == null) return;
                running = true;
            }
            try {
                next.task().run();
            } catch (Throwable e) { // the worker must outlive any one task; a crash's leftovers are repaired at open
                log.warn("{} failed (retried when the store next opens)", next.what(), e);
            } finally {
                synchronized (this) {
                    running = false;
                    notifyAll();
                }
            }
        }
    }

    /** The next task once it is its turn; null when closed and drained. Holds the monitor. */
    private Pending awaitTurn() throws InterruptedException {
        while (true) {
            if (queue.isEmpty()) {
                if (closed) return null;
                wait();
                continue;
            }
            long now = System.nanoTime();
            long quietLeft = quietNanos - (now - lastActivity);
            long overdueLeft = maxDelayNanos - (now - queue.peek().queuedAt());
            if (closed || flushWaiters > 0 || quietLeft <= 0 || overdueLeft <= 0) return queue.poll();
            TimeUnit.NANOSECONDS.timedWait(this, Math.max(1, Math.min(quietLeft, overdueLeft)));
        }
    }
}
