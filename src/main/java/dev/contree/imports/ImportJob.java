package dev.contree.imports;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.images.ImageService;
import dev.contree.images.LayerIndex;
import dev.contree.images.LayerLeases;
import dev.contree.layerformat.TarLayerWriter;
import dev.contree.layers.LayerBuilder;
import dev.contree.layers.LayerStore;
import dev.contree.operations.CancelToken;
import dev.contree.operations.Job;
import dev.contree.operations.OperationService;
import dev.contree.operations.OperationStatus;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.Closeable;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Imports an image: each source layer becomes one store layer (unpacked from its tar, OCI whiteouts converted),
 * keyed by digest so shared and re-imported layers are reused, then one image record.
 *
 * <p>Missing layers are downloaded and unpacked in parallel (up to {@link #PARALLEL} at once) into pending
 * layers. Only when every one of them was read to the end (which verifies its digest) are they committed, so a
 * failed or cancelled import leaves no new layer behind. Cancelling closes the open source streams, which aborts
 * blocked downloads at once.
 */
final class ImportJob implements Job {
    private static final Logger LOG = LoggerFactory.getLogger(ImportJob.class);
    static final int PARALLEL = 3;

    private final ImportRequest request;
    private final ImportSource source;
    private final LayerStore store;
    private final LayerIndex index;
    private final LayerLeases leases;
    private final ObjectNode metadata;

    ImportJob(ImportRequest request, ImportSource source, LayerStore store, LayerIndex index, LayerLeases leases, ObjectNode metadata) {
        this.request = request;
        this.source = source;
        this.store = store;
        this.index = index;
        this.leases = leases;
        this.metadata = metadata;
    }

    @Override
    public Result run(Context ctx) {
        ctx.executing();
        CancelToken cancel = ctx.cancel();
        Set<Closeable> open = ConcurrentHashMap.newKeySet();
        cancel.onCancel(() -> open.forEach(ImportJob::closeQuietly));
        ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(Thread.ofVirtual().factory());
        timer.schedule(() -> cancel.cancel("import timed out after " + request.timeoutSeconds() + " s"),
                request.timeoutSeconds(), TimeUnit.SECONDS);
        List<LayerBuilder> builders = Collections.synchronizedList(new ArrayList<>());
        List<LayerLeases.Lease> held = new ArrayList<>();
        try {
            long t0 = System.nanoTime();
            ImportSource.Resolved image = source.resolve(cancel);
            LOG.debug("resolved in {} ms", (System.nanoTime() - t0) / 1_000_000);
            checkCancelled(cancel);
            List<ImportSource.Layer> layers = image.layersBottomFirst();

            // Reuse layers already in the store (leased so the garbage collector leaves them alone).
            Map<String, String> idByDigest = new LinkedHashMap<>();
            Map<String, ImportSource.Layer> missing = new LinkedHashMap<>();
            for (ImportSource.Layer layer : layers) {
                if (idByDigest.containsKey(layer.digest()) || missing.containsKey(layer.digest())) continue;
                String id = index.byDigest(layer.digest()).orElse(null);
                if (id != null) {
                    held.add(leases.acquire(List.of(id)));
                    if (store.exists(id)) {
                        idByDigest.put(layer.digest(), id);
                        continue;
                    }
                }
                missing.put(layer.digest(), layer);
            }

            Map<String, LayerBuilder> unpacked = unpackAll(new ArrayList<>(missing.values()), cancel, open, builders);
            checkCancelled(cancel);
            for (var e : unpacked.entrySet()) {
                String id = commit(e.getKey(), e.getValue());
                held.add(leases.acquire(List.of(id)));
                idByDigest.put(e.getKey(), id);
            }

            List<String> topFirst = new ArrayList<>();
            long size = 0;
            for (ImportSource.Layer layer : layers.reversed()) topFirst.add(idByDigest.get(layer.digest()));
            for (String id : new java.util.LinkedHashSet<>(topFirst)) {
                Long recorded = index.size(id).orElse(null);
                size += recorded != null ? recorded : store.sizeOf(id); // sizeOf walks the layer's files
            }
            var done = new OperationService.Completion(OperationStatus.SUCCESS, null, null, request.tag(), size, null, null, metadata);
            var newImage = new ImageService.NewImage(ctx.operation().accountId(), ctx.operation().uuid(), null, topFirst,
                    image.config(), size, request.tag(), true);
            return new Result(done, newImage);
        } catch (Exception e) {
            abortAll(builders);
            if (cancel.isCancelled()) {
                String why = cancel.reason();
                OperationStatus status = why.startsWith("import timed out") ? OperationStatus.FAILED : OperationStatus.CANCELLED;
                return new Result(new OperationService.Completion(status, why, null, null, null, null, null, metadata), null);
            }
            String msg = e instanceof ImportFailure || e instanceof dev.contree.layerformat.LayerFormatException
                    ? e.getMessage() : "import failed: " + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage());
            if (!(e instanceof ImportFailure)) LOG.warn("import {} failed", ctx.operation().uuid(), e);
            return new Result(new OperationService.Completion(OperationStatus.FAILED, scrub(msg), null, null, null, null, null, metadata), null);
        } finally {
            timer.shutdownNow();
            held.forEach(LayerLeases.Lease::close);
        }
    }

    /** Unpacks {@code layers} into pending layers, biggest first, several at once; all or nothing. */
    private Map<String, LayerBuilder> unpackAll(List<ImportSource.Layer> layers, CancelToken cancel, Set<Closeable> open,
                                                List<LayerBuilder> builders) throws Exception {
        Map<String, LayerBuilder> out = new ConcurrentHashMap<>();
        if (layers.isEmpty()) return out;
        List<ImportSource.Layer> order = new ArrayList<>(layers);
        order.sort(Comparator.comparingLong(ImportSource.Layer::size).reversed());
        Semaphore slots = new Semaphore(PARALLEL);
        AtomicReference<Exception> first = new AtomicReference<>();
        try (ExecutorService pool = Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("import-layer-", 0).factory())) {
            List<Future<?>> futures = new ArrayList<>();
            for (ImportSource.Layer layer : order) {
                futures.add(pool.submit(() -> {
                    slots.acquire();
                    try {
                        if (first.get() != null || cancel.isCancelled()) return null;
                        out.put(layer.digest(), unpack(layer, cancel, open, builders));
                    } catch (Exception e) {
                        if (first.compareAndSet(null, e)) open.forEach(ImportJob::closeQuietly); // stop the others
                    } finally {
                        slots.release();
                    }
                    return null;
                }));
            }
            for (Future<?> f : futures) f.get();
        }
        if (first.get() != null) throw first.get();
        return out;
    }

    private LayerBuilder unpack(ImportSource.Layer layer, CancelToken cancel, Set<Closeable> open, List<LayerBuilder> builders)
            throws IOException {
        long t0 = System.nanoTime();
        LayerBuilder builder = store.create();
        builders.add(builder);
        InputStream raw = layer.open();
        open.add(raw);
        try (raw) {
            checkCancelled(cancel);
            InputStream checked = cancellable(raw, cancel);
            InputStream in = TarLayerWriter.decompressing(checked);
            try {
                new TarLayerWriter(builder.diffDir(), layer.ociWhiteouts()).write(in);
            } catch (dev.contree.layerformat.LayerFormatException e) {
                throw new ImportFailure("layer " + layer.digest() + " is not a valid layer: " + e.getMessage(), e);
            } catch (java.util.zip.ZipException e) {
                throw new ImportFailure("layer " + layer.digest() + " is not valid gzip: " + e.getMessage(), e);
            }
            // Read both streams to the end so a verifying source checks the digest of every byte before we commit.
            in.transferTo(OutputStream.nullOutputStream());
            checked.transferTo(OutputStream.nullOutputStream());
            LOG.debug("layer {} ({} bytes) unpacked in {} ms", layer.digest(), layer.size(), (System.nanoTime() - t0) / 1_000_000);
            return builder;
        } finally {
            open.remove(raw);
        }
    }

    /** Commits a verified pending layer and records its digest; if another import won the race, uses its layer. */
    private String commit(String digest, LayerBuilder builder) throws IOException {
        long t0 = System.nanoTime();
        String id = builder.commit();
        long size = store.sizeOf(id);
        LOG.debug("layer {} committed in {} ms", digest, (System.nanoTime() - t0) / 1_000_000);
        for (int attempt = 0; attempt < 2; attempt++) {
            index.record(id, digest, size);
            String winner = index.byDigest(digest).orElse(id);
            if (winner.equals(id)) return id;
            if (store.exists(winner)) {
                store.remove(id);
                return winner;
            }
            index.forget(winner); // a stale row whose layer is gone
        }
        return id;
    }

    private static void abortAll(List<LayerBuilder> builders) {
        synchronized (builders) {
            for (LayerBuilder b : builders) {
                try {
                    b.abort();
                } catch (IOException | RuntimeException e) {
                    LOG.warn("could not delete pending layer {}", b.id(), e);
                }
            }
        }
    }

    private String scrub(String msg) {
        String pw = request.password();
        return pw != null && pw.length() >= 4 ? msg.replace(pw, "***") : msg;
    }

    private static void checkCancelled(CancelToken cancel) throws InterruptedIOException {
        if (cancel.isCancelled()) throw new InterruptedIOException(cancel.reason());
    }

    private static void closeQuietly(Closeable c) {
        try {
            c.close();
        } catch (IOException | RuntimeException ignored) {
            // best effort: this only unblocks a reader
        }
    }

    private static InputStream cancellable(InputStream in, CancelToken cancel) {
        return new FilterInputStream(in) {
            @Override
            public int read() throws IOException {
                checkCancelled(cancel);
                return super.read();
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                checkCancelled(cancel);
                return super.read(b, off, len);
            }
        };
    }
}
