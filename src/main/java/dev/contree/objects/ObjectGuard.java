package dev.contree.objects;

import dev.contree.store.ObjectRecords;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.List;

/**
 * The object store as the nodes write it while bucket-wide garbage collection runs ({@link BucketGarbageCollector}):
 * a {@link #put} of an object that exists already (content addressing: the upload is skipped) is a reuse, and a
 * reuse of a marked object first removes its mark under the lock the collector takes to delete it, after making sure
 * the object is still there (uploading it again if a collector removed it). Whatever names the object afterwards
 * (a layer's pack record and its image, a file's record) must be recorded within the grace period, which starts
 * over only when a collector marks the object again.
 */
public final class ObjectGuard implements ObjectStore {
    private final ObjectStore objects;
    private final ObjectRecords marks;

    public ObjectGuard(ObjectStore objects, ObjectRecords marks) {
        this.objects = objects;
        this.marks = marks;
    }

    public ObjectRecords marks() {
        return marks;
    }

    /** The store underneath (the collector lists and deletes through it). */
    public ObjectStore store() {
        return objects;
    }

    @Override
    public void put(ObjectKey key, Path file) throws IOException {
        List<String> k = List.of(key.markKey());
        // One read in the common case; a mark made after it is at least a grace period away from a deletion.
        if (!marks.marked(k).isEmpty() && !marks.unmark(k, x -> objects.put(key, file)).isEmpty()) return;
        objects.put(key, file); // after any collector that held the key: absent now means deleted, so uploaded again
    }

    /**
     * Removes the marks of those of {@code keys} that are marked, each after {@code reviver} made sure the object is
     * there; see {@link ObjectRecords#unmark}.
     */
    public List<String> revive(List<ObjectKey> keys, ObjectRecords.Reviver reviver) throws IOException {
        List<String> k = keys.stream().map(ObjectKey::markKey).toList();
        List<String> marked = marks.marked(k);
        return marked.isEmpty() ? List.of() : marks.unmark(marked, reviver);
    }

    @Override public InputStream open(ObjectKey key) throws IOException { return objects.open(key); }
    @Override public long download(ObjectKey key, Path target, long maxBytes) throws IOException { return objects.download(key, target, maxBytes); }
    @Override public boolean exists(ObjectKey key) throws IOException { return objects.exists(key); }
    @Override public void delete(ObjectKey key) throws IOException { objects.delete(key); }
    @Override public void deleteAll(List<ObjectKey> keys) throws IOException { objects.deleteAll(keys); }
    @Override public Listing list(String after, int max) throws IOException { return objects.list(after, max); }
    @Override public String describe() { return objects.describe(); }
    @Override public void close() { objects.close(); }
}
