package dev.contree.store;

import dev.contree.operations.JobOutcome;

import java.util.Collection;
import java.util.Optional;

/**
 * The metadata store: one record store per aggregate, plus the few writes that span aggregates, each one method
 * and one transaction. Implementations keep their engine's specifics (SQLite's single writer, PostgreSQL's pool)
 * to themselves; callers see domain types only.
 */
public interface MetadataStore extends AutoCloseable {
    TokenRecords tokens();

    FileRecords files();

    ImageRecords images();

    LayerRecords layers();

    OperationRecords operations();

    /** Marks of the object store's unnamed objects, for its bucket-wide garbage collection. */
    ObjectRecords objects();

    /** The cluster queue, in an engine several nodes share (PostgreSQL); empty: this node queues in memory. */
    default Optional<QueueRecords> queue() {
        return Optional.empty();
    }

    /**
     * Finishes an operation that is still active with {@code outcome} and, when it succeeded with a
     * {@link JobOutcome.Created} image, records that image (moving its tag onto it) in the same transaction; the
     * image's uuid and tag become the operation's result, and appends the operation's completion event (announced
     * to {@link OperationRecords#onCommitted} listeners). Returns false and changes nothing if the operation had
     * already ended (a cancel won the race).
     */
    boolean finish(String operationUuid, JobOutcome outcome);

    /**
     * Bytes the account stores: each layer its images reference counted once (plus {@code moreLayers}, as if its
     * images referenced them too), and its uploaded files.
     */
    long accountBytes(String accountId, Collection<String> moreLayers);

    /** What the engine's own consistency check found wrong with the stored data, if anything. */
    Optional<String> integrityProblem();

    @Override
    void close();
}
