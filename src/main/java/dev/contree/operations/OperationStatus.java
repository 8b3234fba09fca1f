package dev.contree.operations;

/** Lifecycle of an operation, uppercase on the wire. */
public enum OperationStatus {
    PENDING, ASSIGNED, EXECUTING, SUCCESS, FAILED, CANCELLED;

    public boolean terminal() {
        return this == SUCCESS || this == FAILED || this == CANCELLED;
    }

    /** Null when {@code s} names no status. */
    public static OperationStatus parse(String s) {
        for (OperationStatus v : values()) if (v.name().equals(s)) return v;
        return null;
    }
}
