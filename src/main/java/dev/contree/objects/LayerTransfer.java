package dev.contree.objects;

import com.github.luben.zstd.ZstdInputStream;
import com.github.luben.zstd.ZstdOutputStream;
import dev.contree.layerformat.LayerFormatException;
import dev.contree.layerformat.LayerPacker;
import dev.contree.layerformat.TarLayerWriter;
import dev.contree.layers.LayerBuilder;
import dev.contree.layers.LayerStore;
import dev.contree.store.LayerRecords;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.util.UUID;

/**
 * Moves committed layers between a node's {@link LayerStore} and the {@link ObjectStore}: a layer is packed once
 * ({@link LayerPacker}'s tar in overlay format, zstd) into a temp file, named by the sha256 of the pack, and
 * uploaded under that content address; a node that lacks it downloads the pack, checks its sha256 against the one
 * the metadata store recorded (so a corrupt or replaced object is refused before a byte of it is unpacked), and
 * unpacks it as hostile input ({@link TarLayerWriter#forPack}: no link followed on the host, names as bytes) into a
 * pending layer that becomes visible under the layer's own id only by the store's atomic rename.
 */
public final class LayerTransfer {
    private static final Logger LOG = LoggerFactory.getLogger(LayerTransfer.class);
    /** zstd level 3 (its default): ~300 MB/s per core here, about what a 1 Gbit/s link to the store carries. */
    static final int ZSTD_LEVEL = 3;

    private final ObjectStore objects;
    private final LayerStore store;
    private final Path tmp;

    /** @param tmp a directory of this node's own for packs in flight (emptied now: what is there is a crash's leftovers) */
    public LayerTransfer(ObjectStore objects, LayerStore store, Path tmp) throws IOException {
        this.objects = objects;
        this.store = store;
        this.tmp = tmp;
        Files.createDirectories(tmp);
        try (var stale = Files.list(tmp)) {
            for (Path p : (Iterable<Path>) stale::iterator) Files.deleteIfExists(p);
        }
    }

    public ObjectStore objects() {
        return objects;
    }

    /** Packs the committed layer and uploads the pack (unless the object exists already); returns the pack's address. */
    public LayerRecords.Packed upload(String layerId) throws IOException {
        return upload(layerId, objects);
    }

    /** {@link #upload} into {@code target} (the store under an {@link ObjectGuard}, from inside one of its locks). */
    LayerRecords.Packed upload(String layerId, ObjectStore target) throws IOException {
        long t0 = System.nanoTime();
        Path file = tmp.resolve(layerId + "-" + UUID.randomUUID() + ".tar.zst");
        try {
            MessageDigest digest = Sha256.digest();
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                try (OutputStream hashed = new DigestOutputStream(new BufferedOutputStream(Channels.newOutputStream(ch), 256 * 1024), digest);
                     ZstdOutputStream zstd = new ZstdOutputStream(hashed, ZSTD_LEVEL)) {
                    LayerPacker.pack(store.diffDir(layerId), zstd);
                }
            }
            String sha = Sha256.hex(digest);
            long bytes = Files.size(file);
            long packed = System.nanoTime();
            target.put(ObjectKey.layer(sha), file);
            LOG.debug("layer {} packed ({} bytes) in {} ms, uploaded in {} ms", layerId, bytes, (packed - t0) / 1_000_000,
                    (System.nanoTime() - packed) / 1_000_000);
            return new LayerRecords.Packed(sha, bytes);
        } finally {
            Files.deleteIfExists(file);
        }
    }

    /**
     * Fetches the layer's pack, checks it, and commits it into the store under {@code layerId}. A crash or failure
     * at any point leaves nothing that looks committed: the download is a temp file, the unpack a pending layer.
     */
    public void fetch(String layerId, LayerRecords.Packed pack) throws IOException {
        long t0 = System.nanoTime();
        Path file = tmp.resolve(layerId + "-" + UUID.randomUUID() + ".fetch");
        try {
            ObjectKey key = ObjectKey.layer(pack.sha256());
            objects.download(key, file, pack.bytes()); // checked against the size and sha256 the metadata store recorded
            long fetched = System.nanoTime();
            try (LayerBuilder builder = store.create(layerId)) {
                try (InputStream raw = new BufferedInputStream(Files.newInputStream(file), 256 * 1024);
                     InputStream tar = new BufferedInputStream(new ZstdInputStream(raw), 256 * 1024)) {
                    TarLayerWriter.forPack(builder.diffDir()).write(tar);
                } catch (LayerFormatException e) {
                    throw new IOException("layer " + layerId + " from " + key + " is not a valid pack: " + e.getMessage(), e);
                }
                builder.commit();
            }
            LOG.debug("layer {} fetched ({} bytes) in {} ms, unpacked in {} ms", layerId, pack.bytes(), (fetched - t0) / 1_000_000,
                    (System.nanoTime() - fetched) / 1_000_000);
        } finally {
            Files.deleteIfExists(file);
        }
    }
}
