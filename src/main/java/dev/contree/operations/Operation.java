package dev.contree.operations;

import java.time.Duration;
import java.time.Instant;

/**
 * One asynchronous job (an execution or an import) and everything it produced.
 *
 * @param request what it was asked to do, as recorded
 * @param result  what it produced beyond status and image (an execution's exit state and output), or null
 */
public record Operation(String uuid, String accountId, OperationKind kind, OperationStatus status, String error,
                        Instant createdAt, Instant startedAt, Instant finishedAt, String imageUuid,
                        String resultImageUuid, String resultTag, Long imageSize, Double consumedCpu,
                        Long consumedMemory, OperationRequest request,
                        OperationResult result) {

    /** Seconds from start (or creation) to finish, or so far; null before anything ran. */
    public Double durationSeconds() {
        Instant from = startedAt != null ? startedAt : createdAt;
        Instant to = finishedAt != null ? finishedAt : (status.terminal() ? from : Instant.now());
        if (startedAt == null && finishedAt == null) return null;
        return Duration.between(from, to).toNanos() / 1e9;
    }
}
