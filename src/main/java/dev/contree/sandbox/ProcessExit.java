package dev.contree.sandbox;

import java.nio.charset.StandardCharsets;

/**
 * A subprocess's end, as contree-init reported it (or as the server concluded: a spawn init refused, or one the
 * sandbox ended before init reported it). {@code error} non-null: it did not run, or not to its end (exec
 * failures keep exit 126/127 and say why, as for the main process).
 *
 * @param pid      its pid inside the sandbox; -1 if it was never started
 * @param exitCode exit status; -1 if killed by a signal or never started
 * @param signal   terminating signal; -1 if none
 * @param usage    its own {@code wait4} rusage (no cgroup figures: those are the whole sandbox's)
 * @param stdout   the first 64 KiB of what was kept (within the cap); all of it went to the listener
 */
public record ProcessExit(int spid, int pid, int exitCode, int signal, boolean timedOut, boolean coreDump,
                          ResourceUsage usage, byte[] stdout, boolean stdoutTruncated, long stdoutTotal,
                          byte[] stderr, boolean stderrTruncated, long stderrTotal, String error) {

    public String stdoutText() { return new String(stdout, StandardCharsets.UTF_8); }

    public String stderrText() { return new String(stderr, StandardCharsets.UTF_8); }

    @Override public String toString() {
        return "ProcessExit[spid=" + spid + ", pid=" + pid + ", exit=" + exitCode + ", signal=" + signal + ", timedOut="
                + timedOut + ", error=" + error + ", stdout=" + stdout.length + "/" + stdoutTotal + ", stderr="
                + stderr.length + "/" + stderrTotal + ", usage=" + usage + "]";
    }
}
