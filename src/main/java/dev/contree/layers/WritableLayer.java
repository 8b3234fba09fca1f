package dev.contree.layers;

import java.nio.file.Path;

/** A writable child of some layers, mounted as an overlay; ends with {@link LayerStore#commit} or {@link LayerStore#discard}. */
public interface WritableLayer {
    /** Id of the subvolume; becomes the committed layer's id if the commit keeps it. */
    String id();

    /** The merged overlay mount point: the sandbox's root filesystem. */
    Path rootfs();

    /** The overlay upper dir (the future layer content). */
    Path diffDir();

    /** The simple-quota cap on the layer in bytes (0 = uncapped); enforced only if {@link LayerStore#quotasEnforced()}. */
    long capBytes();

    /** Ids of the lower layers, top first, as given to {@link LayerStore#prepare}. */
    java.util.List<String> lowerLayerIds();
}
