package dev.contree.instances;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.files.FileRecord;
import dev.contree.files.FileService;
import dev.contree.images.Image;
import dev.contree.images.ImageService;
import dev.contree.images.AccountStorage;
import dev.contree.images.LayerIndex;
import dev.contree.images.LayerLeases;
import dev.contree.layers.LayerStore;
import dev.contree.operations.Operation;
import dev.contree.operations.OperationKind;
import dev.contree.operations.OperationService;
import dev.contree.operations.RequestRejected;
import dev.contree.operations.Scheduler;
import dev.contree.sandbox.SandboxRuntime;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/** Spawns executions: resolves the image and files up front (so mistakes are 4xx), records the operation, queues it. */
public final class InstanceService {
    private final ImageService images;
    private final FileService files;
    private final OperationService operations;
    private final Scheduler scheduler;
    private final Execution engine;
    private final boolean networkAllowed;

    public InstanceService(ImageService images, FileService files, OperationService operations, Scheduler scheduler,
                           LayerStore store, SandboxRuntime runtime, LayerIndex layerIndex, LayerLeases leases, boolean networkAllowed,
                           AccountStorage storage) {
        this.images = images;
        this.files = files;
        this.operations = operations;
        this.scheduler = scheduler;
        this.engine = new Execution(store, runtime, layerIndex, leases, files, storage);
        this.networkAllowed = networkAllowed;
    }

    /** An image reference: a UUID, {@code tag:NAME}, or a bare tag name. */
    public Optional<Image> resolveImage(String accountId, String ref, Function<String, Boolean> isUuid) {
        if (ref.startsWith("tag:")) return images.byTag(accountId, ref.substring(4));
        String lower = ref.toLowerCase(java.util.Locale.ROOT);
        if (isUuid.apply(lower)) return images.get(accountId, lower);
        return images.byTag(accountId, ref);
    }

    /**
     * Records and queues an execution of {@code spec} on {@code image}. {@code echo} renders the
     * normalised request as the operation's metadata.
     */
    public Operation spawn(String accountId, InstanceSpec spec, Image image, ObjectNode echo) throws RequestRejected {
        if (spec.networking() && !networkAllowed) {
            throw new RequestRejected(403, "networking is disabled on this server (an operator enables it with serve --network-namespace)");
        }
        // A run that keeps its result adds storage; a disposable one only borrows its capped scratch layer.
        if (!spec.disposable() && engine.storage().remaining(accountId) <= 0) {
            throw new RequestRejected(403, engine.storage().overMessage(accountId) + " (disposable runs still work)");
        }
        Map<String, FileRecord> resolved = new LinkedHashMap<>();
        for (var f : spec.files().entrySet()) {
            String uuid = f.getValue().fileUuid();
            FileRecord record = files.byUuid(accountId, uuid)
                    .orElseThrow(() -> new RequestRejected(404, "file " + uuid + " (for " + f.getKey() + ") not found"));
            resolved.put(uuid, record);
        }
        Operation op = operations.create(accountId, OperationKind.INSTANCE, image.uuid(), echo);
        scheduler.submit(op, new ExecutionJob(engine, spec, image, resolved, echo));
        return op;
    }
}
