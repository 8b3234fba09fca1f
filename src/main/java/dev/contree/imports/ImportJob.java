package dev.contree.imports;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.images.ImageService;
import dev.contree.images.LayerIndex;
import dev.contree.layerformat.TarLayerWriter;
import dev.contree.layers.LayerBuilder;
import dev.contree.layers.LayerStore;
import dev.contree.operations.CancelToken;
import dev.contree.operations.Job;
import dev.contree.operations.OperationService;
import dev.contree.operations.OperationStatus;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Imports an image: each source layer becomes one store layer (unpacked from its tar, OCI whiteouts
 * converted), keyed by digest so shared and re-imported layers are reused, then one image record.
 */
final class ImportJob implements Job {
    private final ImportRequest request;
    private final ImportSource source;
    private final LayerStore store;
    private final LayerIndex index;
    private final ObjectNode metadata;

    ImportJob(ImportRequest request, ImportSource source, LayerStore store, LayerIndex index, ObjectNode metadata) {
        this.request = request;
        this.source = source;
        this.store = store;
        this.index = index;
        this.metadata = metadata;
    }

    @Override
    public Result run(Context ctx) throws Exception {
        ctx.executing();
        CancelToken cancel = ctx.cancel();
        ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(Thread.ofVirtual().factory());
        timer.schedule(() -> cancel.cancel("import timed out after " + request.timeoutSeconds() + " s"),
                request.timeoutSeconds(), TimeUnit.SECONDS);
        try {
            ImportSource.Resolved image = source.resolve(cancel);
            List<String> bottomUp = new ArrayList<>();
            long size = 0;
            for (ImportSource.Layer layer : image.layersBottomFirst()) {
                if (cancel.isCancelled()) throw new InterruptedIOException(cancel.reason());
                String id = index.byDigest(layer.digest()).filter(store::exists).orElse(null);
                if (id == null) id = unpack(layer, cancel);
                size += store.sizeOf(id);
                bottomUp.add(id);
            }
            List<String> topFirst = new ArrayList<>(bottomUp.reversed());
            var done = new OperationService.Completion(OperationStatus.SUCCESS, null, null, request.tag(), size, null, null, metadata);
            var image2 = new ImageService.NewImage(ctx.operation().accountId(), ctx.operation().uuid(), null, topFirst,
                    image.config(), size, request.tag());
            return new Result(done, image2);
        } catch (IOException e) {
            if (cancel.isCancelled()) {
                String why = cancel.reason();
                OperationStatus status = why.startsWith("import timed out") ? OperationStatus.FAILED : OperationStatus.CANCELLED;
                return new Result(new OperationService.Completion(status, why, null, null, null, null, null, metadata), null);
            }
            throw e;
        } finally {
            timer.shutdownNow();
        }
    }

    private String unpack(ImportSource.Layer layer, CancelToken cancel) throws IOException {
        LayerBuilder builder = store.create();
        try (InputStream raw = cancellable(layer.open(), cancel)) {
            InputStream in = TarLayerWriter.decompressing(raw);
            new TarLayerWriter(builder.diffDir(), layer.ociWhiteouts()).write(in);
            // Read both streams to the end so a verifying source checks the digest of every byte before we commit.
            in.transferTo(OutputStream.nullOutputStream());
            raw.transferTo(OutputStream.nullOutputStream());
            String id = builder.commit();
            long size = store.sizeOf(id);
            index.record(id, layer.digest(), size);
            return index.byDigest(layer.digest()).orElse(id);
        } catch (IOException | RuntimeException e) {
            builder.abort();
            throw e;
        }
    }

    private static InputStream cancellable(InputStream in, CancelToken cancel) {
        return new FilterInputStream(in) {
            @Override
            public int read() throws IOException {
                check();
                return super.read();
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                check();
                return super.read(b, off, len);
            }

            private void check() throws IOException {
                if (cancel.isCancelled()) throw new InterruptedIOException(cancel.reason());
            }
        };
    }

}
