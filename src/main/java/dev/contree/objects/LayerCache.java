package dev.contree.objects;

import dev.contree.images.LayerIndex;
import dev.contree.images.LayerLeases;
import dev.contree.images.LayerSource;
import dev.contree.layers.LayerStore;
import dev.contree.store.LayerRecords;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;

/**
 * A node's layers as a cache of the object store ({@link LayerSource} in cluster mode). A layer this node lacks is
 * fetched when something leases it (a prepare, an inspect, an import reusing it): the missing layers of a chain
 * in parallel, at most {@link #PARALLEL} at once, each fetched once however many callers want it; what is fetched is
 * checked against the sha256 the metadata store recorded for the layer's pack, then unpacked into the pool as an
 * ordinary read-only layer under its own id ({@link LayerTransfer}). A layer this node commits is published (packed,
 * uploaded, its pack recorded) before the caller records an image that uses it.
 *
 * <p>Size bound: the layers that are in the object store (so may be fetched again) count against
 * {@code capacityBytes} by their recorded size; once over it, the least recently leased ones are removed from
 * this node's pool, never one that is leased (removal goes through {@link LayerLeases#tryRemove}, so an eviction
 * and a lease exclude each other), never the records or the object (other nodes and images still use them). Layers
 * without a pack (committed before the node had an object store) are not counted and never evicted.
 *
 * <p>Crash safety: a fetch downloads to a temp file and checks it, then unpacks into a pending layer that only the
 * store's atomic rename makes visible; a crash at any point leaves a temp file (deleted at start) or a pending layer
 * (deleted by the store's recovery), never a layer that looks complete. An upload is recorded only after the object
 * store confirmed it, and an image only after that.
 */
public final class LayerCache implements LayerSource {
    private static final Logger LOG = LoggerFactory.getLogger(LayerCache.class);
    static final int PARALLEL = 4;

    private final LayerStore store;
    private final LayerIndex index;
    private final LayerTransfer transfer;
    private final long capacityBytes;
    private final ObjectGuard guard;
    private volatile LayerLeases leases;
    /** Evictable layers of this node (published), least recently used first, with the bytes they count; guarded by this. */
    private final LinkedHashMap<String, Long> lru = new LinkedHashMap<>(16, 0.75f, true);
    private long cachedBytes;
    private final Map<String, CompletableFuture<Void>> inFlight = new ConcurrentHashMap<>();
    private final Semaphore fetchSlots = new Semaphore(PARALLEL);
    private final ExecutorService fetchers = Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("layer-fetch-", 0).factory());

    public LayerCache(LayerStore store, LayerIndex index, LayerTransfer transfer, long capacityBytes) throws IOException {
        this(store, index, transfer, capacityBytes, null);
    }

    /** @param guard the object store under bucket-wide garbage collection ({@link #retain}); null: no collection */
    public LayerCache(LayerStore store, LayerIndex index, LayerTransfer transfer, long capacityBytes, ObjectGuard guard) throws IOException {
        this.guard = guard;
        if (capacityBytes < 0) throw new IllegalArgumentException("layer cache bytes < 0");
        this.store = store;
        this.index = index;
        this.transfer = transfer;
        this.capacityBytes = capacityBytes;
        // The published layers already here, oldest first (their directory's time: when they were committed or fetched).
        record Known(String id, long size, long time) {}
        List<Known> known = new ArrayList<>();
        for (String id : store.layerIds()) {
            if (index.packed(id).isEmpty()) continue;
            try {
                known.add(new Known(id, store.sizeOf(id), Files.getLastModifiedTime(store.diffDir(id).getParent()).toMillis()));
            } catch (NoSuchFileException gone) {
                // removed meanwhile
            }
        }
        known.sort(Comparator.comparingLong(Known::time));
        synchronized (this) {
            for (Known k : known) add(k.id(), k.size());
        }
    }

    /** The leases evictions go through (they are built over this source, so they come second). */
    public void bind(LayerLeases leases) {
        this.leases = leases;
    }

    public long capacityBytes() {
        return capacityBytes;
    }

    /** Bytes of the evictable layers now on this node. */
    public synchronized long cachedBytes() {
        return cachedBytes;
    }

    @Override
    public boolean published(String layerId) {
        return index.packed(layerId).isPresent();
    }

    @Override
    public void ensure(List<String> layerIds) throws IOException {
        List<String> missing = new ArrayList<>();
        for (String id : layerIds) {
            // One never uploaded is left to the caller: gone for an execution, imported again by an import.
            if (store.exists(id) || !published(id)) continue;
            missing.add(id);
        }
        reviveForFetch(missing);
        List<CompletableFuture<Void>> waits = new ArrayList<>();
        for (String id : missing) waits.add(inFlight.computeIfAbsent(id, this::startFetch));
        for (CompletableFuture<Void> w : waits) {
            try {
                w.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("interrupted while fetching layers");
            } catch (ExecutionException e) {
                if (e.getCause() instanceof IOException io) throw io;
                throw new IOException(e.getCause());
            }
        }
    }

    /**
     * A layer fetched although no image names its pack (an import reusing it by digest) could lose its pack to a sweep
     * mid-download: a marked pack is unmarked first, under the sweep's lock, if it is still there (if not, the fetch
     * fails as for any missing pack). One read when nothing is marked.
     */
    private void reviveForFetch(List<String> ids) throws IOException {
        if (guard == null || ids.isEmpty()) return;
        List<ObjectKey> marked = new ArrayList<>();
        for (var p : guard.marks().packs(ids)) if (p.marked()) marked.add(ObjectKey.layer(p.sha256()));
        if (marked.isEmpty()) return;
        guard.revive(marked, markKey -> {
            ObjectKey key = ObjectKey.fromMarkKey(markKey);
            if (!guard.store().exists(key)) throw new NoSuchFileException("the pack " + key + " is gone from the object store");
        });
    }

    private CompletableFuture<Void> startFetch(String id) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        fetchers.submit(() -> {
            try {
                fetchSlots.acquire();
                try {
                    fetch(id);
                } finally {
                    fetchSlots.release();
                }
                done.complete(null);
            } catch (Throwable t) {
                done.completeExceptionally(t);
            } finally {
                inFlight.remove(id, done);
            }
        });
        return done;
    }

    private void fetch(String id) throws IOException {
        if (store.exists(id)) return;
        LayerRecords.Packed pack = index.packed(id).orElseThrow(() -> new IOException("layer " + id + " is not in the object store"));
        long t0 = System.nanoTime();
        try {
            transfer.fetch(id, pack);
        } catch (ObjectStore.CorruptObjectException e) {
            throw new IOException("layer " + id + " cannot be fetched: " + e.getMessage(), e);
        } catch (NoSuchFileException e) {
            throw new IOException("layer " + id + " cannot be fetched: its pack sha256:" + pack.sha256() + " is missing from the object store", e);
        }
        long size = store.sizeOf(id);
        synchronized (this) {
            add(id, size);
        }
        LOG.info("fetched layer {} ({} bytes packed, {} unpacked) in {} ms", id, pack.bytes(), size, (System.nanoTime() - t0) / 1_000_000);
    }

    @Override
    public void used(List<String> layerIds) {
        synchronized (this) {
            for (String id : layerIds) lru.get(id); // access order: moves it to the young end
        }
        trim();
    }

    @Override
    public void publish(String layerId) throws IOException {
        if (index.packed(layerId).isPresent()) return;
        LayerRecords.Packed pack = transfer.upload(layerId);
        index.recordPacked(layerId, pack);
        long size = store.sizeOf(layerId);
        synchronized (this) {
            add(layerId, size);
        }
        trim();
    }

    /**
     * Before an image naming {@code layerIds} is recorded: a marked pack is unmarked (after checking it is still in the
     * bucket; if a collection removed it but could not commit, the layer, which is here, is packed and uploaded again:
     * the same layer packs to the same bytes), and a layer whose pack record a collection removed (or that was never
     * published) is published again. One read when nothing is marked or missing.
     */
    @Override
    public void retain(List<String> layerIds) throws IOException {
        if (guard == null || layerIds.isEmpty()) return;
        List<dev.contree.store.ObjectRecords.LayerPack> packs = guard.marks().packs(layerIds);
        java.util.Set<String> packed = new java.util.HashSet<>();
        Map<String, String> layerBySha = new java.util.HashMap<>();
        List<ObjectKey> marked = new ArrayList<>();
        for (var p : packs) {
            packed.add(p.layerId());
            if (p.marked() && layerBySha.putIfAbsent(p.sha256(), p.layerId()) == null) marked.add(ObjectKey.layer(p.sha256()));
        }
        if (!marked.isEmpty()) {
            List<String> revived = guard.revive(marked, markKey -> {
                ObjectKey key = ObjectKey.fromMarkKey(markKey);
                if (guard.store().exists(key)) return;
                String id = layerBySha.get(key.sha256());
                LayerRecords.Packed again = transfer.upload(id, guard.store()); // the raw store: this runs under the key's lock
                if (!again.sha256().equals(key.sha256())) {
                    throw new IOException("layer " + id + ": its pack " + key + " is gone from the object store and packing the layer"
                            + " again gave other bytes (sha256:" + again.sha256() + ")");
                }
                LOG.warn("layer {}: its pack {} was gone from the object store; uploaded again", id, key);
            });
            if (!revived.isEmpty()) LOG.info("kept {} marked layer pack(s) that a new image names: {}", revived.size(), revived);
        }
        for (String id : new java.util.LinkedHashSet<>(layerIds)) {
            if (packed.contains(id)) continue;
            publish(id);
            // A sweep also removed the layer's own record (a later import of its digest then unpacks it anew): the
            // image must still count its size.
            if (index.size(id).isEmpty()) index.record(id, null, store.sizeOf(id));
        }
    }

    private void add(String id, long size) {
        Long old = lru.put(id, size);
        cachedBytes += size - (old == null ? 0 : old);
    }

    /** Evicts the least recently used unleased layers until the bound holds (or only leased ones are left). */
    void trim() {
        LayerLeases l = leases;
        if (l == null) return;
        List<String> candidates;
        synchronized (this) {
            if (cachedBytes <= capacityBytes) return;
            candidates = new ArrayList<>(lru.keySet()); // eldest first
        }
        for (String id : candidates) {
            synchronized (this) {
                if (cachedBytes <= capacityBytes) return;
                if (!lru.containsKey(id)) continue;
            }
            if (l.leased(id)) continue;
            try {
                boolean removed = l.tryRemove(id, x -> {
                    if (store.exists(x)) store.remove(x);
                    return true;
                });
                if (!removed) continue;
                synchronized (this) {
                    Long size = lru.remove(id);
                    if (size != null) cachedBytes -= size;
                }
                LOG.info("evicted layer {} from this node's cache (least recently used; {} of {} bytes cached)", id, cachedBytes(), capacityBytes);
            } catch (IOException | RuntimeException e) {
                LOG.warn("could not evict layer {}", id, e);
            }
        }
    }

    public void close() {
        fetchers.shutdownNow();
    }
}
