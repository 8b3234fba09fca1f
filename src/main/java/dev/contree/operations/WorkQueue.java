package dev.contree.operations;

/**
 * Where a service puts the work it accepted. The node's own {@link Scheduler} takes the built {@link Job} (the
 * single-node path: an in-process closure, stdin spooled on this node's disk); the cluster queue
 * ({@link ClusterQueue}) stores only what the job is rebuilt from — the operation's row with its recorded request,
 * plus {@link StoredInput} — and whichever worker claims it rebuilds the job with a {@link JobFactory}.
 */
public interface WorkQueue {
    /** A place in the queue, held between the bound check and the operation's record; closing an unused one frees it. */
    interface Place extends AutoCloseable {
        @Override
        void close();
    }

    /**
     * Reserves a place for {@code accountId}'s next operation carrying {@code inputBytes} of stdin, or refuses
     * ({@link RequestRejected.Reason#TOO_MANY}, {@link RequestRejected.Reason#UNAVAILABLE}) before anything is recorded.
     */
    Place reserve(String accountId, long inputBytes) throws RequestRejected;

    /** True: {@link #submit(Place, Operation, Job)} runs the job on this node; false: {@link #submit(Place, Operation, StoredInput)}. */
    boolean inProcess();

    /** The node holding {@code operationUuid} when that is not this one (a cluster worker), else empty. */
    default java.util.Optional<String> heldElsewhere(String operationUuid) {
        return java.util.Optional.empty();
    }

    /** Whether this node itself may run what it queues (false on a cluster's api node). */
    default boolean runsWorkHere() {
        return true;
    }

    /** Where the node holding {@code operationUuid} serves HTTP, when that is another node that said so. */
    default java.util.Optional<String> routeTo(String operationUuid) {
        return java.util.Optional.empty();
    }

    /** Queues a built job on this node (only when {@link #inProcess}). */
    void submit(Place place, Operation op, Job job);

    /** Queues the operation for a worker to rebuild from its row and {@code input} (only when not {@link #inProcess}). */
    void submit(Place place, Operation op, StoredInput input);

    /**
     * What a worker needs besides the operation's row: stdin the request carried (every byte, also past what the
     * recorded request keeps) and an import's registry password, which the recorded request masks.
     */
    record StoredInput(byte[] stdin, String secret) {
        public static final StoredInput NONE = new StoredInput(new byte[0], null);

        public StoredInput {
            if (stdin == null) stdin = new byte[0];
        }
    }

    /** Rebuilds the job of a claimed operation on the worker that claimed it. */
    interface JobFactory {
        /** @throws RequestRejected when the job cannot be rebuilt here (its image or file is gone): the operation fails with the message */
        Job rebuild(Operation op, StoredInput input) throws RequestRejected;

        /** Whether this node can run {@code op} at all (an execution: its image's layers are in this node's pool). */
        default boolean runnableHere(Operation op) {
            return true;
        }
    }
}
