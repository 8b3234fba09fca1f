package dev.contree.objects;

import java.time.Duration;

/**
 * A node's object store: where layers and uploaded files are shared ({@code --object-store}), how many bytes of
 * fetched and published layers the node keeps in its pool before it evicts the least recently used
 * ({@code --layer-cache-bytes}), and the bucket-wide garbage collection: how often this node tries a pass
 * ({@code --object-gc-interval}, zero: never; one pass runs at a time cluster-wide) and how long an object must stay
 * unreferenced before it is deleted ({@code --object-gc-grace}).
 */
public record ObjectStoreSettings(ObjectStoreUrl url, long cacheBytes, Duration gcInterval, Duration gcGrace) {
    public static final long DEFAULT_CACHE_BYTES = 64L << 30;
    public static final Duration DEFAULT_GC_INTERVAL = Duration.ofHours(1);
    public static final Duration DEFAULT_GC_GRACE = Duration.ofHours(6);

    public ObjectStoreSettings {
        if (url == null) throw new IllegalArgumentException("an object store needs its s3:// URL");
        if (cacheBytes < (16L << 20)) throw new IllegalArgumentException("the layer cache must be at least 16 MiB");
        if (gcInterval == null || gcInterval.isNegative()) throw new IllegalArgumentException("the garbage collection interval must be 0 (off) or more");
        if (gcGrace == null || gcGrace.isNegative() || gcGrace.isZero()) throw new IllegalArgumentException("the garbage collection grace must be positive");
    }

    public ObjectStoreSettings(ObjectStoreUrl url, long cacheBytes) {
        this(url, cacheBytes, DEFAULT_GC_INTERVAL, DEFAULT_GC_GRACE);
    }

    public ObjectStoreSettings withGc(Duration interval, Duration grace) {
        return new ObjectStoreSettings(url, cacheBytes, interval, grace);
    }
}
