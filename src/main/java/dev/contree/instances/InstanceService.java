package dev.contree.instances;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.files.FileRecord;
import dev.contree.files.FileService;
import dev.contree.images.Image;
import dev.contree.images.ImageService;
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
    private final StdinSpool spool;

    public InstanceService(ImageService images, FileService files, OperationService operations, Scheduler scheduler,
                           LayerStore store, SandboxRuntime runtime, LayerIndex layerIndex, LayerLeases leases, boolean networkAllowed,
                           StdinSpool spool) {
        this.images = images;
        this.files = files;
        this.operations = operations;
        this.scheduler = scheduler;
        this.engine = new Execution(store, runtime, layerIndex, leases, files);
        this.networkAllowed = networkAllowed;
        this.spool = spool;
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
        Map<String, FileRecord> resolved = new LinkedHashMap<>();
        for (var f : spec.files().entrySet()) {
            String uuid = f.getValue().fileUuid();
            FileRecord record = files.byUuid(accountId, uuid)
                    .orElseThrow(() -> new RequestRejected(404, "file " + uuid + " (for " + f.getKey() + ") not found"));
            resolved.put(uuid, record);
        }
        // stdin leaves the heap before the operation exists: a refused spool records nothing.
        StdinSpool.Spooled stdin = spec.stdin().length == 0 ? null : spool.put(spec.stdin());
        try {
            Operation op = operations.create(accountId, OperationKind.INSTANCE, image.uuid(), echo);
            scheduler.submit(op, new ExecutionJob(engine, spec.withoutStdin(), stdin, image, resolved, echo));
            return op;
        } catch (RuntimeException e) {
            if (stdin != null) stdin.close();
            throw e;
        }
    }
}
