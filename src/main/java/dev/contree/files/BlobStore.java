package dev.contree.files;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.UUID;

/**
 * Content-addressed blobs under {@code <root>/sha256/ab/abcdef…}. A write goes to a temp file, is
 * fsynced, then renamed into place: a crash never leaves a partial blob under its final name.
 */
public final class BlobStore {
    private final Path root;
    private final Path tmp;

    public BlobStore(Path root) throws IOException {
        this.root = root;
        this.tmp = root.resolve("tmp");
        Files.createDirectories(tmp);
        // Leftovers of interrupted uploads are garbage by construction.
        try (var stale = Files.list(tmp)) {
            for (Path p : (Iterable<Path>) stale::iterator) Files.deleteIfExists(p);
        }
    }

    /** What {@link #put} stored. */
    public record Stored(String sha256, long size) {}

    /** Thrown when a body exceeds the allowed size; nothing is stored. */
    public static final class TooLargeException extends IOException {
        public TooLargeException(long limit) { super("upload exceeds the limit of " + limit + " bytes"); }
    }

    /** Streams {@code in} into the store, at most {@code maxBytes}. */
    public Stored put(InputStream in, long maxBytes) throws IOException {
        return put(in, maxBytes, null);
    }

    /** Thrown when fetched bytes do not hash to the sha256 they were fetched for; nothing is stored. */
    public static final class MismatchException extends IOException {
        MismatchException(String expected, String actual) {
            super("the bytes fetched for sha256:" + expected + " hash to sha256:" + actual + "; refused");
        }
    }

    /**
     * Streams {@code in} into the store if it hashes to {@code expectedSha256} (else {@link MismatchException} and
     * nothing stored): a blob fetched from elsewhere lands under its name only once it is known to be the right one.
     */
    public Stored putVerified(InputStream in, String expectedSha256, long maxBytes) throws IOException {
        path(expectedSha256); // checks the form
        return put(in, maxBytes, expectedSha256);
    }

    private Stored put(InputStream in, long maxBytes, String expected) throws IOException {
        Path temp = tmp.resolve(UUID.randomUUID() + ".part");
        MessageDigest digest = sha256();
        long size = 0;
        try {
            try (FileChannel ch = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
                 OutputStream out = new DigestOutputStream(java.nio.channels.Channels.newOutputStream(ch), digest)) {
                byte[] buf = new byte[64 * 1024];
                for (int n; (n = in.read(buf)) > 0; ) {
                    size += n;
                    if (size > maxBytes) throw new TooLargeException(maxBytes);
                    out.write(buf, 0, n);
                }
                out.flush();
                ch.force(true);
            }
            String sha = HexFormat.of().formatHex(digest.digest());
            if (expected != null && !expected.equals(sha)) throw new MismatchException(expected, sha);
            Path target = path(sha);
            if (!Files.exists(target)) {
                Files.createDirectories(target.getParent());
                try {
                    Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
                } catch (AtomicMoveNotSupportedException e) {
                    throw new IOException("blob store must be on one filesystem", e);
                }
            }
            return new Stored(sha, size);
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    public boolean exists(String sha256) {
        return Files.isRegularFile(path(sha256));
    }

    public InputStream open(String sha256) throws IOException {
        return Files.newInputStream(path(sha256));
    }

    public Path path(String sha256) {
        if (!sha256.matches("[0-9a-f]{64}")) throw new IllegalArgumentException("not a sha256: " + sha256);
        return root.resolve("sha256").resolve(sha256.substring(0, 2)).resolve(sha256);
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
