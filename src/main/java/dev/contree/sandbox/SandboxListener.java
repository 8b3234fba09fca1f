package dev.contree.sandbox;

/**
 * Live notifications from a run. Called from the run's I/O threads; implementations must be quick and thread-safe.
 * onStart/onStdout/onStderr/onOutputTruncated are the main process's (spid 1).
 */
public interface SandboxListener {
    SandboxListener NONE = new SandboxListener() {};

    /** The command was forked; {@code pid} is its pid inside the sandbox. */
    default void onStart(int pid) {}

    /** Bytes the command wrote to stdout, only those kept (within the output cap). */
    default void onStdout(byte[] b, int off, int len) {}

    /** Bytes the command wrote to stderr, only those kept (within the output cap). */
    default void onStderr(byte[] b, int off, int len) {}

    /** Called once per stream at the end of the run if the stream exceeded its cap. */
    default void onOutputTruncated(String stream, long emitted, long dropped) {}

    /** Once, right after {@link #onStart}: from now on subprocesses can be started and stdin written. */
    default void onLive(LiveSandbox live) {}

    /** Subprocess {@code spid} was forked; {@code pid} is its pid inside the sandbox. */
    default void onSubprocessStart(int spid, int pid, ProcessSpec spec) {}

    /** Bytes subprocess {@code spid} wrote, only those within its output cap. */
    default void onSubprocessOutput(int spid, boolean stderr, byte[] b, int off, int len) {}

    /** Exactly once per spawned spid (refused ones included), before the run returns. */
    default void onSubprocessExit(ProcessExit exit) {}
}
