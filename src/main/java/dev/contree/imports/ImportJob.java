package dev.contree.imports;

import dev.contree.cancel.CancelToken;
import dev.contree.images.AccountStorage;
import dev.contree.images.ImageService;
import dev.contree.images.LayerIndex;
import dev.contree.images.LayerLeases;
import dev.contree.layerformat.TarLayerWriter;
import dev.contree.layers.LayerBuilder;
import dev.contree.operations.Job;
import dev.contree.operations.JobOutcome;
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
 * failed or cancelled import leaves no new layer behind. Cancelling (a client, the timeout, shutdown) closes the open
 * source streams and interrupts every thread of the import, so its slot is free at once even while a registry
 * drip-feeds a manifest or a blob.
 *
 * <p>Content addressing deduplicates storage, never access: a stored layer is reused by digest only for an account
 * that proved it holds those bytes ({@link LayerIndex#proven}). Otherwise the import downloads the blob and verifies
 * its digest first (without unpacking it again), then records the proof. A manifest naming another account's
 * layer digest, served with other bytes or not at all, fails.
 *
 * <p>Unpacked bytes are charged while unpacking ({@link TarLayerWriter.Budget}) against the smaller of the server's
 * import cap and what the account may still store, so a small blob that inflates to gigabytes stops at the cap.
 */
final class ImportJob implements Job {
    private static final Logger LOG = LoggerFactory.getLogger(ImportJob.class);
    static final int PARALLEL = 3;

    private final ImportRequest request;
    private final ImportSource source;
    private final ImportTarget target;
    /** Leases on the image's layers, held until its image is recorded ({@link #finished}) so no GC pass takes one. */
    private final List<LayerLeases.Lease> held = Collections.synchronizedList(new ArrayList<>());

    ImportJob(ImportRequest request, ImportSource source, ImportTarget target) {
        this.request = request;
        this.source = source;
        this.target = target;
    }

    @Override
    public void finished() {
        synchronized (held) {
            held.forEach(LayerLeases.Lease::close);
            held.clear();
        }
    }

    @Override
    public JobOutcome run(Context ctx) {
        ctx.executing();
        CancelToken cancel = ctx.cancel();
        String account = ctx.operation().accountId();
        Set<Closeable> open = ConcurrentHashMap.newKeySet();
        Interrupter threads = new Interrupter();
        threads.enter();
        cancel.onCancel(() -> {
            open.forEach(ImportJob::closeQuietly);
            threads.interruptAll();
        });
        ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(Thread.ofVirtual().factory());
        timer.schedule(() -> cancel.cancel(CancelToken.Reason.TIMEOUT, "import timed out after " + request.timeoutSeconds() + " s"),
                request.timeoutSeconds(), TimeUnit.SECONDS);
        List<LayerBuilder> builders = Collections.synchronizedList(new ArrayList<>());
        try {
            long t0 = System.nanoTime();
            ImportSource.Resolved image = source.resolve(cancel);
            LOG.debug("resolved in {} ms", (System.nanoTime() - t0) / 1_000_000);
            checkCancelled(cancel);
            List<ImportSource.Layer> layers = image.layersBottomFirst();
            ImportProgress progress = new ImportProgress(p -> ctx.event(0, p), System::nanoTime);

            // Reuse layers already in the store (leased so the garbage collector leaves them alone), but only those
            // this account proved it holds; the others are downloaded and verified first.
            Map<String, String> idByDigest = new LinkedHashMap<>();
            Map<String, ImportSource.Layer> missing = new LinkedHashMap<>();
            Map<String, ImportSource.Layer> unproven = new LinkedHashMap<>();
            prefetch(layers);
            for (ImportSource.Layer layer : layers) {
                String digest = layer.digest();
                if (idByDigest.containsKey(digest) || missing.containsKey(digest) || unproven.containsKey(digest)) continue;
                String id = target.index().byDigest(digest).orElse(null);
                if (id != null) {
                    try {
                        held.add(target.leases().acquire(List.of(id)));
                        idByDigest.put(digest, id);
                        if (!layer.accountHoldsBytes() && !target.index().proven(account, digest)) unproven.put(digest, layer);
                        continue;
                    } catch (LayerLeases.LayerGoneException gone) {
                        // collected since the lookup: import it again
                    }
                }
                missing.put(digest, layer);
            }

            long cap = target.maxImportBytes();
            AccountStorage storage = target.storage();
            long budget = Math.min(cap, storage.remaining(account));
            if (budget <= 0) throw new ImportFailure(storage.overMessage(account));
            Budget charged = new Budget(budget, budget == cap
                    ? "the image unpacks to more than " + cap + " bytes, the server's import limit (--max-import-bytes)"
                    : "the image does not fit in the account's storage limit of " + storage.cap() + " bytes (--max-account-bytes)");
            List<Task> tasks = new ArrayList<>();
            unproven.values().forEach(l -> tasks.add(new Task(l, true)));
            missing.values().forEach(l -> tasks.add(new Task(l, false)));
            long toFetch = 0;
            for (Task t : tasks) toFetch = t.layer().size() < 0 || toFetch < 0 ? -1 : toFetch + t.layer().size();
            progress.start(idByDigest.size() + missing.size(), idByDigest.size() - unproven.size(), toFetch);
            charged.progress = progress;
            Map<String, LayerBuilder> unpacked = runAll(tasks, cancel, open, builders, threads, charged, progress);
            checkCancelled(cancel);
            for (String digest : unproven.keySet()) target.index().prove(account, digest);
            for (var e : unpacked.entrySet()) {
                String id = commit(e.getKey(), e.getValue());
                idByDigest.put(e.getKey(), id);
                target.index().prove(account, e.getKey());
            }

            List<String> topFirst = new ArrayList<>();
            long size = 0;
            for (ImportSource.Layer layer : layers.reversed()) topFirst.add(idByDigest.get(layer.digest()));
            for (String id : new java.util.LinkedHashSet<>(topFirst)) {
                Long recorded = target.index().size(id).orElse(null);
                size += recorded != null ? recorded : target.store().sizeOf(id); // sizeOf walks the layer's files
            }
            if (storage.bounded() && storage.usedWith(account, topFirst) > storage.cap()) {
                throw new ImportFailure("the image (" + size + " bytes) does not fit in the account's storage limit of "
                        + storage.cap() + " bytes (--max-account-bytes)");
            }
            // Layers reused by digest or committed long before now: none of them on its way out of the bucket.
            target.leases().source().retain(topFirst);
            var newImage = new ImageService.NewImage(ctx.operation().accountId(), ctx.operation().uuid(), null, topFirst,
                    image.config(), size, request.tag(), true);
            return new JobOutcome.Succeeded(new JobOutcome.Created(newImage), size, null, null);
        } catch (Exception e) {
            threads.exit(); // deleting pending layers must not trip over a pending interrupt
            abortAll(builders);
            if (cancel.isCancelled()) {
                // Running out of time is the import failing; a client's cancel or a shutdown is not.
                return cancel.reason() == CancelToken.Reason.TIMEOUT ? new JobOutcome.Failed(cancel.message())
                        : new JobOutcome.Cancelled(cancel.message());
            }
            String msg = e instanceof ImportFailure || e instanceof dev.contree.layerformat.LayerFormatException
                    ? e.getMessage() : "import failed: " + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage());
            if (!(e instanceof ImportFailure)) LOG.warn("import {} failed", ctx.operation().uuid(), e);
            return new JobOutcome.Failed(scrub(msg));
        } finally {
            threads.exit(); // no interrupt reaches this thread once it records the outcome
            timer.shutdownNow();
        }
    }

    /**
     * Cluster mode: the stored layers this image's digests name, fetched together (in parallel) rather than one by one
     * as the loop leases them. A failure here is met again, and reported, by that lease.
     */
    private void prefetch(List<ImportSource.Layer> layers) {
        List<String> known = layers.stream().map(l -> target.index().byDigest(l.digest())).flatMap(java.util.Optional::stream)
                .distinct().toList();
        try {
            target.leases().source().ensure(known);
        } catch (IOException e) {
            LOG.debug("prefetching layers failed: {}", e.getMessage());
        }
    }

    /** One layer to fetch: unpack it into a pending layer, or only verify its digest (the store already has it). */
    private record Task(ImportSource.Layer layer, boolean verifyOnly) {}

    /** The import's unpacked-size allowance, shared by its parallel layer unpacks. */
    private static final class Budget implements TarLayerWriter.Budget {
        private final long limit;
        private final String message;
        private final java.util.concurrent.atomic.AtomicLong used = new java.util.concurrent.atomic.AtomicLong();
        /** Every charge is unpacked bytes: the progress events count them from here. */
        volatile ImportProgress progress;

        Budget(long limit, String message) {
            this.limit = limit;
            this.message = message;
        }

        @Override
        public void charge(long bytes) throws ImportFailure {
            if (used.addAndGet(bytes) > limit) throw new ImportFailure(message + "; import stopped");
            ImportProgress p = progress;
            if (p != null) p.unpacked(bytes);
        }
    }

    /**
     * The threads working for one import. On cancel each is interrupted (a blocked HTTP send or body read ends at
     * once); a thread leaves before it records anything so no stray interrupt reaches the scheduler's work.
     */
    private static final class Interrupter {
        private final Set<Thread> threads = new java.util.HashSet<>();
        private boolean interrupted;

        synchronized void enter() {
            threads.add(Thread.currentThread());
            if (interrupted) Thread.currentThread().interrupt();
        }

        void exit() {
            synchronized (this) {
                threads.remove(Thread.currentThread());
            }
            Thread.interrupted(); // clear an interrupt that raced with the exit
        }

        synchronized void interruptAll() {
            interrupted = true;
            threads.forEach(Thread::interrupt);
        }
    }

    /**
     * Runs the tasks, biggest layer first, several at once; all or nothing. Returns the pending layers of the
     * unpacked ones by digest.
     */
    private Map<String, LayerBuilder> runAll(List<Task> tasks, CancelToken cancel, Set<Closeable> open,
                                             List<LayerBuilder> builders, Interrupter threads, Budget budget,
                                             ImportProgress progress) throws Exception {
        Map<String, LayerBuilder> out = new ConcurrentHashMap<>();
        if (tasks.isEmpty()) return out;
        List<Task> order = new ArrayList<>(tasks);
        order.sort(Comparator.comparingLong((Task t) -> t.layer().size()).reversed());
        Semaphore slots = new Semaphore(PARALLEL);
        AtomicReference<Exception> first = new AtomicReference<>();
        try (ExecutorService pool = Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("import-layer-", 0).factory())) {
            List<Future<?>> futures = new ArrayList<>();
            for (Task task : order) {
                futures.add(pool.submit(() -> {
                    threads.enter();
                    try {
                        slots.acquire();
                        try {
                            if (first.get() != null || cancel.isCancelled()) return null;
                            if (task.verifyOnly()) verify(task.layer(), cancel, open, progress);
                            else out.put(task.layer().digest(), unpack(task.layer(), cancel, open, builders, budget, progress));
                            progress.layerDone();
                        } finally {
                            slots.release();
                        }
                    } catch (Exception e) {
                        if (first.compareAndSet(null, e)) open.forEach(ImportJob::closeQuietly); // stop the others
                    } finally {
                        threads.exit();
                    }
                    return null;
                }));
            }
            for (Future<?> f : futures) f.get();
        }
        if (first.get() != null) throw first.get();
        return out;
    }

    /** Downloads a layer the store already has and checks its digest: the account's proof that it holds the bytes. */
    private void verify(ImportSource.Layer layer, CancelToken cancel, Set<Closeable> open, ImportProgress progress) throws IOException {
        long t0 = System.nanoTime();
        InputStream raw = layer.open();
        open.add(raw);
        try (raw) {
            checkCancelled(cancel);
            cancellable(raw, cancel, progress).transferTo(OutputStream.nullOutputStream()); // the end of a verifying stream checks the digest
            LOG.debug("layer {} verified for reuse in {} ms", layer.digest(), (System.nanoTime() - t0) / 1_000_000);
        } finally {
            open.remove(raw);
        }
    }

    private LayerBuilder unpack(ImportSource.Layer layer, CancelToken cancel, Set<Closeable> open, List<LayerBuilder> builders,
                                Budget budget, ImportProgress progress) throws IOException {
        long t0 = System.nanoTime();
        LayerBuilder builder = target.store().create();
        builders.add(builder);
        InputStream raw = layer.open();
        open.add(raw);
        try (raw) {
            checkCancelled(cancel);
            InputStream checked = cancellable(raw, cancel, progress);
            InputStream in = TarLayerWriter.decompressing(checked);
            try {
                new TarLayerWriter(builder.diffDir(), layer.ociWhiteouts()).budget(budget).write(in);
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

    /**
     * Commits a verified pending layer and records its digest; if another import won the race, uses its layer. The
     * layer used is leased: ours from before it is committed, the winner's before it is used.
     */
    private String commit(String digest, LayerBuilder builder) throws IOException {
        long t0 = System.nanoTime();
        held.add(target.leases().reserve(builder.id()));
        String id = builder.commit();
        // Before the digest names it: a node that finds the layer by digest can fetch it.
        target.leases().source().publish(id);
        long size = target.store().sizeOf(id);
        LOG.debug("layer {} committed in {} ms", digest, (System.nanoTime() - t0) / 1_000_000);
        for (int attempt = 0; attempt < 2; attempt++) {
            target.index().record(id, digest, size);
            String winner = target.index().byDigest(digest).orElse(id);
            if (winner.equals(id)) return id;
            try {
                held.add(target.leases().acquire(List.of(winner)));
                target.store().remove(id);
                return winner;
            } catch (LayerLeases.LayerGoneException gone) {
                // On a shared index the winner may be on another node without an object store: keep both rows, use ours.
                if (target.index().shared()) return id;
                target.index().forget(winner); // a stale row whose layer is gone
            }
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
        if (cancel.isCancelled()) throw new InterruptedIOException(cancel.message());
    }

    private static void closeQuietly(Closeable c) {
        try {
            c.close();
        } catch (IOException | RuntimeException ignored) {
            // best effort: this only unblocks a reader
        }
    }

    /** The source stream, stopping at a cancel and counting what it reads as fetched. */
    private static InputStream cancellable(InputStream in, CancelToken cancel, ImportProgress progress) {
        return new FilterInputStream(in) {
            @Override
            public int read() throws IOException {
                checkCancelled(cancel);
                int b = super.read();
                if (b >= 0) progress.fetched(1);
                return b;
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                checkCancelled(cancel);
                int n = super.read(b, off, len);
                if (n > 0) progress.fetched(n);
                return n;
            }
        };
    }
}
