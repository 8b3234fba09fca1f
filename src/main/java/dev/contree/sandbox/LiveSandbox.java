package dev.contree.sandbox;

import java.io.IOException;

/**
 * Control of a running sandbox; handed to {@link SandboxListener#onLive} once contree-init is running, and dead
 * once {@link SandboxRuntime#run} returns. Thread-safe. Do not call the methods that wait ({@link #writeStdin},
 * {@link #spawn} with more than 1 MiB of stdin) from a listener callback: the credits they wait for arrive on
 * the thread that runs the callbacks.
 */
public interface LiveSandbox {
    /** The main process's spid. */
    int MAIN = 1;
    /** Subprocesses alive at once, at most. */
    int MAX_SUBPROCESSES = 64;

    /**
     * Starts a subprocess; returns its new spid (2, 3, ...). Its start, output and exit arrive on the listener
     * (the exit exactly once, before {@code run} returns). {@code stdin} (null = none) is queued in order before
     * any later {@link #writeStdin} of the same spid; the call waits only for what exceeds the first 1 MiB.
     *
     * @throws IllegalStateException if the main process has ended (the sandbox is finishing) or 64 subprocesses are alive
     * @throws IllegalArgumentException if the spec does not fit contree-init's 1 MiB spawn frame
     */
    int spawn(ProcessSpec spec, byte[] stdin, boolean closeStdin) throws IOException;

    /**
     * Appends bytes to spid's stdin (waits for init's credit, never buffers more than 1 MiB per spid in the server's
     * heap); {@code close} = close it after them.
     *
     * @throws IllegalStateException if that stdin is already closed or the process ended
     * @throws java.util.NoSuchElementException for an unknown spid
     */
    void writeStdin(int spid, byte[] data, boolean close) throws IOException;

    /**
     * Sends a signal (1..64) to spid (1 = main). A no-op once it ended.
     *
     * @throws java.util.NoSuchElementException for an unknown spid
     */
    void signal(int spid, int signo) throws IOException;
}
