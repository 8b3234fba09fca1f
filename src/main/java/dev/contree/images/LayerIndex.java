package dev.contree.images;

import dev.contree.store.LayerRecords;

import java.util.Optional;

/**
 * What the metadata store knows about layers, as imports and executions use it: digests of imported layers, which
 * accounts proved they hold the bytes of a digest, sizes, and image layer lists rewritten by compaction.
 */
public final class LayerIndex {
    private final LayerRecords records;
    private final boolean shared;

    /** An index only this node uses (SQLite in its data dir). */
    public LayerIndex(LayerRecords records) {
        this(records, false);
    }

    /** @param shared other nodes use the same records (PostgreSQL): a layer missing here may still be on another node */
    public LayerIndex(LayerRecords records, boolean shared) {
        this.records = records;
        this.shared = shared;
    }

    /** Whether other nodes share these records, so that a layer this node lacks is not proof that it is gone. */
    public boolean shared() {
        return shared;
    }

    public void record(String layerId, String digest, long size) {
        records.record(layerId, digest, size);
    }

    /** {@link #record} with the store's next group of writes (before the image that uses the layer); see {@link LayerRecords#recordLater}. */
    public void recordLater(String layerId, String digest, long size) {
        records.recordLater(layerId, digest, size);
    }

    public Optional<String> byDigest(String digest) {
        return records.byDigest(digest);
    }

    /**
     * Whether {@code accountId} proved it holds the bytes behind {@code digest}. Layers are shared by digest for
     * storage; reusing one by digest without this proof would hand an account another account's files.
     */
    public boolean proven(String accountId, String digest) {
        return records.proven(accountId, digest);
    }

    /** Records that {@code accountId} downloaded (or uploaded) bytes that hashed to {@code digest}. */
    public void prove(String accountId, String digest) {
        records.prove(accountId, digest);
    }

    /** The size recorded for a layer, if it was recorded. */
    public Optional<Long> size(String layerId) {
        return records.size(layerId);
    }

    /** Records that the layer's pack is in the object store (before any image that uses it is recorded). */
    public void recordPacked(String layerId, dev.contree.store.LayerRecords.Packed pack) {
        records.recordPacked(layerId, pack);
    }

    /** The layer's pack in the object store, if it was uploaded. */
    public Optional<dev.contree.store.LayerRecords.Packed> packed(String layerId) {
        return records.packed(layerId);
    }

    public void forget(String layerId) {
        records.forget(layerId);
    }

    /** Every layer some image of any account uses. */
    public java.util.Set<String> referenced() {
        return records.referenced();
    }

    /** Whether some image uses {@code layerId} now (one indexed lookup). */
    public boolean isReferenced(String layerId) {
        return records.isReferenced(layerId);
    }

    /** Replaces an image's layer chain by an equivalent one (after compaction). */
    public void replaceChain(String imageUuid, java.util.List<String> layersTopFirst) {
        records.replaceChain(imageUuid, layersTopFirst);
    }
}
