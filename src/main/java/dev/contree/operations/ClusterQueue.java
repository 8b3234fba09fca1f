package dev.contree.operations;

import dev.contree.store.QueueRecords;
import dev.contree.store.QueueRecords.Channel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.function.IntSupplier;

/**
 * The queue in PostgreSQL (serve --database postgresql://…): accepted work is a row ({@link QueueRecords}) that a
 * worker node claims, not a closure in this JVM. Every node runs the parts that need no sandbox:
 * <ul>
 *   <li>submit: the operation's row plus a queue row (stdin, an import's password) and a notification;</li>
 *   <li>the sweeper (every third of the lease): a lapsed lease on an operation that had not started hands it back to
 *   the queue, one that was EXECUTING ends FAILED ("worker W stopped (lease expired …)");</li>
 *   <li>notifications over one LISTEN session: cancels reach the worker holding the operation, new events wake SSE
 *   followers on every node ({@link OperationService#eventsAppendedElsewhere}).</li>
 * </ul>
 * A node whose role runs work also claims: when its own {@link Scheduler} could start one more operation of a kind
 * (slots, host memory/pids as {@link Admission} says), it claims the fairest waiting row it can run (the account with
 * the fewest operations claimed cluster-wide first, round robin among equals), rebuilds the job with the kind's
 * {@link WorkQueue.JobFactory} and hands it to that scheduler. It is woken by notifications and by its own slots
 * freeing; a slow re-check (every 30 s) covers a lost notification. An account at this worker's per-account cap
 * ({@link Scheduler#accountAtCap}) gets nothing more here until one of its runs ends. Its heartbeat extends its leases and stops
 * what it holds that a client cancelled (a missed notification) or whose lease it lost. What it claimed but will not
 * start (a clean stop, a scheduler that refuses it) goes back to the queue at once ({@link QueueRecords#unclaim}).
 */
public final class ClusterQueue implements WorkQueue, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ClusterQueue.class);
    /** Rows looked at per claim for one this worker can run (its image's layers are here). */
    static final int CANDIDATES = 32;
    /** The slow re-check when no notification came: the queue is not polled, this only covers a lost one. */
    static final long RECHECK_MILLIS = 30_000;
    /** Events committed here are announced to other nodes at most this often per operation. */
    static final long EVENT_NOTIFY_MILLIS = 20;
    /** An active operation without a queue row this long after its creation was lost before it was queued. */
    static final Duration ORPHAN_AGE = Duration.ofMinutes(2);

    private final OperationService operations;
    private final QueueRecords queue;
    private final ClusterSettings settings;
    private final String nodeId;
    /** This process's claim identity: its worker id plus a boot id of its own, new at every start. */
    private final QueueRecords.Claimant me;
    private final int maxQueued;
    private final long maxStdinBytes;
    private final IntSupplier tenants;
    private final Scheduler scheduler; // null on an api node
    private final Map<OperationKind, JobFactory> factories = new EnumMap<>(OperationKind.class);
    /** What this worker claimed and has not released: checked against each heartbeat. */
    private final Set<String> held = ConcurrentHashMap.newKeySet();
    private final Set<String> dirtyLogs = ConcurrentHashMap.newKeySet();
    private final Semaphore wake = new Semaphore(0);
    /** Sweep, event announcements and heartbeat on threads of their own: a slow sweep never delays a heartbeat. */
    private final ScheduledExecutorService timers = Executors.newScheduledThreadPool(3, Thread.ofVirtual().name("cluster-", 0).factory());
    private volatile boolean closed;
    private volatile long lastHeartbeatNanos = System.nanoTime();
    /** When this node last failed to reach the database (0: never): its sweeper holds off for a lease after it. */
    private volatile long lastDatabaseFailureNanos;
    /** Ended here but not released (the database was away then): released, and ended if still active, at a heartbeat. */
    private final Set<String> unreleased = ConcurrentHashMap.newKeySet();
    /** Claimed, never started, but the hand-back failed (the database was away): handed back at a heartbeat. */
    private final Set<String> unreturned = ConcurrentHashMap.newKeySet();
    private final java.util.concurrent.atomic.AtomicLong failedHeartbeats = new java.util.concurrent.atomic.AtomicLong();
    private final java.util.concurrent.atomic.AtomicInteger listenReconnects = new java.util.concurrent.atomic.AtomicInteger();
    private final java.util.concurrent.atomic.AtomicBoolean retrying = new java.util.concurrent.atomic.AtomicBoolean();
    private AutoCloseable listener;
    private Thread claimer;

    /**
     * @param scheduler     this node's scheduler, which runs what it claims; null: an api node, which claims nothing
     * @param maxQueued     operations waiting cluster-wide at most (serve --max-queued)
     * @param maxStdinBytes stdin all waiting rows may hold together
     * @param tenants       how many accounts can submit work, for each account's share of the queue
     */
    public ClusterQueue(OperationService operations, QueueRecords queue, ClusterSettings settings, Scheduler scheduler,
                        int maxQueued, long maxStdinBytes, IntSupplier tenants) {
        if (settings.workerId() == null) throw new IllegalArgumentException("a cluster node needs its worker id");
        this.operations = operations;
        this.queue = queue;
        this.settings = settings;
        this.nodeId = settings.workerId();
        this.me = new QueueRecords.Claimant(nodeId, java.util.UUID.randomUUID().toString());
        this.scheduler = settings.role().runsWork() ? scheduler : null;
        this.maxQueued = maxQueued;
        this.maxStdinBytes = maxStdinBytes;
        this.tenants = tenants;
        operations.onCancel(this::cancelled);
        operations.onEvent(e -> dirtyLogs.add(e.operationUuid()));
        operations.logsSharedWithOtherNodes();
    }

    /** Registers how claimed operations of {@code kind} are rebuilt (before {@link #start}). */
    public void register(OperationKind kind, JobFactory factory) {
        factories.put(kind, factory);
    }

    /** Starts listening, sweeping, and (on a worker) heartbeating and claiming. */
    public ClusterQueue start() {
        listener = queue.listen(EnumSet.allOf(Channel.class), this::notified, () -> {
            listenReconnects.incrementAndGet();
            wakeUp(); // notifications may have been missed meanwhile
        });
        long third = Math.max(200, settings.lease().toMillis() / 3);
        if (scheduler != null) {
            // Work this worker's previous process held died with it: its leases lapse now, and one sweep ends it (or
            // hands it back) before this process claims or heartbeats anything.
            queue.expire(nodeId);
            guard("sweep", this::sweep).run();
        }
        timers.scheduleWithFixedDelay(guard("sweep", this::sweep), scheduler != null ? third : 0, third, TimeUnit.MILLISECONDS);
        timers.scheduleWithFixedDelay(guard("event notification", this::announceEvents), EVENT_NOTIFY_MILLIS, EVENT_NOTIFY_MILLIS,
                TimeUnit.MILLISECONDS);
        if (scheduler != null) {
            scheduler.onSlotFreed(this::wakeUp);
            timers.scheduleWithFixedDelay(guard("heartbeat", this::heartbeat), third, third, TimeUnit.MILLISECONDS);
            wakeUp(); // what waits already is looked at once, not after the first re-check
            claimer = Thread.ofVirtual().name("cluster-claim").start(this::claimLoop);
        }
        LOG.info("cluster node {} ({}): lease {} s", nodeId, settings.role().name().toLowerCase(), settings.lease().toSeconds());
        return this;
    }

    public String nodeId() {
        return nodeId;
    }

    private Runnable guard(String what, Runnable r) {
        return () -> {
            if (closed) return;
            try {
                r.run();
            } catch (RuntimeException e) {
                databaseFailed(e);
                LOG.warn("cluster {} failed: {}", what, e.getMessage());
            }
        };
    }

    // ------------------------------------------------------------------ submitting (every node)

    @Override
    public Place reserve(String accountId, long inputBytes) throws RequestRejected {
        if (closed) throw new RequestRejected(RequestRejected.Reason.UNAVAILABLE, "the server is shutting down");
        QueueRecords.Counts counts = queue.counts(accountId);
        if (counts.waiting() >= maxQueued) {
            throw new RequestRejected(RequestRejected.Reason.TOO_MANY, "the cluster's queue is full: " + maxQueued
                    + " operations are waiting already (serve --max-queued); retry later", 10);
        }
        int share = Math.max(1, maxQueued - Math.max(1, maxQueued / 4));
        if (counts.waitingForAccount() >= share && tenants.getAsInt() > 1) {
            throw new RequestRejected(RequestRejected.Reason.TOO_MANY, "this account has " + counts.waitingForAccount()
                    + " operations waiting, its most while other accounts share the queue; retry later", 10);
        }
        if (inputBytes > 0 && counts.stdinBytes() + inputBytes > maxStdinBytes) {
            throw new RequestRejected(RequestRejected.Reason.TOO_MANY, "the cluster holds too much queued stdin (limit " + maxStdinBytes
                    + " bytes for all waiting executions); retry when some have started");
        }
        return () -> {}; // the bound is read from the rows: nothing held between check and submit
    }

    @Override
    public java.util.Optional<String> heldElsewhere(String operationUuid) {
        return queue.holder(operationUuid).filter(w -> !w.equals(nodeId));
    }

    @Override
    public boolean runsWorkHere() {
        return scheduler != null;
    }

    @Override
    public java.util.Optional<String> routeTo(String operationUuid) {
        return heldElsewhere(operationUuid).flatMap(queue::apiUrl);
    }

    /** Records where this node serves HTTP (once it listens), for calls other nodes route to it. */
    public void advertise(String apiUrl) {
        queue.advertise(nodeId, apiUrl);
    }

    @Override
    public boolean inProcess() {
        return false;
    }

    @Override
    public void submit(Place place, Operation op, Job job) {
        throw new UnsupportedOperationException("the cluster queue stores work for workers: submit its StoredInput");
    }

    @Override
    public void submit(Place place, Operation op, StoredInput input) {
        queue.enqueue(op.uuid(), op.accountId(), op.kind(), input.stdin(), input.secret());
    }

    /** A client cancelled (on this node): waiting work leaves the queue here, held work is stopped by its worker. */
    private void cancelled(String uuid) {
        if (queue.dequeueWaiting(uuid)) {
            Scheduler.completionEvent(operations, uuid);
            return;
        }
        queue.notify(Channel.CANCEL, List.of(uuid));
    }

    // ------------------------------------------------------------------ notifications

    private void notified(Channel channel, String payload) {
        switch (channel) {
            case QUEUE -> wakeUp();
            case CANCEL -> {
                if (scheduler != null && held.contains(payload)) scheduler.cancelHere(payload);
            }
            case EVENTS -> {
                int colon = payload.indexOf(' ');
                if (colon < 0 || payload.substring(0, colon).equals(nodeId)) return; // our own: followers here heard already
                operations.eventsAppendedElsewhere(payload.substring(colon + 1));
            }
        }
    }

    /** Tells the other nodes which logs got events here (coalesced: one notification per log per period). */
    private void announceEvents() {
        if (dirtyLogs.isEmpty()) return;
        List<String> payloads = new ArrayList<>();
        for (String uuid : List.copyOf(dirtyLogs)) {
            dirtyLogs.remove(uuid);
            payloads.add(nodeId + " " + uuid);
        }
        queue.notify(Channel.EVENTS, payloads);
    }

    // ------------------------------------------------------------------ the sweeper (every node)

    /** Notes when this node could not reach the database (not any failure: a bug must not pause the sweeper). */
    private void databaseFailed(RuntimeException e) {
        if (e instanceof dev.contree.store.StoreUnavailableException) lastDatabaseFailureNanos = System.nanoTime();
    }

    void sweep() {
        long sinceFailure = System.nanoTime() - lastDatabaseFailureNanos;
        if (lastDatabaseFailureNanos != 0 && sinceFailure < settings.lease().toNanos()) {
            // This node could not reach the database a moment ago: the workers probably could not either, and their
            // leases lapsed for that, not because they stopped. They renew within a third of a lease once it is back.
            return;
        }
        for (QueueRecords.Lapsed l : queue.lapsed(100)) {
            String uuid = l.operationUuid();
            switch (l.status()) {
                case PENDING -> {
                    // Claimed, never started (its worker had not moved it to ASSIGNED): back to the queue for any worker.
                    if (queue.handBack(uuid, l.holder())) {
                        LOG.info("operation {} handed back to the queue: worker {} stopped before starting it", uuid, l.workerId());
                    }
                }
                case ASSIGNED, EXECUTING -> {
                    // Started: its worker may have run part of it, so it is not run twice; it fails and the client retries.
                    // The row goes first, and only if its lease is still lapsed: a worker whose heartbeat renewed it since
                    // lapsed() keeps it (an operation left without a row is failed later as an orphan).
                    if (!queue.removeLapsed(uuid, l.holder())) continue;
                    if (operations.complete(uuid, new JobOutcome.Failed("worker " + l.workerId() + " stopped (lease expired at "
                            + l.expiredAt() + ") while this operation was " + l.status().name().toLowerCase()
                            + "; nothing was committed, run it again"))) {
                        operations.eventsClosed(uuid);
                        LOG.warn("operation {} failed: worker {} stopped (lease expired at {})", uuid, l.workerId(), l.expiredAt());
                    } else {
                        operations.appendCompletionOnce(uuid); // it ended meanwhile (a cancel): its log still gets its end
                    }
                }
                default -> {
                    // Over (a cancel, or a worker that died between its finish and its release): its log gets its end.
                    if (!queue.removeLapsed(uuid, l.holder())) continue;
                    operations.appendCompletionOnce(uuid);
                }
            }
        }
        for (String uuid : queue.orphans(ORPHAN_AGE)) {
            if (operations.complete(uuid, new JobOutcome.Failed("the node that accepted this operation stopped before queueing it;"
                    + " nothing ran, run it again"))) {
                operations.eventsClosed(uuid);
            }
        }
    }

    // ------------------------------------------------------------------ the worker

    private void wakeUp() {
        if (wake.availablePermits() == 0) wake.release();
    }

    private void claimLoop() {
        while (!closed) {
            try {
                // While only the host's memory or pids hold executions back, look again as often as admission reads
                // the host (no query unless it admits): the host can free without any of ours ending.
                long wait = factories.containsKey(OperationKind.INSTANCE) && scheduler.hostLimited()
                        ? Admission.REFRESH_NANOS / 1_000_000 : RECHECK_MILLIS;
                boolean woken = wake.tryAcquire(wait, TimeUnit.MILLISECONDS);
                wake.drainPermits();
                if (closed) return;
                if (!woken && wait < RECHECK_MILLIS && !scheduler.canStart(OperationKind.INSTANCE)) continue; // still full
                claimWhileRoom();
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException e) {
                databaseFailed(e);
                LOG.warn("claiming work failed: {}", e.getMessage());
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException ie) {
                    return;
                }
                wakeUp();
            }
        }
    }

    private void claimWhileRoom() {
        while (!closed) {
            Set<OperationKind> kinds = EnumSet.noneOf(OperationKind.class);
            for (OperationKind k : factories.keySet()) if (settings.kinds().contains(k) && scheduler.canStart(k)) kinds.add(k);
            if (kinds.isEmpty()) return;
            var claim = queue.claim(me, kinds, settings.lease(), CANDIDATES, this::runnableHere);
            if (claim.isEmpty()) return;
            held.add(claim.get().operationUuid());
            start(claim.get());
        }
    }

    private boolean runnableHere(String uuid) {
        Operation op = operations.get(uuid).orElse(null);
        if (op == null || op.status() != OperationStatus.PENDING || scheduler.accountAtCap(op.accountId())) return false;
        JobFactory f = factories.get(op.kind());
        return f != null && f.runnableHere(op);
    }

    private void start(QueueRecords.Claim claim) {
        String uuid = claim.operationUuid();
        Operation op = operations.get(uuid).orElse(null);
        if (op == null) {
            release(uuid);
            return;
        }
        Job job;
        try {
            job = factories.get(op.kind()).rebuild(op, new StoredInput(claim.stdin(), claim.secret()));
        } catch (RequestRejected | RuntimeException e) {
            if (operations.complete(uuid, new JobOutcome.Failed("worker " + nodeId + " cannot run this operation: " + e.getMessage()))) {
                operations.eventsClosed(uuid);
            }
            release(uuid);
            return;
        }
        Claimed claimed = new Claimed(uuid, job, claim.secret() != null);
        if (closed) {
            claimed.handBack(); // shutting down: another worker runs it now, not after this lease
            return;
        }
        try {
            scheduler.submit(op, claimed);
        } catch (RuntimeException e) {
            LOG.info("operation {} handed back to the queue: this worker's scheduler refused it ({})", uuid, e.getMessage());
            claimed.handBack();
        }
    }

    /** A claimed operation's job on this worker: released when it ends, or handed back if it never started here. */
    private final class Claimed implements Job {
        private final String uuid;
        private final Job job;
        private final boolean secret;
        private volatile boolean handBack;

        Claimed(String uuid, Job job, boolean secret) {
            this.uuid = uuid;
            this.job = job;
            this.secret = secret;
        }

        @Override
        public JobOutcome run(Context ctx) throws Exception {
            // Started: it is never handed to another worker again, so the row need not keep an import's password.
            if (secret) {
                try {
                    queue.forgetSecret(uuid, me);
                } catch (RuntimeException e) {
                    LOG.warn("operation {}: dropping its stored password failed ({}); it goes with the row", uuid, e.getMessage());
                }
            }
            return job.run(ctx);
        }

        @Override
        public void finished() {
            try {
                job.finished();
            } finally {
                if (handBack) unclaim(uuid);
                else release(uuid);
            }
        }

        /** It never started here: its row goes back to the waiting rows at once, for any worker. */
        void handBack() {
            handBack = true;
            finished();
        }
    }

    /** Gives a claimed, never started operation back to the queue; one that ended meanwhile is released instead. */
    private void unclaim(String uuid) {
        try {
            if (queue.unclaim(uuid, me)) {
                LOG.info("operation {} handed back to the queue by worker {}", uuid, nodeId);
            } else if (queue.release(uuid, me)) {
                operations.appendCompletionOnce(uuid); // cancelled meanwhile: its log gets its end
            }
        } catch (RuntimeException e) {
            unreturned.add(uuid); // the next heartbeat that reaches the database hands it back (it must not renew it)
            LOG.warn("handing operation {} back to the queue failed: {}", uuid, e.getMessage());
        } finally {
            held.remove(uuid);
        }
    }

    private void release(String uuid) {
        try {
            if (!queue.release(uuid, me)) LOG.info("operation {} was no longer this worker's row: another node took it", uuid);
        } catch (RuntimeException e) {
            // The database is away: the next heartbeat that reaches it releases the row (and ends the operation if its
            // outcome was not recorded either). Until then the heartbeat must not renew it.
            unreleased.add(uuid);
            LOG.warn("releasing operation {} from the queue failed: {}", uuid, e.getMessage());
        } finally {
            held.remove(uuid);
        }
    }

    /** Extends this worker's leases; stops what a client cancelled, and everything once its leases may have lapsed. */
    private void heartbeat() {
        Set<String> before = Set.copyOf(held); // claimed after the heartbeat's read, a row is not missing from it
        List<QueueRecords.Held> rows;
        try {
            rows = queue.heartbeat(me, settings.lease());
        } catch (RuntimeException e) {
            failedHeartbeats.incrementAndGet();
            databaseFailed(e);
            // One failed heartbeat costs nothing: the leases hold for a lease from the last good one. Try again in a
            // second (not a third of the lease) so they are renewed as soon as the database is back.
            if (!closed && retrying.compareAndSet(false, true)) {
                timers.schedule(() -> {
                    retrying.set(false);
                    guard("heartbeat", this::heartbeat).run();
                }, 1, TimeUnit.SECONDS);
            }
            if (System.nanoTime() - lastHeartbeatNanos > settings.lease().toNanos()) {
                LOG.error("no heartbeat for longer than the lease ({}): stopping this worker's operations, which other nodes"
                        + " now end", e.getMessage());
                held.forEach(scheduler::dropHere);
            }
            throw e;
        }
        lastHeartbeatNanos = System.nanoTime();
        releaseUnreleased();
        Set<String> stillHeld = ConcurrentHashMap.newKeySet();
        for (QueueRecords.Held h : rows) {
            stillHeld.add(h.operationUuid());
            if (h.status() == OperationStatus.CANCELLED && held.contains(h.operationUuid())) scheduler.cancelHere(h.operationUuid());
        }
        for (String uuid : before) {
            // Claimed by this worker but no longer its row: a sweeper took it (this worker was cut off for a lease).
            if (!stillHeld.contains(uuid) && held.contains(uuid)) scheduler.dropHere(uuid);
        }
    }

    /** Rows of operations that ended here while the database was away: ended (if still active) and released now. */
    private void releaseUnreleased() {
        for (String uuid : List.copyOf(unreleased)) {
            if (operations.complete(uuid, new JobOutcome.Failed("worker " + nodeId + " could not record this operation's"
                    + " outcome: the database was unavailable when it ended; run it again"))) {
                operations.eventsClosed(uuid);
            }
            queue.release(uuid, me);
            unreleased.remove(uuid);
        }
        for (String uuid : List.copyOf(unreturned)) {
            if (!queue.unclaim(uuid, me) && queue.release(uuid, me)) operations.appendCompletionOnce(uuid);
            unreturned.remove(uuid);
        }
    }

    /** Times the notification session was opened again after it was lost. */
    public int listenReconnects() {
        return listenReconnects.get();
    }

    /** Heartbeats that could not reach the database since this node started. */
    public long failedHeartbeats() {
        return failedHeartbeats.get();
    }

    /** Operations this worker holds (claimed, not released). */
    public int held() {
        return held.size();
    }

    /**
     * A clean stop: claims nothing more, and gives every operation it claimed but has not started back to the queue
     * at once (another worker claims it now, not a lease later); what runs is stopped by the scheduler's shutdown.
     */
    @Override
    public void close() {
        closed = true;
        wakeUp();
        timers.shutdownNow();
        if (claimer != null) {
            try {
                claimer.join(10_000); // a claim in flight ends first: handed back, since this queue is closed
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (scheduler != null) {
            scheduler.stopStarting();
            for (String uuid : List.copyOf(held)) {
                if (scheduler.withdraw(uuid) instanceof Claimed c) c.handBack();
            }
        }
        abandon();
    }

    /** Stops as a killed process would: no hand-back, no heartbeat, no notification session (tests of a crash). */
    public void abandon() {
        closed = true;
        wakeUp();
        timers.shutdownNow();
        if (listener != null) {
            try {
                listener.close();
            } catch (Exception e) {
                LOG.warn("closing the notification session failed", e);
            }
        }
        if (claimer != null) claimer.interrupt();
    }
}
