package dev.contree.images;

import dev.contree.inspect.MergedView;
import dev.contree.layers.LayerStore;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Read access to an image's files without running anything: a merged view over its layers, leased while open. */
public final class ImageFilesystem {
    private final LayerStore store;
    private final LayerLeases leases;

    public ImageFilesystem(LayerStore store, LayerLeases leases) {
        this.store = store;
        this.leases = leases;
    }

    /** An open view; closing it closes the view's layer descriptors, then releases the layers for garbage collection. */
    public record View(MergedView files, LayerLeases.Lease lease) implements AutoCloseable {
        @Override
        public void close() {
            try {
                files.close();
            } finally {
                lease.close();
            }
        }
    }

    /** Fails with {@link MergedView.LayerUnavailableException} if a layer of the image is gone. */
    public View open(Image image) throws IOException {
        LayerLeases.Lease lease;
        try {
            lease = leases.acquire(image.layers());
        } catch (LayerLeases.LayerGoneException e) {
            throw new MergedView.LayerUnavailableException(e); // to readers, the same as a layer lost from under its image
        }
        try {
            List<Path> dirs = new ArrayList<>();
            for (String id : image.layers()) dirs.add(store.diffDir(id));
            return new View(new MergedView(dirs), lease);
        } catch (IOException | RuntimeException e) {
            lease.close();
            throw e;
        }
    }
}
