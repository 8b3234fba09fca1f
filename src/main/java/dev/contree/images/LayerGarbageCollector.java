package dev.contree.images;

import dev.contree.layers.LayerStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.Set;

/**
 * Removes layers that no image references, once they are older than a grace period (so a layer
 * committed a moment ago whose image is being recorded is safe) and not leased by a running
 * execution or read.
 */
public final class LayerGarbageCollector {
    private static final Logger LOG = LoggerFactory.getLogger(LayerGarbageCollector.class);
    private final LayerStore store;
    private final LayerIndex index;
    private final LayerLeases leases;
    private final Duration grace;

    public LayerGarbageCollector(LayerStore store, LayerIndex index, LayerLeases leases, Duration grace) {
        this.store = store;
        this.index = index;
        this.leases = leases;
        this.grace = grace;
    }

    /** One pass; returns how many layers were removed. */
    public synchronized int collect() throws IOException {
        Set<String> referenced = index.referenced();
        Instant cutoff = Instant.now().minus(grace);
        int removed = 0;
        for (String id : store.layerIds()) {
            if (referenced.contains(id) || leases.leased(id)) continue;
            FileTime mtime = Files.getLastModifiedTime(store.diffDir(id).getParent());
            if (mtime.toInstant().isAfter(cutoff)) continue;
            // Check again right before removing: an execution may have leased it meanwhile.
            if (leases.leased(id) || index.referenced().contains(id)) continue;
            store.remove(id);
            index.forget(id);
            removed++;
        }
        if (removed > 0) LOG.info("garbage collection removed {} unreferenced layer(s)", removed);
        return removed;
    }
}
