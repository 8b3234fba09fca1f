package dev.contree.images;

import dev.contree.layers.LayerStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.time.Duration;
import java.time.Instant;
import java.util.Set;

/**
 * Removes layers that no image references, once they are older than a grace period and not leased. Removal goes
 * through {@link LayerLeases#tryRemove}, so a layer is never removed while leased and cannot be leased while it is
 * being removed; jobs lease their layers until their image is recorded, so the grace period is only a second line.
 */
public final class LayerGarbageCollector {
    private static final Logger LOG = LoggerFactory.getLogger(LayerGarbageCollector.class);
    private final LayerStore store;
    private final LayerIndex index;
    private final LayerLeases leases;
    private final Duration grace;
    private final boolean sharedRecords;

    public LayerGarbageCollector(LayerStore store, LayerIndex index, LayerLeases leases, Duration grace) {
        this(store, index, leases, grace, false);
    }

    /**
     * @param sharedRecords the layer records (and packs in an object store) are shared with other nodes: a pass removes
     *                      only this node's copy of an unreferenced layer; another node may be reusing it by digest
     *                      this moment under a lease this node cannot see, so the records stay (the bucket's own
     *                      garbage collection is not built yet)
     */
    public LayerGarbageCollector(LayerStore store, LayerIndex index, LayerLeases leases, Duration grace, boolean sharedRecords) {
        this.store = store;
        this.index = index;
        this.leases = leases;
        this.grace = grace;
        this.sharedRecords = sharedRecords;
    }

    /** One pass; returns how many layers were removed. */
    public synchronized int collect() throws IOException {
        // Once per pass, to pick candidates; each removal confirms its candidate with one indexed lookup.
        Set<String> referenced = index.referenced();
        Instant cutoff = Instant.now().minus(grace);
        int removed = 0;
        for (String id : store.layerIds()) {
            if (referenced.contains(id) || leases.leased(id)) continue;
            if (leases.tryRemove(id, candidate -> removeIfUnused(candidate, cutoff))) removed++;
        }
        if (removed > 0) LOG.info("garbage collection removed {} unreferenced layer(s)", removed);
        return removed;
    }

    /** Runs while the layer cannot be leased: an image recorded since the pass began still keeps it. */
    private boolean removeIfUnused(String id, Instant cutoff) throws IOException {
        try {
            if (Files.getLastModifiedTime(store.diffDir(id).getParent()).toInstant().isAfter(cutoff)) return false;
        } catch (NoSuchFileException gone) {
            return false;
        }
        if (index.isReferenced(id)) return false;
        store.remove(id);
        if (!sharedRecords) index.forget(id);
        return true;
    }
}
