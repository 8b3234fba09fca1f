package dev.contree.operations;

import com.fasterxml.jackson.databind.node.ObjectNode;

import java.time.Instant;

/** One entry of an operation's event log; ids start at 0 and increase by one. */
public record OperationEvent(String operationUuid, long id, Instant ts, int spid, String type, ObjectNode data) {}
