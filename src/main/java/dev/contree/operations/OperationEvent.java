package dev.contree.operations;

import java.time.Instant;

/** One entry of an operation's event log; ids start at 0 and increase by one. */
public record OperationEvent(String operationUuid, long id, Instant ts, int spid, EventPayload payload) {
    public String type() {
        return payload.type();
    }
}
