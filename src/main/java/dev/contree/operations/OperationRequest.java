package dev.contree.operations;

/** What an operation was asked to do, as it keeps it (validated, defaults filled in, secrets left out). */
public interface OperationRequest {}
