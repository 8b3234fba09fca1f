package dev.contree.registry;

import java.util.List;

/**
 * A resolved image: the platform manifest's digest (for an index, the digest of the linux/amd64 manifest, not of the
 * index; see {@code indexDigest}), its layers bottom first, and its config.
 */
public record PulledImage(ImageReference ref, String manifestDigest, List<Descriptor> layers, ImageConfig config,
                          String configDigest, String manifestMediaType, String indexDigest) {
    public PulledImage {
        layers = List.copyOf(layers);
    }
}
