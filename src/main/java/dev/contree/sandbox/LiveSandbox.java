package dev.contree.sandbox;

import java.io.IOException;

/** Control of a running sandbox; handed to SandboxListener#onLive once init is running. Thread-safe. */
public interface LiveSandbox {
    int MAIN = 1;

    int spawn(ProcessSpec spec, byte[] stdin, boolean closeStdin) throws IOException;

    void writeStdin(int spid, byte[] data, boolean close) throws IOException;

    void signal(int spid, int signo) throws IOException;
}
