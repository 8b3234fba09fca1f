package dev.contree.imports;

import dev.contree.cancel.CancelToken;
import dev.contree.images.ImageConfig;

import java.io.IOException;
import java.io.InputStream;
import java.util.List;

/** Where an import's layers come from: a registry, an uploaded archive, or a plain rootfs tarball. */
interface ImportSource {
    Resolved resolve(CancelToken cancel) throws IOException;

    /** The image: its layers (bottom first) and execution defaults. */
    record Resolved(List<Layer> layersBottomFirst, ImageConfig config) {}

    /** One layer: a digest that identifies its content, and its tar stream (possibly compressed; verified if it can be). */
    interface Layer {
        String digest();

        /** Opens the (possibly compressed) tar stream; reading it to the end verifies it where the source can. */
        InputStream open() throws IOException;

        /** Bytes {@link #open()} delivers, or -1 if unknown (used to start big layers first). */
        default long size() {
            return -1;
        }

        /**
         * Whether the account already proved it holds these bytes without reading them here (its own uploaded file),
         * so a stored layer with this digest may be reused as is. False: the bytes must be read and verified first.
         */
        default boolean accountHoldsBytes() {
            return false;
        }

        /** Whether the tar uses OCI whiteout files ({@code .wh.*}); false for a plain rootfs tarball. */
        default boolean ociWhiteouts() {
            return true;
        }
    }
}
