package dev.contree.instances;

import dev.contree.operations.RequestRejected;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/**
 * Request stdin waits on disk, not in the heap: a queued execution holds a file under the data dir, deleted when
 * its operation ends. The bytes all queued and running executions may hold together are bounded (60 queued runs
 * with 100 MiB of stdin each once grew the server to 6.7 GB); past the bound a new submission is refused with 429.
 */
public final class StdinSpool {
    private final Path dir;
    private final long maxTotalBytes;
    private final AtomicLong held = new AtomicLong();

    /** Empties {@code dir} (files of a previous run are orphans: their operations were failed at startup). */
    public StdinSpool(Path dir, long maxTotalBytes) throws IOException {
        this.dir = dir;
        this.maxTotalBytes = maxTotalBytes;
        Files.createDirectories(dir);
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.toList()) Files.deleteIfExists(p);
        }
    }

    /** One execution's stdin on disk; {@link #close()} deletes it and returns its bytes to the budget. */
    public final class Spooled implements AutoCloseable {
        private final Path file;
        private final long size;
        private final AtomicBoolean closed = new AtomicBoolean();

        private Spooled(Path file, long size) { this.file = file; this.size = size; }

        public Path file() { return file; }

        public long size() { return size; }

        @Override public void close() {
            if (!closed.compareAndSet(false, true)) return;
            try {
                Files.deleteIfExists(file);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } finally {
                held.addAndGet(-size);
            }
        }
    }

    /** Writes {@code data} to a new spool file, or refuses (429) when the spool's budget would be exceeded. */
    public Spooled put(byte[] data) throws RequestRejected {
        long after = held.addAndGet(data.length);
        if (after > maxTotalBytes) {
            held.addAndGet(-data.length);
            throw new RequestRejected(RequestRejected.Reason.TOO_MANY, "the server holds too much queued stdin (limit " + maxTotalBytes
                    + " bytes for all pending and running executions); retry when some have finished");
        }
        Path f = null;
        try {
            f = Files.createTempFile(dir, "stdin-", "");
            Files.write(f, data);
            return new Spooled(f, data.length);
        } catch (IOException e) {
            held.addAndGet(-data.length);
            if (f != null) f.toFile().delete();
            throw new RequestRejected(RequestRejected.Reason.UNAVAILABLE, "could not store stdin: " + e.getClass().getSimpleName());
        }
    }

    /** Bytes currently held (tests, whoami). */
    public long heldBytes() { return held.get(); }

    public long maxTotalBytes() { return maxTotalBytes; }
}
