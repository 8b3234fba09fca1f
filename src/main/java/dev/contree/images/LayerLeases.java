package dev.contree.images;

import java.util.Collection;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/** Layers in use by an execution or a read right now; garbage collection never removes a leased layer. */
public final class LayerLeases {
    private final ConcurrentHashMap<String, AtomicInteger> counts = new ConcurrentHashMap<>();

    /** A lease on some layers; release it with {@link Lease#close}. */
    public final class Lease implements AutoCloseable {
        private final List<String> ids;
        private boolean closed;

        private Lease(List<String> ids) {
            this.ids = ids;
        }

        @Override
        public synchronized void close() {
            if (closed) return;
            closed = true;
            for (String id : ids) {
                counts.computeIfPresent(id, (k, n) -> n.decrementAndGet() <= 0 ? null : n);
            }
        }
    }

    public Lease acquire(Collection<String> layerIds) {
        List<String> ids = List.copyOf(layerIds);
        for (String id : ids) counts.computeIfAbsent(id, k -> new AtomicInteger()).incrementAndGet();
        return new Lease(ids);
    }

    public boolean leased(String layerId) {
        return counts.containsKey(layerId);
    }
}
