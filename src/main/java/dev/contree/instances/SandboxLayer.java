package dev.contree.instances;

import dev.contree.layers.LayerStore;
import dev.contree.layers.WritableLayer;

import java.io.IOException;
import java.util.Collection;
import java.util.Optional;

/**
 * An execution's writable layer while the execution holds it: closing discards it unless it was committed or
 * discarded already, so no path out of an execution leaves a layer behind.
 */
final class SandboxLayer implements AutoCloseable {
    private final LayerStore store;
    private final WritableLayer layer;
    private boolean settled;

    SandboxLayer(LayerStore store, WritableLayer layer) {
        this.store = store;
        this.layer = layer;
    }

    WritableLayer layer() {
        return layer;
    }

    /** Commits the layer (see {@link LayerStore#commit}); a failed commit has discarded it. */
    Optional<String> commit(Collection<String> scratchPaths) throws IOException {
        settled = true;
        return store.commit(layer, scratchPaths);
    }

    /** Discards the layer now; unlike {@link #close} a failure is the caller's. */
    void discard() throws IOException {
        settled = true;
        store.discard(layer);
    }

    @Override
    public void close() {
        if (settled) return;
        settled = true;
        try {
            store.discard(layer);
        } catch (Exception ignored) {
            // the store's startup cleanup removes what is left
        }
    }
}
