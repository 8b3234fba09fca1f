package dev.contree.sandbox;

/** A subprocess's end, as init reported it (or as the server concluded, e.g. refused). */
public record ProcessExit(int spid, int pid, int exitCode, int signal, boolean timedOut, boolean coreDump,
                          ResourceUsage usage, byte[] stdout, boolean stdoutTruncated, long stdoutTotal,
                          byte[] stderr, boolean stderrTruncated, long stderrTotal, String error) {}
