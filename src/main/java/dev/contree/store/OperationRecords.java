package dev.contree.store;

import dev.contree.operations.EventPayload;
import dev.contree.operations.Operation;
import dev.contree.operations.OperationEvent;
import dev.contree.operations.OperationGlance;
import dev.contree.operations.OperationKind;
import dev.contree.operations.OperationRequest;
import dev.contree.operations.OperationService;
import dev.contree.operations.OperationStatus;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Operations and their event logs. Status changes are conditional on the current status, so a cancel that won a race
 * is never overwritten by a late completion.
 */
public interface OperationRecords {
    // Finishing an operation is MetadataStore.finish: it may record the operation's new image in the same transaction.

    /** A new PENDING operation (uuid and creation time assigned here). */
    Operation create(String accountId, OperationKind kind, String imageUuid, OperationRequest request);

    Optional<Operation> get(String uuid);

    /** The account's operations, newest first. */
    List<Operation> list(String accountId, OperationService.Query query, Page page);

    /** The account's operation count per status. */
    Map<String, Long> countByStatus(String accountId);

    /** Operations not yet finished, oldest first. */
    List<Operation> active();

    /**
     * Glances at the account's operations among {@code uuids}, in one read and without decoding their captured output;
     * unknown uuids and other accounts' operations are left out, the order is unspecified.
     */
    List<OperationGlance> glances(String accountId, Collection<String> uuids);

    /** Glances at the account's operations not yet finished, oldest first, at most {@code limit}. */
    List<OperationGlance> activeGlances(String accountId, int limit);

    /**
     * Moves the operation from one of {@code from} to {@code to}, stamping the start (EXECUTING) or finish (a terminal
     * status) time; false if it was in another status.
     */
    boolean transition(String uuid, Set<OperationStatus> from, OperationStatus to);

    /** Cancels the operation with {@code reason} as its error if it is still active; false if it already ended. */
    boolean cancel(String uuid, String reason);

    /**
     * Moves an ASSIGNED operation to EXECUTING (started_at: now) with the next group of writes: nobody waits for it,
     * and any later write of the store comes after it.
     */
    void executingLater(String uuid);

    /**
     * Appends an event with the next id of the operation's log (ids start at 0). An implementation may write events
     * in groups: the event is then announced ({@link #onCommitted}) within tens of milliseconds, always committed
     * before any later status change of its operation, and a crash may lose it while the operation is running;
     * {@link #events} sees it at once all the same. A completion event is durable when this returns.
     */
    OperationEvent append(String operationUuid, int spid, EventPayload payload);

    /**
     * Calls {@code listener} with every event once it is committed (appended, or a finish's completion), in id order
     * within each log. It runs on the store's writing thread: it must be quick and must not block.
     */
    void onCommitted(java.util.function.Consumer<OperationEvent> listener);

    /**
     * Appends the completion event of an ended operation unless its log has one already; true if this call appended
     * it. Where several nodes can end the same operation (a cluster's sweepers, a cut-off worker), the check and the
     * append are one transaction ordered by the operation's row, so the log gets exactly one completion.
     */
    default boolean appendCompletionOnce(String operationUuid) {
        Operation op = get(operationUuid).orElse(null);
        if (op == null || !op.status().terminal()) return false;
        List<OperationEvent> events = events(operationUuid, -1);
        if (!events.isEmpty() && events.getLast().payload() instanceof EventPayload.Completion) return false;
        append(operationUuid, 0, EventPayload.Completion.of(op));
        return true;
    }

    /** No more events will be appended to this log: an implementation may drop what it kept to number them. */
    void logClosed(String operationUuid);

    /** The log's events with an id above {@code afterId}, in order: every event appended before the call among them. */
    List<OperationEvent> events(String operationUuid, long afterId);

    /** The log's events of one process ({@code spid}) with an id above {@code afterId}, in order. */
    List<OperationEvent> events(String operationUuid, long afterId, int spid);
}
