package dev.contree.objects;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;

/**
 * Blobs shared by every node of a cluster, by content address ({@link ObjectKey}). What the object store holds is
 * trusted no more than a registry: every read is checked against the sha256 its key names before it is used.
 * Implementations are thread-safe.
 */
public interface ObjectStore extends AutoCloseable {
    /**
     * Stores {@code file} under {@code key} unless the object exists already (content addressing: it holds the same
     * bytes). The file is hashed while it is sent; if it does not hash to {@code key.sha256()} nothing stays stored
     * and this fails.
     */
    void put(ObjectKey key, Path file) throws IOException;

    /**
     * The object's bytes, unchecked: the caller verifies them (see {@link #download}).
     *
     * @throws java.nio.file.NoSuchFileException if there is no such object
     */
    InputStream open(ObjectKey key) throws IOException;

    /**
     * Writes the object into {@code target} (created or replaced) and checks it hashes to {@code key.sha256()}; on a
     * mismatch {@code target} is deleted and {@link CorruptObjectException} thrown. Returns its size.
     */
    default long download(ObjectKey key, Path target) throws IOException {
        return download(key, target, Long.MAX_VALUE);
    }

    /** {@link #download}, refusing (as corrupt) an object longer than {@code maxBytes}: it cannot be the one recorded. */
    default long download(ObjectKey key, Path target, long maxBytes) throws IOException {
        try (InputStream in = open(key)) {
            return Sha256.copyVerified(in, target, key, maxBytes);
        }
    }

    boolean exists(ObjectKey key) throws IOException;

    /** Deletes the object; nothing if it is absent. */
    void delete(ObjectKey key) throws IOException;

    /** One object found by {@link #list}: its key and size; {@code key} is empty for a name that is not one of ours. */
    record Listed(java.util.Optional<ObjectKey> key, String name, long bytes) {}

    /** One page of {@link #list}; {@code next} continues it, null after the last page. */
    record Listing(java.util.List<Listed> objects, String next) {}

    /** One page of at most {@code max} objects under the store's prefix, from {@code after} (null: the first page). */
    Listing list(String after, int max) throws IOException;

    /** Deletes the objects (a batch request where the store has one); absent ones are no error. */
    default void deleteAll(java.util.List<ObjectKey> keys) throws IOException {
        for (ObjectKey k : keys) delete(k);
    }

    /** For logs and messages: {@code s3://bucket/prefix at endpoint}, never a credential. */
    String describe();

    @Override
    void close();

    /** An object whose bytes do not hash to its key: refused, never used. */
    final class CorruptObjectException extends IOException {
        public CorruptObjectException(ObjectKey key, String actual) {
            super("the object " + key + " in the object store is corrupt (its bytes hash to sha256:" + actual + "); refused");
        }

        CorruptObjectException(ObjectKey key, long maxBytes) {
            super("the object " + key + " in the object store is corrupt (longer than the " + maxBytes + " bytes recorded); refused");
        }
    }
}
