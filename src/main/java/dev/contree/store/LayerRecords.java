package dev.contree.store;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The layer index: known layers (with the OCI digest of imported ones, so images that share a base share storage),
 * which accounts proved they hold a digest's bytes, and which layers images reference.
 */
public interface LayerRecords {
    /** Records a layer; a no-op if the id, or another layer with the same digest, is already recorded. */
    void record(String layerId, String digest, long size);

    /**
     * {@link #record} with the store's next group of writes: before any later write (an image using the layer), not
     * yet readable when this returns. A crash may lose it; the layer is then one no image uses, which garbage
     * collection removes anyway.
     */
    void recordLater(String layerId, String digest, long size);

    Optional<String> byDigest(String digest);

    /** Whether {@code accountId} proved it holds the bytes behind {@code digest}. */
    boolean proven(String accountId, String digest);

    /** Records that {@code accountId} downloaded (or uploaded) bytes that hashed to {@code digest}. */
    void prove(String accountId, String digest);

    Optional<Long> size(String layerId);

    /** A layer packed into the object store: the sha256 (its object's key) and size of the pack. */
    record Packed(String sha256, long bytes) {}

    /** Records where a layer's pack is; a no-op if the layer has one recorded already (a layer is packed once). */
    void recordPacked(String layerId, Packed pack);

    /** The layer's pack in the object store, if it was uploaded. */
    Optional<Packed> packed(String layerId);

    /** Forgets the layer: its record and its pack's. */
    void forget(String layerId);

    /** Every recorded layer id, sorted. */
    List<String> ids();

    /** Every layer some image of any account uses. */
    Set<String> referenced();

    /** Whether some image uses {@code layerId} (one indexed lookup, for a check right before a removal). */
    boolean isReferenced(String layerId);

    /** Every image's layer list (top first), by image uuid; an image without layers maps to an empty list. */
    Map<String, List<String>> chains();

    /** Replaces an image's layer list by an equivalent one (after compaction). */
    void replaceChain(String imageUuid, List<String> layersTopFirst);
}
