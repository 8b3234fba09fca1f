package dev.contree.layers;

/**
 * Settings of a {@link LayerStore}.
 *
 * @param imageSizeBytes      size of the sparse btrfs image created next to a root that is not on btrfs
 * @param maxMountDepth       {@link LayerStore#compactIfNeeded} keeps image chains at most this deep
 * @param unmountImageOnClose unmount the loop-mounted image in {@link LayerStore#close()} (if the store mounted it)
 */
public record LayerStoreConfig(long imageSizeBytes, int maxMountDepth, boolean unmountImageOnClose) {
    public static final long DEFAULT_IMAGE_SIZE = 64L << 30;
    public static final int DEFAULT_MAX_MOUNT_DEPTH = 16;

    public LayerStoreConfig {
        if (imageSizeBytes < (256L << 20)) throw new IllegalArgumentException("image must be at least 256 MiB");
        if (maxMountDepth < 2) throw new IllegalArgumentException("maxMountDepth must be >= 2");
    }

    public static LayerStoreConfig defaults() {
        return new LayerStoreConfig(DEFAULT_IMAGE_SIZE, DEFAULT_MAX_MOUNT_DEPTH, true);
    }

    public LayerStoreConfig withImageSize(long bytes) {
        return new LayerStoreConfig(bytes, maxMountDepth, unmountImageOnClose);
    }

    public LayerStoreConfig withMaxMountDepth(int depth) {
        return new LayerStoreConfig(imageSizeBytes, depth, unmountImageOnClose);
    }

    public LayerStoreConfig withUnmountImageOnClose(boolean unmount) {
        return new LayerStoreConfig(imageSizeBytes, maxMountDepth, unmount);
    }
}
