package dev.contree.operations;

import dev.contree.cancel.CancelToken;

/** The work behind an operation, run by the {@link Scheduler} once admitted. */
@FunctionalInterface
public interface Job {
    JobOutcome run(Context ctx) throws Exception;

    /** Called once when the operation is over, whether {@link #run} ran or not (cancelled while queued): frees what the job holds. */
    default void finished() {}

    /** What a running job may use. */
    interface Context {
        Operation operation();

        CancelToken cancel();

        /** Appends an event to the operation's log (spid 0 = the sandbox daemon, 1 = the main process). */
        OperationEvent event(int spid, EventPayload payload);

        /** Moves the operation to EXECUTING (started_at: now) with the store's next group of writes: nothing waits for it. */
        void executing();
    }
}
