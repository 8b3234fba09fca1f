package dev.contree.registry;

/** Compression of a layer blob, derived from its media type. */
public enum Compression {
    NONE,
    GZIP,
    ZSTD
}
