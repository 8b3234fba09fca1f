package dev.contree.registry;

import java.util.Locale;

/** An OCI content descriptor (layer, config or manifest). */
public record Descriptor(String mediaType, String digest, long size) {
    public static final String DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    public static final String DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    public static final String DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar";
    public static final String OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";
    public static final String OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
    public static final String OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";

    /** True if {@link #compression()} knows this media type (i.e. it is a tar layer, possibly compressed). */
    public boolean isLayer() {
        return compressionOrNull() != null;
    }

    /**
     * Layer compression from the media type: Docker {@code rootfs.diff.tar.gzip} (also foreign), OCI {@code tar},
     * {@code tar+gzip}, {@code tar+zstd} and their {@code nondistributable} variants.
     *
     * @throws IllegalStateException for a media type that is not a known layer type ({@link RegistryClient#resolve}
     *     never returns such layers)
     */
    public Compression compression() {
        Compression c = compressionOrNull();
        if (c == null) throw new IllegalStateException("not a known layer media type: " + mediaType);
        return c;
    }

    private Compression compressionOrNull() {
        if (mediaType == null) return null;
        String m = mediaType.toLowerCase(Locale.ROOT).trim();
        return switch (m) {
            case DOCKER_LAYER_GZIP, DOCKER_FOREIGN_LAYER_GZIP, OCI_LAYER_GZIP,
                 "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" -> Compression.GZIP;
            case OCI_LAYER_ZSTD, "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" -> Compression.ZSTD;
            case OCI_LAYER_TAR, DOCKER_LAYER_TAR, "application/vnd.oci.image.layer.nondistributable.v1.tar" ->
                Compression.NONE;
            default -> null;
        };
    }
}
