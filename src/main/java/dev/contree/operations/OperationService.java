package dev.contree.operations;

import dev.contree.store.MetadataStore;
import dev.contree.store.OperationRecords;
import dev.contree.store.Page;
import dev.contree.store.TimeRange;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * Operation records, their state machine and event logs. Transitions are conditional updates, so a
 * cancel that wins the race is never overwritten by a late completion.
 */
public final class OperationService {
    private final MetadataStore store;
    private final OperationRecords records;
    private final List<Consumer<String>> cancelListeners = new CopyOnWriteArrayList<>();
    private final List<Consumer<OperationEvent>> eventListeners = new CopyOnWriteArrayList<>();
    private final List<Consumer<String>> elsewhereListeners = new CopyOnWriteArrayList<>();
    private volatile boolean sharedLogs;

    public OperationService(MetadataStore store) {
        this.store = store;
        this.records = store.operations();
        records.onCommitted(e -> eventListeners.forEach(l -> l.accept(e)));
    }

    public Operation create(String accountId, OperationKind kind, String imageUuid, OperationRequest request) {
        return records.create(accountId, kind, imageUuid, request);
    }

    public Optional<Operation> get(String accountId, String uuid) {
        return records.get(uuid).filter(o -> o.accountId().equals(accountId));
    }

    /** Any account's operation, for the scheduler and workers. */
    public Optional<Operation> get(String uuid) {
        return records.get(uuid);
    }

    public record Query(OperationStatus status, OperationKind kind, TimeRange range) {}

    public List<Operation> list(String accountId, Query q, Page page) {
        return records.list(accountId, q, page);
    }

    /** Count of the account's operations per status, for whoami. */
    public Map<String, Long> countByStatus(String accountId) {
        return records.countByStatus(accountId);
    }

    /** Operations not yet finished, oldest first (for the scheduler and restart recovery). */
    public List<Operation> active() {
        return records.active();
    }

    /** Glances at the account's operations among {@code uuids} (one read, no captured output decoded). */
    public List<OperationGlance> glances(String accountId, Collection<String> uuids) {
        return records.glances(accountId, uuids);
    }

    /** Glances at the account's unfinished operations, oldest first, at most {@code limit}. */
    public List<OperationGlance> activeGlances(String accountId, int limit) {
        return records.activeGlances(accountId, limit);
    }

    /** Moves from one of {@code from} to {@code to}; false if the operation was elsewhere (e.g. cancelled). */
    public boolean transition(String uuid, Set<OperationStatus> from, OperationStatus to) {
        return records.transition(uuid, from, to);
    }

    /** Moves an ASSIGNED operation to EXECUTING with the store's next group of writes (nothing waits for it). */
    public void executingLater(String uuid) {
        records.executingLater(uuid);
    }

    /**
     * Records the outcome if the operation is still active, with its new image (a {@link JobOutcome.Created}) and its
     * completion event in the same transaction; false, and nothing recorded, if it already ended (e.g. cancelled).
     */
    public boolean complete(String uuid, JobOutcome outcome) {
        return store.finish(uuid, outcome);
    }

    /** Result of a cancel request. */
    public enum CancelOutcome { CANCELLED, NOT_FOUND, ALREADY_FINISHED }

    public CancelOutcome cancel(String accountId, String uuid) {
        if (get(accountId, uuid).isEmpty()) return CancelOutcome.NOT_FOUND;
        if (!records.cancel(uuid, "cancelled by request")) return CancelOutcome.ALREADY_FINISHED;
        cancelListeners.forEach(l -> l.accept(uuid));
        return CancelOutcome.CANCELLED;
    }

    /** Called with the uuid of every operation that a client cancelled. */
    public void onCancel(Consumer<String> listener) {
        cancelListeners.add(listener);
    }

    /** Called with every event once it is stored, in id order per operation (for live SSE followers); must not block. */
    public void onEvent(Consumer<OperationEvent> listener) {
        eventListeners.add(listener);
    }

    public void removeEventListener(Consumer<OperationEvent> listener) {
        eventListeners.remove(listener);
    }

    /**
     * Called with the uuid of an operation whose log another node appended to (a cluster: the worker that runs it);
     * a follower then reads the log from the store. Must not block.
     */
    public void onEventsElsewhere(Consumer<String> listener) {
        elsewhereListeners.add(listener);
    }

    public void removeEventsElsewhereListener(Consumer<String> listener) {
        elsewhereListeners.remove(listener);
    }

    /** Other nodes append to the logs this node serves (a cluster): followers also re-read the store when idle. */
    public void logsSharedWithOtherNodes() {
        sharedLogs = true;
    }

    public boolean logsAreShared() {
        return sharedLogs;
    }

    /** Another node appended to {@code operationUuid}'s log (what the cluster's notifications say). */
    public void eventsAppendedElsewhere(String operationUuid) {
        elsewhereListeners.forEach(l -> l.accept(operationUuid));
    }

    /**
     * Appends an event to the operation's log; followers hear of it once it is stored (events are written in groups,
     * within tens of milliseconds; a completion at once).
     */
    public OperationEvent appendEvent(String operationUuid, int spid, EventPayload payload) {
        return records.append(operationUuid, spid, payload);
    }

    /** Appends an ended operation's completion event unless its log has one (exactly one, whoever else tries). */
    public boolean appendCompletionOnce(String operationUuid) {
        boolean appended = records.appendCompletionOnce(operationUuid);
        if (appended) records.logClosed(operationUuid);
        return appended;
    }

    /** Forget per-operation counters once an operation's log is complete. */
    public void eventsClosed(String operationUuid) {
        records.logClosed(operationUuid);
    }

    public List<OperationEvent> events(String operationUuid, long afterId) {
        return records.events(operationUuid, afterId);
    }

    /** One process's events: what its subprocess record is folded from. */
    public List<OperationEvent> events(String operationUuid, long afterId, int spid) {
        return records.events(operationUuid, afterId, spid);
    }
}
