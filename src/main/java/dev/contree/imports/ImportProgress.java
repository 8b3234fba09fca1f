package dev.contree.imports;

import dev.contree.operations.EventPayload;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * Counts an import's progress (layers ready, compressed bytes fetched, bytes unpacked) from its parallel layer threads
 * and reports it as {@code progress} events, at most one per {@link #INTERVAL_NANOS} however fast bytes flow, plus one
 * when the count of layers first is known and one when the last layer is ready. A slow registry thus shows a moving
 * bar, and a big image costs a handful of log rows, not one per read.
 */
final class ImportProgress {
    static final long INTERVAL_NANOS = 250_000_000L;

    private final Consumer<EventPayload.Progress> sink;
    private final LongSupplier clock;
    private final AtomicInteger layersDone = new AtomicInteger();
    private final AtomicLong fetched = new AtomicLong();
    private final AtomicLong unpacked = new AtomicLong();
    private volatile int layersTotal;
    private volatile long bytesTotal = -1;
    private volatile long lastReport = Long.MIN_VALUE;
    private boolean finalReported;

    ImportProgress(Consumer<EventPayload.Progress> sink, LongSupplier clock) {
        this.sink = sink;
        this.clock = clock;
    }

    /** The layers are known: {@code reused} of {@code total} are in the store already; the others need {@code bytesToFetch}. */
    void start(int total, int reused, long bytesToFetch) {
        layersTotal = total;
        bytesTotal = bytesToFetch;
        layersDone.set(reused);
        report(true);
    }

    void fetched(long bytes) {
        fetched.addAndGet(bytes);
        report(false);
    }

    void unpacked(long bytes) {
        unpacked.addAndGet(bytes);
        report(false);
    }

    void layerDone() {
        layersDone.incrementAndGet();
        report(false);
    }

    private void report(boolean force) {
        long now = clock.getAsLong();
        boolean early = lastReport != Long.MIN_VALUE && now - lastReport < INTERVAL_NANOS;
        if (!force && early && layersDone.get() < layersTotal) return; // the common case, without the lock
        EventPayload.Progress p;
        synchronized (this) {
            int done = layersDone.get();
            boolean last = done >= layersTotal && layersTotal > 0;
            if (last && finalReported) return;
            if (!force && !last && lastReport != Long.MIN_VALUE && now - lastReport < INTERVAL_NANOS) return;
            lastReport = now;
            if (last) finalReported = true;
            p = new EventPayload.Progress(done, layersTotal, fetched.get(), bytesTotal, unpacked.get());
            // Reported under the lock: events of one import keep their order, and the sink is quick (a log append).
            sink.accept(p);
        }
    }
}
