package dev.contree.layers;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A writable, unmounted layer for imports: write an overlay upper-format tree (whiteouts as 0/0 character
 * devices, opaque dirs with {@code trusted.overlay.opaque=y}) into {@link #diffDir()}, then {@link #commit()}
 * or {@link #abort()}. Not capped. Not thread-safe; one writer.
 */
public final class LayerBuilder implements AutoCloseable {
    private final LayerStore store;
    private final String id;
    private boolean done;

    LayerBuilder(LayerStore store, String id) {
        this.store = store;
        this.id = id;
    }

    public String id() {
        return id;
    }

    public Path diffDir() {
        return store.pendingDiff(id);
    }

    /** Publishes the layer (read-only soon after, in the background); returns its id (even if the tree is empty). */
    public String commit() throws IOException {
        if (done) throw new IllegalStateException("layer " + id + " already finished");
        done = true;
        try {
            store.publish(id, -1);
        } catch (IOException | RuntimeException e) {
            store.deletePending(id);
            throw e;
        }
        return id;
    }

    /** Deletes the subvolume and everything written to it. */
    public void abort() throws IOException {
        if (done) return;
        done = true;
        store.deletePending(id);
    }

    /** Aborts unless committed. */
    @Override
    public void close() throws IOException {
        abort();
    }
}
