package dev.contree.server;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * The data dir: created if missing and kept private (0700), since it holds layers written by
 * untrusted code; and locked by whoever uses it, so a second server or an fsck cannot run beside one.
 */
public final class DataDir {
    private DataDir() {}

    public static Path prepare(Path dir) throws IOException {
        Path d = dir.toAbsolutePath().normalize();
        Files.createDirectories(d);
        Files.setPosixFilePermissions(d, PosixFilePermissions.fromString("rwx------"));
        return d;
    }

    /** An exclusive lock on the data dir, held until closed. */
    public record Lock(FileChannel channel, FileLock lock) implements AutoCloseable {
        @Override
        public void close() throws IOException {
            lock.release();
            channel.close();
        }
    }

    /** Takes the data dir's lock, or fails with a clear message if another process holds it. */
    public static Lock lock(Path dataDir) throws IOException {
        return lock(dataDir, FileChannel.open(dataDir.resolve("lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE));
    }

    /**
     * Like {@link #lock} but creates nothing: empty if there is no lock file, and then no server holds one
     * either (a server creates it before it touches anything else).
     */
    public static java.util.Optional<Lock> lockIfPresent(Path dataDir) throws IOException {
        FileChannel ch;
        try {
            ch = FileChannel.open(dataDir.resolve("lock"), StandardOpenOption.WRITE);
        } catch (java.nio.file.NoSuchFileException e) {
            return java.util.Optional.empty();
        }
        return java.util.Optional.of(lock(dataDir, ch));
    }

    private static Lock lock(Path dataDir, FileChannel ch) throws IOException {
        FileLock lock;
        try {
            lock = ch.tryLock();
        } catch (java.nio.channels.OverlappingFileLockException e) {
            lock = null; // held by this very process
        }
        if (lock == null) {
            ch.close();
            throw new IOException("data dir " + dataDir + " is in use by another ConTree process (stop it first)");
        }
        return new Lock(ch, lock);
    }
}
