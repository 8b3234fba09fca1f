package dev.contree.operations;

/** What a finished operation produced beyond its status and image (an execution's exit state and output). */
public interface OperationResult {}
