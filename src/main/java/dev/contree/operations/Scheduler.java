package dev.contree.operations;

import dev.contree.cancel.CancelToken;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.EnumSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Admits operations under a concurrency limit, fairly between accounts, runs each on a virtual thread, and records
 * the outcome. PENDING → ASSIGNED → EXECUTING → SUCCESS/FAILED/CANCELLED; a cancel at any point wins.
 *
 * <p>Fairness covers running slots, not only queue order. A free slot goes to the waiting account that holds the
 * fewest slots (round robin among equals), and no account ever holds more than {@code perAccount} slots while
 * more than one account can submit work (a single-tenant server lends every slot to its one account). Running
 * work is never preempted, so that cap is what keeps slots free for a second account while a first one fills the
 * server with hour-long runs; with several accounts waiting, the fewest-first rule converges to equal shares as
 * runs end.
 */
public final class Scheduler implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Scheduler.class);

    private final OperationService operations;
    private final int slots;
    private final int perAccount;
    private final java.util.function.IntSupplier tenants;
    private int tenantCount;
    private long tenantsReadAt;
    private final Map<String, Integer> runningByAccount = new java.util.HashMap<>();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private final LinkedHashMap<String, ArrayDeque<Queued>> queues = new LinkedHashMap<>();
    private final Map<String, CancelToken> running = new ConcurrentHashMap<>();
    private final Thread dispatcher;
    private int busy;
    private volatile boolean closed;

    private record Queued(Operation operation, Job job) {}

    public Scheduler(OperationService operations, int slots) {
        this(operations, slots, slots);
    }

    /** @param perAccount the most slots one account may hold at once (1..slots) */
    public Scheduler(OperationService operations, int slots, int perAccount) {
        this(operations, slots, perAccount, () -> Integer.MAX_VALUE);
    }

    /**
     * @param perAccount the most slots one account may hold at once (1..slots) when there is more than one tenant
     * @param tenants    how many accounts can submit work (hold a live token); read at most once a second
     */
    public Scheduler(OperationService operations, int slots, int perAccount, java.util.function.IntSupplier tenants) {
        if (perAccount < 1 || perAccount > slots) throw new IllegalArgumentException("per-account slots must be between 1 and " + slots);
        this.operations = operations;
        this.slots = slots;
        this.perAccount = perAccount;
        this.tenants = tenants;
        operations.onCancel(this::cancelled);
        dispatcher = Thread.ofVirtual().name("scheduler").start(this::dispatch);
    }

    /** Marks operations left active by a previous run of the server as FAILED. */
    public static int failLeftovers(OperationService operations) {
        int n = 0;
        for (Operation op : operations.active()) {
            if (operations.complete(op.uuid(), new JobOutcome.Failed("the server restarted while this operation was "
                    + op.status().name().toLowerCase() + "; nothing was committed, run it again"))) {
                completionEvent(operations, op.uuid());
                n++;
            }
        }
        return n;
    }

    public void submit(Operation op, Job job) {
        lock.lock();
        try {
            if (closed) throw new IllegalStateException("scheduler is shut down");
            queues.computeIfAbsent(op.accountId(), k -> new ArrayDeque<>()).add(new Queued(op, job));
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** Operations waiting for a slot. */
    public int queued() {
        lock.lock();
        try {
            return queues.values().stream().mapToInt(ArrayDeque::size).sum();
        } finally {
            lock.unlock();
        }
    }

    private void dispatch() {
        while (true) {
            Queued next = null;
            lock.lock();
            try {
                while (!closed && (busy >= slots || (next = takeFairly()) == null)) changed.await();
                if (closed) return;
                busy++;
                runningByAccount.merge(next.operation().accountId(), 1, Integer::sum);
            } catch (InterruptedException e) {
                return;
            } finally {
                lock.unlock();
            }
            Queued job = next;
            Thread.ofVirtual().name("op-" + job.operation().uuid()).start(() -> {
                try {
                    execute(job);
                } finally {
                    lock.lock();
                    try {
                        busy--;
                        runningByAccount.computeIfPresent(job.operation().accountId(), (k, n) -> n > 1 ? n - 1 : null);
                        changed.signalAll();
                    } finally {
                        lock.unlock();
                    }
                }
            });
        }
    }

    /** The tenant count, re-read at most once a second (not a store read per dispatch); called under the lock. */
    private int currentTenants() {
        long now = System.nanoTime();
        if (tenantsReadAt == 0 || now - tenantsReadAt > 1_000_000_000L) {
            try {
                tenantCount = tenants.getAsInt();
            } catch (RuntimeException e) {
                LOG.warn("could not count accounts; keeping the per-account cap", e);
                tenantCount = Integer.MAX_VALUE;
            }
            tenantsReadAt = now;
        }
        return tenantCount;
    }

    /**
     * The head of the queue of the waiting account holding the fewest slots (earliest in the rotation among equals),
     * skipping accounts at their cap; that account then moves to the back of the rotation. Null if none may start.
     */
    private Queued takeFairly() {
        int cap = currentTenants() > 1 ? perAccount : slots;
        String pick = null;
        int fewest = Integer.MAX_VALUE;
        for (String account : queues.keySet()) {
            int held = runningByAccount.getOrDefault(account, 0);
            if (held < cap && held < fewest) {
                pick = account;
                fewest = held;
            }
        }
        if (pick == null) return null;
        ArrayDeque<Queued> queue = queues.remove(pick);
        Queued q = queue.poll();
        if (!queue.isEmpty()) queues.put(pick, queue);
        return q;
    }

    private void execute(Queued q) {
        String uuid = q.operation().uuid();
        CancelToken token = new CancelToken();
        running.put(uuid, token);
        try {
            if (!operations.transition(uuid, EnumSet.of(OperationStatus.PENDING), OperationStatus.ASSIGNED)) return;
            Operation op = operations.get(uuid).orElseThrow();
            JobOutcome outcome;
            try {
                outcome = q.job().run(new JobContext(op, token));
            } catch (Exception | StackOverflowError e) {
                // A stack overflow (a walk a hostile tree drove too deep) unwinds this job only: without this the
                // operation would stay EXECUTING forever.
                if (!token.isCancelled()) LOG.warn("operation {} failed", uuid, e);
                outcome = new JobOutcome.Failed(e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage());
            }
            record(uuid, outcome);
        } catch (RuntimeException e) {
            LOG.error("recording the outcome of operation {} failed", uuid, e);
            operations.complete(uuid, new JobOutcome.Failed("internal error: " + e.getMessage()));
        } finally {
            running.remove(uuid);
            q.job().finished();
            completionEvent(operations, uuid);
        }
    }

    /** Stores the new image (if any) and the outcome in one transaction; a lost race with cancel records neither. */
    private void record(String uuid, JobOutcome outcome) {
        operations.complete(uuid, outcome);
    }

    private static void completionEvent(OperationService operations, String uuid) {
        Operation op = operations.get(uuid).orElse(null);
        if (op == null) return;
        Double seconds = op.durationSeconds();
        operations.appendEvent(uuid, 0, new EventPayload.Completion(op.status(), op.error(),
                seconds == null ? 0 : Math.round(seconds * 1000), op.resultImageUuid(), op.imageSize() == null ? 0 : op.imageSize()));
        operations.eventsClosed(uuid);
    }

    private void cancelled(String uuid) {
        CancelToken token = running.get(uuid);
        if (token != null) token.cancel(CancelToken.Reason.CLIENT_REQUEST);
        lock.lock();
        try {
            for (Iterator<ArrayDeque<Queued>> it = queues.values().iterator(); it.hasNext(); ) {
                ArrayDeque<Queued> q = it.next();
                q.removeIf(item -> {
                    if (!item.operation().uuid().equals(uuid)) return false;
                    item.job().finished();
                    return true;
                });
                if (q.isEmpty()) it.remove();
            }
        } finally {
            lock.unlock();
        }
        if (token == null) completionEvent(operations, uuid);
    }

    private final class JobContext implements Job.Context {
        private final Operation operation;
        private final CancelToken token;

        JobContext(Operation operation, CancelToken token) {
            this.operation = operation;
            this.token = token;
        }

        @Override public Operation operation() { return operation; }
        @Override public CancelToken cancel() { return token; }

        @Override
        public OperationEvent event(int spid, EventPayload payload) {
            return operations.appendEvent(operation.uuid(), spid, payload);
        }

        @Override
        public void executing() {
            operations.transition(operation.uuid(), EnumSet.of(OperationStatus.ASSIGNED), OperationStatus.EXECUTING);
        }
    }

    /** Stops admitting, cancels what runs, and waits up to {@code grace} for it to wind down. */
    public void shutdown(Duration grace) {
        lock.lock();
        try {
            closed = true;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        running.values().forEach(t -> t.cancel(CancelToken.Reason.SERVER_SHUTDOWN));
        long deadline = System.nanoTime() + grace.toNanos();
        lock.lock();
        try {
            while (busy > 0 && System.nanoTime() < deadline) changed.await(50, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void close() {
        shutdown(Duration.ofSeconds(10));
    }
}
