package dev.contree.operations;

import dev.contree.sandbox.ResourceUsage;

import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * What one entry of an operation's event log says. The log's {@link #type() type} name follows from the payload;
 * how a payload looks on the wire or in the store is for {@code api} and the store to decide.
 */
public sealed interface EventPayload {

    /** The event's name in the log ({@code stdout}, {@code exit}, …). */
    default String type() {
        return switch (this) {
            case Init i -> "init";
            case Spawn s -> "spawn";
            case Output o -> o.stream().name;
            case Truncated t -> "truncated";
            case SizeCap c -> "size_cap";
            case Exit e -> "exit";
            case Shutdown s -> "shutdown";
            case Progress p -> "progress";
            case Completion c -> "completion";
        };
    }

    /** One of a process's output streams. */
    enum Stream {
        STDOUT("stdout"), STDERR("stderr");

        public final String name;

        Stream(String name) {
            this.name = name;
        }

        /** Null when {@code s} names no stream. */
        public static Stream parse(String s) {
            for (Stream v : values()) if (v.name.equals(s)) return v;
            return null;
        }
    }

    /** The sandbox's init process (PID 1) is up. */
    record Init(Instant startedAt, String runtimePath, boolean verbose, int initPid) implements EventPayload {}

    /**
     * A process was started.
     *
     * @param env     the environment it got, secret-looking values already redacted
     * @param network how it reaches the network: {@code none}, {@code slirp4netns} (a namespace and uplink of the
     *                sandbox's own), {@code namespace} (the deprecated shared one)
     */
    record Spawn(int pid, String command, List<String> args, boolean shell, String cwd, int uid, int gid, int timeoutSeconds,
                 long truncateAt, Map<String, String> env, String network) implements EventPayload {
        public Spawn {
            if (network == null) network = "none"; // events older servers stored
        }

        /** A process without network. */
        public Spawn(int pid, String command, List<String> args, boolean shell, String cwd, int uid, int gid, int timeoutSeconds,
                     long truncateAt, Map<String, String> env) {
            this(pid, command, args, shell, cwd, uid, gid, timeoutSeconds, truncateAt, env, "none");
        }
    }

    /** A chunk of a process's output, as it arrived. */
    record Output(Stream stream, byte[] bytes) implements EventPayload {}

    /** Output past the request's cap was dropped. */
    record Truncated(Stream stream, long bytesEmitted, long bytesDropped) implements EventPayload {}

    /** The kept layer reached (about) its size cap: writes past it failed inside the sandbox. */
    record SizeCap(long limitBytes, long layerBytes) implements EventPayload {}

    /** A process ended. */
    record Exit(int pid, int exitCode, int signal, boolean timedOut, ResourceUsage usage) implements EventPayload {}

    /** The sandbox is gone. */
    record Shutdown(Instant stoppedAt, Reason reason) implements EventPayload {
        public enum Reason { JOB_COMPLETE, CANCELLED, ERROR }
    }

    /**
     * How far an import got: layers ready of the image's distinct layers (those already stored count from the start),
     * compressed bytes read from the source of the {@code bytesTotal} it must read (-1: unknown), bytes unpacked.
     */
    record Progress(int layersDone, int layersTotal, long bytesFetched, long bytesTotal, long bytesUnpacked) implements EventPayload {}

    /** The operation is over: always the last event of its log. */
    record Completion(OperationStatus status, String error, long durationMillis, String resultImageUuid, long imageSizeBytes)
            implements EventPayload {
        /** The completion of a finished operation. */
        public static Completion of(Operation op) {
            Double seconds = op.durationSeconds();
            return new Completion(op.status(), op.error(), seconds == null ? 0 : Math.round(seconds * 1000), op.resultImageUuid(),
                    op.imageSize() == null ? 0 : op.imageSize());
        }
    }
}
