package dev.contree.imports;

import dev.contree.cancel.CancelToken;
import dev.contree.images.ImageConfig;
import dev.contree.registry.BlobStream;
import dev.contree.registry.Credentials;
import dev.contree.registry.Descriptor;
import dev.contree.registry.ImageReference;
import dev.contree.registry.PulledImage;
import dev.contree.registry.RegistryClient;
import dev.contree.registry.RegistryException;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;

/**
 * Layers from a Docker Registry v2 / OCI distribution registry. Each layer is keyed by its compressed blob digest
 * ({@code sha256:…}), so an unchanged re-import downloads only the manifest and the config.
 */
record RegistrySource(RegistryClient client, ImageReference ref, Credentials creds) implements ImportSource {
    @Override
    public Resolved resolve(CancelToken cancel) throws IOException {
        PulledImage img;
        try {
            img = client.resolve(ref, creds, cancel);
        } catch (RegistryException e) {
            throw failure(e);
        }
        List<Layer> layers = new ArrayList<>();
        for (Descriptor d : img.layers()) {
            layers.add(new Layer() {
                @Override public String digest() { return d.digest(); }
                @Override public long size() { return d.size(); }

                @Override
                public InputStream open() throws IOException {
                    try {
                        return new RegistryBlob(client.openBlob(ref, d, creds, cancel));
                    } catch (RegistryException e) {
                        throw failure(e);
                    }
                }
            });
        }
        var c = img.config();
        return new Resolved(layers, new ImageConfig(c.envMap(), c.workingDir(), c.user()));
    }

    /** A registry failure as an operation error. */
    static ImportFailure failure(RegistryException e) {
        String msg = e.getMessage();
        String text = switch (e.kind()) {
            case INSECURE -> msg + " (plain HTTP is only used for loopback registries and those listed in CONTREE_INSECURE_REGISTRIES)";
            case DIGEST_MISMATCH -> "corrupt download: " + msg;
            case NETWORK -> "registry unreachable or failing: " + msg;
            default -> msg;
        };
        return new ImportFailure(text, e);
    }

    /** Unwraps digest/network errors of a {@link BlobStream} into {@link ImportFailure}s with clear text. */
    private static final class RegistryBlob extends java.io.FilterInputStream {
        RegistryBlob(BlobStream in) {
            super(in);
        }

        @Override
        public int read() throws IOException {
            try {
                return in.read();
            } catch (BlobStream.BlobIOException e) {
                throw failure(e.registryException());
            }
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            try {
                return in.read(b, off, len);
            } catch (BlobStream.BlobIOException e) {
                throw failure(e.registryException());
            }
        }

        @Override
        public long skip(long n) throws IOException {
            try {
                return in.skip(n);
            } catch (BlobStream.BlobIOException e) {
                throw failure(e.registryException());
            }
        }
    }
}
