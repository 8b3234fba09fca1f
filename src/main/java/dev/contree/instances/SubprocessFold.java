package dev.contree.instances;

import dev.contree.operations.EventPayload;
import dev.contree.operations.OperationEvent;
import dev.contree.sandbox.ResourceUsage;
import dev.contree.sandbox.SandboxResult;

import java.io.ByteArrayOutputStream;
import java.util.List;

/** One process's record folded from its events: spawn gives the pid, output the streams, exit the state. */
final class SubprocessFold {
    private SubprocessFold() {}

    /** @param instanceOver the instance ended: a process with no exit event died with it (SIGKILL) */
    static ExecutionResult of(List<OperationEvent> events, boolean instanceOver) {
        int pid = -1, exitCode = -1, signal = -1;
        boolean timedOut = false, outTruncated = false, errTruncated = false, exited = false;
        long outTotal = -1, errTotal = -1;
        ResourceUsage usage = ResourceUsage.UNKNOWN;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        for (OperationEvent e : events) {
            switch (e.payload()) {
                case EventPayload.Spawn s -> pid = s.pid();
                case EventPayload.Output o -> (o.stream() == EventPayload.Stream.STDOUT ? out : err).writeBytes(o.bytes());
                case EventPayload.Truncated t -> {
                    if (t.stream() == EventPayload.Stream.STDOUT) { outTruncated = true; outTotal = t.bytesEmitted() + t.bytesDropped(); }
                    else { errTruncated = true; errTotal = t.bytesEmitted() + t.bytesDropped(); }
                }
                case EventPayload.Exit x -> {
                    exited = true;
                    if (x.pid() > 0) pid = x.pid();
                    exitCode = x.exitCode();
                    signal = x.signal();
                    timedOut = x.timedOut();
                    usage = x.usage() == null ? ResourceUsage.UNKNOWN : x.usage();
                }
                default -> { }
            }
        }
        if (!exited && instanceOver) signal = 9;
        SandboxResult r = new SandboxResult(exitCode, signal, timedOut, false, pid, usage, out.toByteArray(), outTruncated,
                outTotal < 0 ? out.size() : outTotal, err.toByteArray(), errTruncated, errTotal < 0 ? err.size() : errTotal,
                false, null, null);
        return new ExecutionResult(r, 0);
    }
}
