package dev.contree.sandbox;

import dev.contree.network.NetworkUsage;

/**
 * Outcome of one run.
 *
 * @param exitCode      exit status, -1 if killed by a signal (or no result)
 * @param signal        terminating signal, -1 if none
 * @param timedOut      killed because the spec's timeout elapsed (then signal 9, exitCode -1)
 * @param coreDump      the wait status had the core-dump flag
 * @param pid           pid of the command inside the sandbox, -1 if unknown
 * @param cancelled     the run was cancelled through its CancelToken
 * @param execError     the command could not be started (not found, chdir failed, ...); the
 *                      exit code is then 127 (not found) / 126 (not executable) / 125 (setup), and
 *                      the message is also written to the command's stderr. Not an infra failure.
 * @param infraError    non-null: the sandbox itself failed (runtime error, init stuck, ...)
 * @param network       bytes the sandbox's network moved; null when it had none
 */
public record SandboxResult(
        int exitCode,
        int signal,
        boolean timedOut,
        boolean coreDump,
        int pid,
        ResourceUsage usage,
        byte[] stdout,
        boolean stdoutTruncated,
        long stdoutTotalBytes,
        byte[] stderr,
        boolean stderrTruncated,
        long stderrTotalBytes,
        boolean cancelled,
        String execError,
        String infraError,
        NetworkUsage network) {

    /** A run without network. */
    public SandboxResult(int exitCode, int signal, boolean timedOut, boolean coreDump, int pid, ResourceUsage usage, byte[] stdout,
                         boolean stdoutTruncated, long stdoutTotalBytes, byte[] stderr, boolean stderrTruncated, long stderrTotalBytes,
                         boolean cancelled, String execError, String infraError) {
        this(exitCode, signal, timedOut, coreDump, pid, usage, stdout, stdoutTruncated, stdoutTotalBytes, stderr, stderrTruncated,
                stderrTotalBytes, cancelled, execError, infraError, null);
    }

    public SandboxResult withNetwork(NetworkUsage n) {
        return new SandboxResult(exitCode, signal, timedOut, coreDump, pid, usage, stdout, stdoutTruncated, stdoutTotalBytes, stderr,
                stderrTruncated, stderrTotalBytes, cancelled, execError, infraError, n);
    }

    public boolean ok() { return infraError == null; }

    public String stdoutText() { return new String(stdout, java.nio.charset.StandardCharsets.UTF_8); }

    public String stderrText() { return new String(stderr, java.nio.charset.StandardCharsets.UTF_8); }

    @Override public String toString() {
        return "SandboxResult[exit=" + exitCode + ", signal=" + signal + ", timedOut=" + timedOut + ", pid=" + pid
                + ", cancelled=" + cancelled + ", execError=" + execError + ", infraError=" + infraError
                + ", stdout=" + stdout.length + "/" + stdoutTotalBytes + ", stderr=" + stderr.length + "/"
                + stderrTotalBytes + ", usage=" + usage + (network == null ? "" : ", network=" + network) + "]";
    }
}
