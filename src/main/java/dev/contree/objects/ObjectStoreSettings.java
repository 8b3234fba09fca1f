package dev.contree.objects;

/**
 * A node's object store: where layers and uploaded files are shared ({@code --object-store}), and how many bytes of
 * fetched and published layers the node keeps in its pool before it evicts the least recently used
 * ({@code --layer-cache-bytes}).
 */
public record ObjectStoreSettings(ObjectStoreUrl url, long cacheBytes) {
    public static final long DEFAULT_CACHE_BYTES = 64L << 30;

    public ObjectStoreSettings {
        if (url == null) throw new IllegalArgumentException("an object store needs its s3:// URL");
        if (cacheBytes < (16L << 20)) throw new IllegalArgumentException("the layer cache must be at least 16 MiB");
    }
}
