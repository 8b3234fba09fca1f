package dev.contree.images;

import dev.contree.layers.LayerStore;

import java.io.IOException;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Layers in use by an execution, an import or a read right now. Leasing and removal exclude each other: a layer
 * is removed only through {@link #tryRemove}, which refuses a leased layer and, while it removes, makes every
 * {@link #acquire} of that layer fail; an acquire of a layer that is gone fails too, so nobody builds on a layer
 * that vanished. Whoever records an image holds a lease on its layers until the image is recorded.
 */
public final class LayerLeases {
    /** Marks a layer being removed in {@link #counts}. */
    private static final int REMOVING = -1;

    private final LayerStore store;
    private final LayerSource source;
    /** Leases per layer id, or {@link #REMOVING}; guarded by {@code this}. No entry: neither leased nor being removed. */
    private final Map<String, Integer> counts = new HashMap<>();

    public LayerLeases(LayerStore store) {
        this(store, LayerSource.LOCAL);
    }

    /** Leases over {@code store} that fetch what it lacks from {@code source} before leasing it. */
    public LayerLeases(LayerStore store, LayerSource source) {
        this.store = store;
        this.source = source;
    }

    /** Where missing layers come from and committed ones go ({@link LayerSource#LOCAL} on a single node). */
    public LayerSource source() {
        return source;
    }

    /** An acquire named a layer that was removed (or never was): the caller imports it again, or fails. */
    public static final class LayerGoneException extends IOException {
        LayerGoneException(String layerId) {
            super("layer " + layerId + " is no longer stored (garbage collected or lost)");
        }

        LayerGoneException(String layerId, String why) {
            super("layer " + layerId + " " + why);
        }
    }

    /** A layer this node lacks could not be fetched (the object store failed, or what it returned was refused). */
    public static final class FetchFailedException extends IOException {
        FetchFailedException(IOException cause) {
            super(cause.getMessage(), cause);
        }
    }

    /** Removes a layer's data and records; runs while the layer cannot be leased. */
    @FunctionalInterface
    public interface Remover {
        /** Returns false if it decided to keep the layer after all. */
        boolean remove(String layerId) throws IOException;
    }

    /** A lease on some layers; release it with {@link Lease#close}. */
    public final class Lease implements AutoCloseable {
        private final List<String> ids;
        private boolean closed;

        private Lease(List<String> ids) {
            this.ids = ids;
        }

        @Override
        public void close() {
            synchronized (LayerLeases.this) {
                if (closed) return;
                closed = true;
                for (String id : ids) counts.computeIfPresent(id, (k, n) -> n <= 1 ? null : n - 1);
            }
        }
    }

    /**
     * Leases committed layers, first fetching from the {@link #source()} those this node lacks; fails if one of them
     * is gone (and cannot be fetched) or being removed. A fetched layer evicted again before the lease was taken
     * (the cache was full of others) is fetched once more.
     */
    public Lease acquire(Collection<String> layerIds) throws IOException {
        List<String> ids = List.copyOf(layerIds);
        for (int attempt = 0; ; attempt++) {
            try {
                source.ensure(ids);
            } catch (IOException e) {
                throw e instanceof java.io.InterruptedIOException ? e : new FetchFailedException(e);
            }
            Lease lease;
            try {
                lease = take(ids);
            } catch (LayerGoneException removing) {
                if (attempt < 2 && source != LayerSource.LOCAL) continue;
                throw removing;
            }
            // Checked after taking the lease: from now on nothing removes these, so a layer present now stays.
            String missing = null;
            for (String id : lease.ids) {
                if (!store.exists(id)) {
                    missing = id;
                    break;
                }
            }
            if (missing == null) {
                source.used(ids);
                return lease;
            }
            lease.close();
            if (source == LayerSource.LOCAL) throw new LayerGoneException(missing);
            if (!source.published(missing)) throw new LayerGoneException(missing, "is not on this node and not in the object store"
                    + " (committed on a node without one, or lost)");
            if (attempt >= 2) throw new LayerGoneException(missing, "was evicted from this node's cache as fast as it was fetched");
        }
    }

    /**
     * Leases the id of a layer that is about to be committed (a prepared or building layer), so it is protected
     * from the moment it appears in the store. Nothing is checked: the layer does not exist yet.
     */
    public Lease reserve(String layerId) {
        try {
            return take(List.of(layerId));
        } catch (LayerGoneException e) {
            throw new IllegalStateException("a new layer id is being removed: " + layerId, e);
        }
    }

    private synchronized Lease take(List<String> ids) throws LayerGoneException {
        for (String id : ids) {
            if (counts.getOrDefault(id, 0) == REMOVING) throw new LayerGoneException(id);
        }
        for (String id : ids) counts.merge(id, 1, Integer::sum);
        return new Lease(ids);
    }

    /**
     * Runs {@code remover} for an unleased layer while no lease on it can be taken; false (and nothing run) if
     * the layer is leased or being removed. The remover should check once more that nothing references the layer:
     * an image recorded before this call, under a lease released since, is seen by then.
     */
    public boolean tryRemove(String layerId, Remover remover) throws IOException {
        synchronized (this) {
            if (counts.containsKey(layerId)) return false;
            counts.put(layerId, REMOVING);
        }
        try {
            return remover.remove(layerId);
        } finally {
            synchronized (this) {
                counts.remove(layerId);
            }
        }
    }

    public synchronized boolean leased(String layerId) {
        return counts.getOrDefault(layerId, 0) > 0;
    }
}
