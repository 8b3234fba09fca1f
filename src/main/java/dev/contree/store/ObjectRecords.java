package dev.contree.store;

import java.io.IOException;
import java.util.List;

/**
 * What bucket-wide garbage collection keeps in the metadata store: marks on objects nothing names, with the time each
 * was first seen so ({@code object_marks}). An object is named by a layer some image uses whose pack it is
 * ({@code layer_objects} joined to {@code image_layers}), or by an uploaded file's record ({@code files}). Keys are
 * {@code layers/<sha256>} or {@code files/<sha256>}.
 *
 * <p>The mark is also the lock between a collector deleting an object and a node reusing it: both act on a marked
 * object only under a lock on its key ({@link Engine}'s transaction lock), the collector deleting it from the
 * bucket before its transaction commits, the reuser making sure it is there before it removes the mark. So while an
 * object is named and unmarked it is in the bucket.
 */
public interface ObjectRecords {
    /** An object seen in the bucket (or named by a mark): its key and size. */
    record Seen(String key, long bytes) {}

    /** A mark: the object's key, its size, when it was marked (microseconds on the store's clock). */
    record Mark(String key, long bytes, long markedAt) {}

    /** What {@link #mark} did with one page of objects. */
    record Marking(int marked, int unmarked) {}

    /**
     * Marks those of {@code seen} that nothing names and are not marked yet (time: now), and removes the marks of
     * those something names again.
     */
    Marking mark(List<Seen> seen);

    /** Up to {@code limit} marks older than {@code graceMicros}, oldest first. */
    List<Mark> due(long graceMicros, int limit);

    /** Deletes objects from the bucket; called inside the transaction that removes their marks and rows. */
    @FunctionalInterface
    interface Deleter {
        void delete(List<String> keys) throws IOException;
    }

    /**
     * For each of {@code marks}, under the lock on its key: if it is still marked, older than {@code graceMicros},
     * and still named by nothing, removes its mark and the records of unused layers whose pack it is (those layers are
     * then unknown to every node: a reuse by digest imports them again), and deletes it with {@code deleter} before
     * the transaction commits. Returns the marks acted on. If {@code deleter} fails nothing changes.
     */
    List<Mark> sweep(List<Mark> marks, long graceMicros, Deleter deleter) throws IOException;

    /** The keys among {@code keys} that are marked now (one read; empty in the common case). */
    List<String> marked(List<String> keys);

    /** Makes a marked object safe to reuse; called under the lock on its key, before its mark is removed. */
    @FunctionalInterface
    interface Reviver {
        void revive(String key) throws IOException;
    }

    /**
     * For each of {@code keys}, under the lock on it: if it is marked, runs {@code reviver} (which checks that the object
     * is there, uploading it again if not) and then removes the mark, in one transaction; a collector sweeping it at the
     * same time is waited for. Returns the keys whose mark was removed.
     */
    List<String> unmark(List<String> keys, Reviver reviver) throws IOException;

    /** A layer's pack and whether it is marked now. */
    record LayerPack(String layerId, String sha256, boolean marked) {}

    /** The packs of those of {@code layerIds} that have one (one read); a layer without a pack is left out. */
    List<LayerPack> packs(List<String> layerIds);

    /**
     * Runs {@code work} unless a collector on any node sharing this store runs now (then false, at once): one
     * collection at a time cluster-wide (PostgreSQL: a session advisory lock, freed if its holder dies).
     */
    boolean exclusive(Runnable work);

    /** How many objects are marked now. */
    long markCount();

    /** Every mark (tests, and the status of a collection). */
    List<Mark> marks();
}
