package dev.contree.images;

import java.io.IOException;
import java.util.List;

/**
 * Where this node's layers come from beyond its own disk, and where its committed layers go before an image names
 * them. On a single node there is nothing beyond the disk ({@link #LOCAL}); with an object store a node fetches what
 * it lacks and publishes what it commits, so an image is never visible while its layers exist on one node only.
 */
public interface LayerSource {
    /**
     * Makes the committed layers present in this node's store, fetching those it lacks (in parallel) that were
     * published; one that was not is left missing (the lease then fails as for a layer gone). Fails with a message
     * that says which layer and why (the object missing or corrupt).
     */
    void ensure(List<String> layerIds) throws IOException;

    /** The layers were leased for use (the most recently used are evicted last). */
    void used(List<String> layerIds);

    /** Makes a layer this node committed available to every node; called before any image that uses it is recorded. */
    void publish(String layerId) throws IOException;

    /** Whether the layer may be fetched when missing (it was published). */
    boolean published(String layerId);

    /**
     * Called right before an image naming these layers (all present here and leased) is recorded: with an object store,
     * makes sure each is published and its pack is not on its way out of the bucket (bucket-wide garbage collection may
     * have marked or removed a pack nothing named), publishing again what it has to. The image must be recorded soon
     * after (well within the collection's grace period).
     */
    default void retain(List<String> layerIds) throws IOException {}

    /** One node: layers are on this disk or nowhere. */
    LayerSource LOCAL = new LayerSource() {
        @Override public void ensure(List<String> layerIds) {}
        @Override public void used(List<String> layerIds) {}
        @Override public void publish(String layerId) {}
        @Override public boolean published(String layerId) { return false; }
    };
}
