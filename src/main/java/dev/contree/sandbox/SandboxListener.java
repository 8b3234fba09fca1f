package dev.contree.sandbox;

/** Live notifications from a run. Called from the run's I/O threads; implementations must be quick and thread-safe. */
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

    default void onLive(LiveSandbox live) {}

    default void onSubprocessStart(int spid, int pid, ProcessSpec spec) {}

    default void onSubprocessOutput(int spid, boolean stderr, byte[] b, int off, int len) {}

    default void onSubprocessExit(ProcessExit exit) {}
}
