package dev.contree.store;

import dev.contree.operations.OperationKind;
import dev.contree.operations.OperationStatus;

import java.time.Duration;
import java.time.Instant;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.BiConsumer;
import java.util.function.Predicate;

/**
 * The cluster queue (PostgreSQL only): one row per accepted operation until it is over, claimed by a worker that then
 * holds a lease on it, plus the notifications that wake workers and followers on other nodes. The operation's own row
 * (status, request, events) stays in {@link OperationRecords}; this holds only what a worker needs besides it.
 */
public interface QueueRecords {
    /** Notification channels between nodes. */
    enum Channel {
        /** Work was queued or handed back: workers look for some. */
        QUEUE("contree_queue"),
        /** Payload: an operation uuid a client cancelled; the worker running it stops it. */
        CANCEL("contree_cancel"),
        /** Payload: an operation uuid whose log has new events; nodes with followers read them. */
        EVENTS("contree_events");

        public final String pgName;

        Channel(String pgName) {
            this.pgName = pgName;
        }
    }

    /** What waits, for the queue bound: all waiting rows, the account's, and the stdin bytes the waiting rows hold. */
    record Counts(long waiting, long waitingForAccount, long stdinBytes) {}

    /**
     * Who holds a claim: the worker's id (its name in messages and routing) and the boot of the process that claimed
     * (random per start), so a worker restarted under the same id never renews or releases what its previous process held.
     */
    record Claimant(String workerId, String boot) {}

    /** A claimed row: what the worker rebuilds the job from besides the operation's row. */
    record Claim(String operationUuid, byte[] stdin, String secret) {}

    /** A claimed row whose lease lapsed: its worker stopped heartbeating. */
    record Lapsed(String operationUuid, Claimant holder, Instant expiredAt, OperationStatus status) {
        public String workerId() {
            return holder.workerId();
        }
    }

    /** An operation a worker still holds, with its status (a CANCELLED one the worker missed a notification of). */
    record Held(String operationUuid, OperationStatus status) {}

    void enqueue(String operationUuid, String accountId, OperationKind kind, byte[] stdin, String secret);

    Counts counts(String accountId);

    /**
     * Claims for {@code who} the first waiting PENDING operation of one of {@code kinds} that {@code runnableHere}
     * accepts, looking at up to {@code candidates} rows in fair order: the account with the fewest claimed rows first,
     * then the one whose turn came least recently, then submission order. Rows another worker is claiming are skipped.
     */
    Optional<Claim> claim(Claimant who, Set<OperationKind> kinds, Duration lease, int candidates, Predicate<String> runnableHere);

    /** Extends the leases of everything {@code who} (this process) holds; returns what it still holds. */
    List<Held> heartbeat(Claimant who, Duration lease);

    /** Removes a row nobody claimed (a cancel of waiting work); false if a worker holds it or it is gone. */
    boolean dequeueWaiting(String operationUuid);

    /** The operation is over: its row (and its stdin, its secret) goes, if {@code who} still holds it; false otherwise. */
    boolean release(String operationUuid, Claimant who);

    /**
     * Gives a row {@code who} claimed back to the waiting rows at once (its worker will not start it: shutting down,
     * or its scheduler refused it) and wakes the workers; only if {@code who} still holds it and its operation is
     * still PENDING. False otherwise.
     */
    boolean unclaim(String operationUuid, Claimant who);

    /**
     * Drops the secret (an import's registry password) from the row {@code who} holds: its operation started there and
     * is never handed to another worker again, so the password now lives only in that worker's memory.
     */
    void forgetSecret(String operationUuid, Claimant who);

    /** Claimed rows whose lease lapsed, at most {@code limit}, each locked by nobody else. */
    List<Lapsed> lapsed(int limit);

    /**
     * Back to the waiting rows, in one statement only if {@code who} still holds it, its lease is still lapsed and its
     * operation is still PENDING; false otherwise.
     */
    boolean handBack(String operationUuid, Claimant who);

    /**
     * Removes the row if {@code who} still holds it and its lease is still lapsed (one statement: a lease renewed since
     * {@link #lapsed} keeps it); true if this call removed it, and the caller then ends the operation.
     */
    boolean removeLapsed(String operationUuid, Claimant who);

    /** Lets every lease of {@code workerId}, any boot, lapse now (a worker restarting under the same id: its work died with it). */
    void expire(String workerId);

    /** Operations still active that have no row and were created before {@code olderThan} ago: lost before queueing. */
    List<String> orphans(Duration olderThan);

    /** Records where node {@code workerId} serves HTTP. */
    void advertise(String workerId, String apiUrl);

    /** Where node {@code workerId} serves HTTP, if it said. */
    Optional<String> apiUrl(String workerId);

    /** The worker holding {@code operationUuid}'s row, if one claimed it. */
    Optional<String> holder(String operationUuid);

    void notify(Channel channel, Collection<String> payloads);

    /**
     * Listens on {@code channels} over a connection of its own until the returned handle is closed; reconnects after
     * a failure and then calls {@code onReconnect} (notifications may have been missed meanwhile).
     */
    AutoCloseable listen(Set<Channel> channels, BiConsumer<Channel, String> onNotification, Runnable onReconnect);
}
