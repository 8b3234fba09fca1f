package dev.contree.operations;

import com.fasterxml.jackson.databind.node.ObjectNode;

import java.time.Duration;
import java.time.Instant;

/**
 * One asynchronous job (an execution or an import) and everything it produced.
 * {@code metadata} is the normalised request plus, once finished, its result, exactly as the wire shows it.
 */
public record Operation(String uuid, String accountId, OperationKind kind, OperationStatus status, String error,
                        Instant createdAt, Instant startedAt, Instant finishedAt, String imageUuid,
                        String resultImageUuid, String resultTag, Long imageSize, Double consumedCpu,
                        Long consumedMemory, ObjectNode metadata) {

    /** Seconds from start (or creation) to finish, or so far; null before anything ran. */
    public Double durationSeconds() {
        Instant from = startedAt != null ? startedAt : createdAt;
        Instant to = finishedAt != null ? finishedAt : (status.terminal() ? from : Instant.now());
        if (startedAt == null && finishedAt == null) return null;
        return Duration.between(from, to).toNanos() / 1e9;
    }
}
