package dev.contree.operations;

import dev.contree.cancel.CancelToken;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.EnumSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Admits operations fairly between accounts, runs each on a virtual thread, and records the outcome.
 * PENDING → ASSIGNED → EXECUTING → SUCCESS/FAILED/CANCELLED; a cancel at any point wins.
 *
 * <p>An execution starts when a slot is free ({@link Bounds#slots}, the operator's upper bound) and the host can hold
 * one more sandbox ({@link Admission}: memory and pids); an import when a slot and an import slot are free. Queued
 * operations cost a map entry each (no thread; stdin waits on disk), a cancel removes one at once, and the queue is
 * bounded ({@link Bounds#maxQueued}): past it {@link #reserve} refuses, before anything is recorded.
 *
 * <p>Fairness covers running slots, not only queue order. A free slot goes to the waiting account that holds the
 * fewest slots (round robin among equals), and no account ever holds more than {@code perAccount} slots while
 * more than one account can submit work (a single-tenant server lends every slot to its one account). Running
 * work is never preempted, so that cap is what keeps slots free for a second account while a first one fills the
 * server with hour-long runs; with several accounts waiting, the fewest-first rule converges to equal shares as
 * runs end.
 */
public final class Scheduler implements AutoCloseable, WorkQueue {
    private static final Logger LOG = LoggerFactory.getLogger(Scheduler.class);

    private final OperationService operations;
    private final int slots;
    private final int perAccount;
    private final int importSlots;
    private final int maxQueued;
    private final java.util.function.IntSupplier tenants;
    private final Admission admission;
    private int tenantCount;
    private long tenantsReadAt;
    private final Map<String, Integer> runningByAccount = new java.util.HashMap<>();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    /** Per account, its queued operations by uuid in submission order (a cancel removes one in O(1)). */
    private final LinkedHashMap<String, LinkedHashMap<String, Queued>> queues = new LinkedHashMap<>();
    private final Map<String, Integer> reservedByAccount = new java.util.HashMap<>();
    private final Map<String, CancelToken> running = new ConcurrentHashMap<>();
    /** Operations {@link #dropHere dropped} while running: their end appends nothing to their log. */
    private final java.util.Set<String> silenced = ConcurrentHashMap.newKeySet();
    private final DrainRate drain = new DrainRate();
    private final Thread dispatcher;
    private int busy;
    private int sandboxes;
    private int imports;
    private int queuedTotal;
    private int reservedTotal;
    private boolean hostBlocked;
    private long hostBlockLoggedAt;
    private volatile boolean closed;
    private volatile Runnable onSlotFreed;

    private record Queued(Operation operation, Job job) {}

    /**
     * What bounds the scheduler besides the host.
     *
     * @param slots      operations (executions and imports) running at once, at most
     * @param perAccount the most slots one account may hold at once (1..slots) when there is more than one tenant; when
     *                   the host admits fewer than {@code slots} executions, the same fraction of what it admits
     * @param imports    imports running at once, at most (they unpack on the server's own CPUs and disk)
     * @param maxQueued  operations waiting (PENDING) at most; past it a submission is refused with 429
     */
    public record Bounds(int slots, int perAccount, int imports, int maxQueued) {
        public Bounds {
            if (slots < 1) throw new IllegalArgumentException("concurrency must be at least 1");
            if (perAccount < 1 || perAccount > slots) throw new IllegalArgumentException("per-account slots must be between 1 and " + slots);
            if (imports < 1) throw new IllegalArgumentException("import concurrency must be at least 1");
            if (maxQueued < 1) throw new IllegalArgumentException("max queued must be at least 1");
        }
    }

    public Scheduler(OperationService operations, int slots) {
        this(operations, slots, slots);
    }

    /** @param perAccount the most slots one account may hold at once (1..slots) */
    public Scheduler(OperationService operations, int slots, int perAccount) {
        this(operations, slots, perAccount, () -> Integer.MAX_VALUE);
    }

    /**
     * A scheduler bounded by slots only (no host admission, no queue bound).
     *
     * @param perAccount the most slots one account may hold at once (1..slots) when there is more than one tenant
     * @param tenants    how many accounts can submit work (hold a live token); read at most once a second
     */
    public Scheduler(OperationService operations, int slots, int perAccount, java.util.function.IntSupplier tenants) {
        this(operations, new Bounds(slots, perAccount, slots, Integer.MAX_VALUE), tenants, Admission.unbounded());
    }

    /**
     * @param tenants   how many accounts can submit work (hold a live token); read at most once a second
     * @param admission whether the host can hold one more execution (imports are bounded by {@link Bounds#imports})
     */
    public Scheduler(OperationService operations, Bounds bounds, java.util.function.IntSupplier tenants, Admission admission) {
        this(operations, bounds, tenants, admission, true);
    }

    /**
     * @param hearsCancels whether this scheduler acts on {@link OperationService#onCancel} itself (a single node); a
     *                     cluster worker forwards the cancels of the operations it holds through {@link #cancelHere}
     */
    public Scheduler(OperationService operations, Bounds bounds, java.util.function.IntSupplier tenants, Admission admission,
                     boolean hearsCancels) {
        this.operations = operations;
        this.slots = bounds.slots();
        this.perAccount = bounds.perAccount();
        this.importSlots = bounds.imports();
        this.maxQueued = bounds.maxQueued();
        this.tenants = tenants;
        this.admission = admission;
        if (hearsCancels) operations.onCancel(this::cancelled);
        dispatcher = Thread.ofVirtual().name("scheduler").start(this::dispatch);
    }

    /** Marks operations left active by a previous run of the server as FAILED. */
    public static int failLeftovers(OperationService operations) {
        int n = 0;
        for (Operation op : operations.active()) {
            if (operations.complete(op.uuid(), new JobOutcome.Failed("the server restarted while this operation was "
                    + op.status().name().toLowerCase() + "; nothing was committed, run it again"))) {
                operations.eventsClosed(op.uuid());
                n++;
            }
        }
        return n;
    }

    /**
     * A place in the queue, held between the admission check and the operation's record: a refused request records
     * nothing, and concurrent requests cannot together pass the bound. {@link #close} gives an unused place back.
     */
    public final class Reservation implements WorkQueue.Place {
        private final String accountId;
        private boolean open = true;

        private Reservation(String accountId) {
            this.accountId = accountId;
        }

        @Override
        public void close() {
            lock.lock();
            try {
                if (!open) return;
                open = false;
                reservedTotal--;
                reservedByAccount.computeIfPresent(accountId, (k, n) -> n > 1 ? n - 1 : null);
            } finally {
                lock.unlock();
            }
        }
    }

    /**
     * Reserves a place in the queue for {@code accountId}, or refuses with {@link RequestRejected.Reason#TOO_MANY} (and a
     * retry hint) when {@code maxQueued} operations wait already, or, while several accounts share the server, the
     * account holds its share of them (all but a quarter, as with slots).
     */
    public Reservation reserve(String accountId) throws RequestRejected {
        lock.lock();
        try {
            if (closed) throw new RequestRejected(RequestRejected.Reason.UNAVAILABLE, "the server is shutting down");
            if (queuedTotal + reservedTotal >= maxQueued) {
                throw new RequestRejected(RequestRejected.Reason.TOO_MANY, "the server's queue is full: " + maxQueued
                        + " operations are waiting already (serve --max-queued); retry later", drain.retryAfterSeconds(System.nanoTime()));
            }
            int mine = queueOf(accountId) + reservedByAccount.getOrDefault(accountId, 0);
            int share = accountShare(maxQueued);
            if (mine >= share && currentTenants() > 1) {
                throw new RequestRejected(RequestRejected.Reason.TOO_MANY, "this account has " + mine
                        + " operations waiting, its most while other accounts share the server's queue; retry later",
                        drain.retryAfterSeconds(System.nanoTime()));
            }
            reservedTotal++;
            reservedByAccount.merge(accountId, 1, Integer::sum);
            return new Reservation(accountId);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public Place reserve(String accountId, long inputBytes) throws RequestRejected {
        return reserve(accountId); // stdin is bounded by the node's spool
    }

    @Override
    public boolean inProcess() {
        return true;
    }

    @Override
    public void submit(Place place, Operation op, Job job) {
        submit((Reservation) place, op, job);
    }

    @Override
    public void submit(Place place, Operation op, StoredInput input) {
        throw new UnsupportedOperationException("the in-memory scheduler runs built jobs: submit a Job");
    }

    /** Queues {@code op} in the place {@code reservation} held (which is then used up). */
    public void submit(Reservation reservation, Operation op, Job job) {
        lock.lock();
        try {
            if (!reservation.open || !reservation.accountId.equals(op.accountId())) {
                throw new IllegalStateException("reservation already used or for another account");
            }
            reservation.close();
            enqueue(op, job);
        } finally {
            lock.unlock();
        }
    }

    /** Queues {@code op} whatever the queue bound (callers that reserve go through {@link #submit(Reservation, Operation, Job)}). */
    public void submit(Operation op, Job job) {
        lock.lock();
        try {
            enqueue(op, job);
        } finally {
            lock.unlock();
        }
    }

    private void enqueue(Operation op, Job job) {
        if (closed) throw new IllegalStateException("scheduler is shut down");
        queues.computeIfAbsent(op.accountId(), k -> new LinkedHashMap<>()).put(op.uuid(), new Queued(op, job));
        queuedTotal++;
        changed.signalAll();
    }

    private int queueOf(String accountId) {
        LinkedHashMap<String, Queued> q = queues.get(accountId);
        return q == null ? 0 : q.size();
    }

    /** Operations waiting for a slot. */
    public int queued() {
        lock.lock();
        try {
            return queuedTotal;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Executions that could run at once right now: those running plus as many more as the host admits, at most the
     * slots. What {@code whoami} reports as {@code instance_max_concurrency}.
     */
    public int effectiveLimit() {
        lock.lock();
        try {
            return (int) Math.min(slots, (long) sandboxes + admission.room(sandboxes, System.nanoTime()));
        } finally {
            lock.unlock();
        }
    }

    /** The most operations that run at once (the configured bound, lowered at start-up if the host cannot hold it). */
    public int slots() {
        return slots;
    }

    private void dispatch() {
        while (true) {
            Queued next = null;
            Admission.Ticket ticket = null;
            lock.lock();
            try {
                while (!closed && (next = takeFairly()) == null) {
                    // Blocked by the host (not by slots): its memory may free without any of ours ending.
                    if (hostBlocked) changed.await(Admission.REFRESH_NANOS, TimeUnit.NANOSECONDS);
                    else changed.await();
                }
                if (closed) return;
                busy++;
                runningByAccount.merge(next.operation().accountId(), 1, Integer::sum);
                if (isExecution(next)) {
                    sandboxes++;
                    ticket = admission.admit(System.nanoTime());
                } else {
                    imports++;
                }
                drain.started(System.nanoTime());
            } catch (InterruptedException e) {
                return;
            } finally {
                lock.unlock();
            }
            Queued job = next;
            Admission.Ticket admitted = ticket;
            Thread.ofVirtual().name("op-" + job.operation().uuid()).start(() -> {
                try {
                    execute(job);
                } finally {
                    lock.lock();
                    try {
                        busy--;
                        if (admitted != null) {
                            sandboxes--;
                            admission.release(admitted);
                        } else {
                            imports--;
                        }
                        runningByAccount.computeIfPresent(job.operation().accountId(), (k, n) -> n > 1 ? n - 1 : null);
                        changed.signalAll();
                    } finally {
                        lock.unlock();
                    }
                    Runnable freed = onSlotFreed;
                    if (freed != null) freed.run();
                }
            });
        }
    }

    private static boolean isExecution(Queued q) {
        return q.operation().kind() == OperationKind.INSTANCE;
    }

    /** All but a quarter (at least one kept back) of {@code n}: an account's share while others share the server. */
    private static int accountShare(int n) {
        return Math.max(1, n - Math.max(1, n / 4));
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
     * skipping accounts at their cap and heads that cannot start now (an execution the host cannot hold, an import past
     * the import bound); that account then moves to the back of the rotation. Null if none may start. Called under the lock.
     */
    private Queued takeFairly() {
        hostBlocked = false;
        if (busy >= slots || queues.isEmpty()) return null;
        long now = System.nanoTime();
        int room = admission.room(sandboxes, now);
        int cap = currentTenants() > 1 ? perAccountCap(room) : slots;
        String pick = null;
        int fewest = Integer.MAX_VALUE;
        boolean executionWaits = false;
        for (Map.Entry<String, LinkedHashMap<String, Queued>> e : queues.entrySet()) {
            int held = runningByAccount.getOrDefault(e.getKey(), 0);
            if (held >= cap || held >= fewest) continue;
            Queued head = e.getValue().values().iterator().next();
            boolean startable = isExecution(head) ? room > 0 : imports < importSlots;
            if (isExecution(head) && room <= 0) executionWaits = true;
            if (!startable) continue;
            pick = e.getKey();
            fewest = held;
        }
        if (pick == null) {
            // A cap lowered because the host admits less (not a slot count) lifts when memory frees, not only when
            // one of ours ends: poll for that too.
            hostBlocked = admission.bounded() && (executionWaits || cap < perAccount);
            if (executionWaits && hostBlocked && now - hostBlockLoggedAt > 60_000_000_000L) {
                hostBlockLoggedAt = now;
                LOG.info("executions wait for host {} ({} running, {} queued)", admission.lastBlock(), sandboxes, queuedTotal);
            }
            return null;
        }
        LinkedHashMap<String, Queued> queue = queues.remove(pick);
        Iterator<Queued> it = queue.values().iterator();
        Queued q = it.next();
        it.remove();
        queuedTotal--;
        if (!queue.isEmpty()) queues.put(pick, queue);
        return q;
    }

    /**
     * The per-account cap while several accounts share the server: {@code perAccount} when the host admits every slot,
     * else the same fraction of what it admits, so the reserve for other accounts holds when memory, not the slot
     * count, is the bound.
     */
    private int perAccountCap(int room) {
        if (perAccount == slots) return slots;
        long effective = Math.min(slots, (long) busy + room);
        if (effective >= slots) return perAccount;
        return (int) Math.max(1, (long) perAccount * effective / slots);
    }

    private void execute(Queued q) {
        String uuid = q.operation().uuid();
        CancelToken token = new CancelToken();
        running.put(uuid, token);
        boolean completed = false; // recorded with its completion event
        try {
            if (!operations.transition(uuid, EnumSet.of(OperationStatus.PENDING), OperationStatus.ASSIGNED)) return;
            Operation op = assigned(q.operation());
            JobOutcome outcome;
            try {
                outcome = q.job().run(new JobContext(op, token));
            } catch (Exception | StackOverflowError e) {
                // A stack overflow (a walk a hostile tree drove too deep) unwinds this job only: without this the
                // operation would stay EXECUTING forever.
                if (!token.isCancelled()) LOG.warn("operation {} failed", uuid, e);
                outcome = new JobOutcome.Failed(e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage());
            }
            completed = record(uuid, outcome);
        } catch (RuntimeException e) {
            LOG.error("recording the outcome of operation {} failed", uuid, e);
            completed = operations.complete(uuid, new JobOutcome.Failed("internal error: " + e.getMessage()));
        } finally {
            running.remove(uuid);
            q.job().finished();
            if (completed) operations.eventsClosed(uuid);
            else if (!silenced.remove(uuid)) completionEvent(operations, uuid); // ended elsewhere (cancelled): its completion is appended here
        }
    }

    /** The queued operation as its move to ASSIGNED left it (the row changed in nothing else: not read back). */
    private static Operation assigned(Operation op) {
        return new Operation(op.uuid(), op.accountId(), op.kind(), OperationStatus.ASSIGNED, op.error(), op.createdAt(), op.startedAt(),
                op.finishedAt(), op.imageUuid(), op.resultImageUuid(), op.resultTag(), op.imageSize(), op.consumedCpu(),
                op.consumedMemory(), op.request(), op.result());
    }

    /**
     * Stores the new image (if any), the outcome and the completion event in one transaction; a lost race with
     * cancel records none of them (false).
     */
    private boolean record(String uuid, JobOutcome outcome) {
        return operations.complete(uuid, outcome);
    }

    static void completionEvent(OperationService operations, String uuid) {
        if (operations.logsAreShared()) {
            // A cluster: a sweeper on another node may end the same log; one completion whoever comes first.
            operations.appendCompletionOnce(uuid);
            return;
        }
        Operation op = operations.get(uuid).orElse(null);
        if (op == null) return;
        operations.appendEvent(uuid, 0, EventPayload.Completion.of(op));
        operations.eventsClosed(uuid);
    }

    /** Takes {@code uuid} out of the queue if it waits here (it costs O(accounts)); null when it does not. */
    private Queued dequeue(String uuid) {
        lock.lock();
        try {
            Queued removed = null;
            for (Iterator<LinkedHashMap<String, Queued>> it = queues.values().iterator(); it.hasNext() && removed == null; ) {
                LinkedHashMap<String, Queued> q = it.next();
                removed = q.remove(uuid);
                if (q.isEmpty()) it.remove();
            }
            if (removed != null) {
                queuedTotal--;
                changed.signalAll();
            }
            return removed;
        } finally {
            lock.unlock();
        }
    }

    private void cancelled(String uuid) {
        CancelToken token = running.get(uuid);
        if (token != null) token.cancel(CancelToken.Reason.CLIENT_REQUEST);
        Queued removed = dequeue(uuid);
        if (removed != null) removed.job().finished();
        if (token == null) completionEvent(operations, uuid);
    }

    // ------------------------------------------------------------------ what a cluster worker asks of its node

    /**
     * Whether one more operation of {@code kind} would start at once: nothing waits here, a slot is free, and for an
     * execution the host admits one more sandbox (for an import, an import slot is free). A worker claims only then.
     */
    public boolean canStart(OperationKind kind) {
        lock.lock();
        try {
            if (closed || queuedTotal > 0 || busy >= slots) return false;
            if (kind == OperationKind.INSTANCE) return admission.room(sandboxes, System.nanoTime()) > 0;
            return imports < importSlots;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Whether only the host (memory, pids), not a slot, keeps one more execution from starting: the host can free
     * without any of ours ending, so a worker looks again soon (as {@link #dispatch} does), without asking the queue.
     */
    public boolean hostLimited() {
        lock.lock();
        try {
            return !closed && queuedTotal == 0 && busy < slots && admission.bounded() && admission.room(sandboxes, System.nanoTime()) == 0;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Whether {@code accountId} holds its most slots here while several accounts can submit work: a worker then claims
     * none of its operations (they would wait here, keeping the next account's from this worker), as {@link #dispatch}
     * skips its queue on one node.
     */
    public boolean accountAtCap(String accountId) {
        lock.lock();
        try {
            if (perAccount == slots || currentTenants() <= 1) return false;
            return runningByAccount.getOrDefault(accountId, 0) >= perAccountCap(admission.room(sandboxes, System.nanoTime()));
        } finally {
            lock.unlock();
        }
    }

    /** Called (off the lock, on the ending job's thread) whenever an operation ends and its slot frees. */
    public void onSlotFreed(Runnable r) {
        onSlotFreed = r;
    }

    /**
     * Stops {@code uuid} if this node holds it: cancels it while it runs, drops it while it waits here (appending its
     * completion, since no job will); false when this node does not hold it.
     */
    public boolean cancelHere(String uuid) {
        CancelToken token = running.get(uuid);
        if (token != null) {
            token.cancel(CancelToken.Reason.CLIENT_REQUEST);
            return true;
        }
        Queued removed = dequeue(uuid);
        if (removed == null) return false;
        removed.job().finished();
        completionEvent(operations, uuid);
        return true;
    }

    /**
     * Stops {@code uuid} because this worker lost its lease on it (another node ended it or handed it back): cancelled
     * as at shutdown if it runs, dropped if it waits, and its log left alone (it is no longer this node's to close).
     */
    public void dropHere(String uuid) {
        CancelToken token = running.get(uuid);
        if (token != null) {
            silenced.add(uuid);
            token.cancel(CancelToken.Reason.SERVER_SHUTDOWN);
            return;
        }
        Queued removed = dequeue(uuid);
        if (removed != null) removed.job().finished();
    }

    /**
     * Takes {@code uuid} out of this node's queue if it waits here, without finishing its job: a cluster worker hands
     * the claimed operation back to the shared queue instead. Null when it does not wait here (it runs, or ended).
     */
    public Job withdraw(String uuid) {
        Queued removed = dequeue(uuid);
        return removed == null ? null : removed.job();
    }

    /** Starts nothing more (what waits stays queued, to be {@link #withdraw}n); what runs goes on until {@link #shutdown}. */
    public void stopStarting() {
        lock.lock();
        try {
            closed = true;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** Dispatch times, for a Retry-After that says when the queue will likely have room again. */
    private static final class DrainRate {
        private final long[] starts = new long[32];
        private int count;

        void started(long now) {
            starts[count++ % starts.length] = now;
        }

        /** Seconds until one more place frees at the recent rate of starts: 1..60, 10 with no history. */
        int retryAfterSeconds(long now) {
            int n = Math.min(count, starts.length);
            if (n < 2) return 10;
            long oldest = starts[(count - n) % starts.length];
            long spanNanos = now - oldest;
            if (spanNanos > 120_000_000_000L) return 30; // nothing recent: a guess, not a promise
            double perStart = spanNanos / 1e9 / n;
            return (int) Math.max(1, Math.min(60, Math.ceil(perStart)));
        }
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
            operations.executingLater(operation.uuid());
        }
    }

    /** Stops admitting, cancels what runs, and waits up to {@code grace} for it to wind down. */
    public void shutdown(Duration grace) {
        stopStarting();
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
