package dev.contree.imports;

import dev.contree.files.FileRecord;
import dev.contree.files.FileService;
import dev.contree.images.AccountStorage;
import dev.contree.images.LayerIndex;
import dev.contree.images.LayerLeases;
import dev.contree.layers.LayerStore;
import dev.contree.operations.Operation;
import dev.contree.operations.OperationKind;
import dev.contree.operations.OperationService;
import dev.contree.operations.RequestRejected;
import dev.contree.operations.Scheduler;
import dev.contree.registry.Credentials;
import dev.contree.registry.ImageReference;
import dev.contree.registry.RegistryClient;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Starts imports: picks the source for the URL, records an {@code image_import} operation, queues it. */
public final class ImportService {
    private static final Pattern FILE_URL = Pattern.compile("(rootfs|oci-archive|docker-archive)\\+file://([0-9a-fA-F-]{36})/?");

    private final FileService files;
    private final OperationService operations;
    private final Scheduler scheduler;
    private final RegistryClient registry;
    private final ImportTarget target;

    /**
     * @param maxImportBytes the most bytes one import may unpack (file data plus a per-entry overhead)
     * @param storage        the per-account storage bound; an account at it cannot import
     */
    public ImportService(FileService files, OperationService operations, Scheduler scheduler, LayerStore store, LayerIndex index,
                         LayerLeases leases, RegistryClient registry, long maxImportBytes, AccountStorage storage) {
        this.files = files;
        this.operations = operations;
        this.scheduler = scheduler;
        this.registry = registry;
        this.target = new ImportTarget(store, index, leases, maxImportBytes, storage);
    }

    public Operation start(String accountId, ImportRequest request) throws RequestRejected {
        ImportSource source = source(accountId, request);
        AccountStorage storage = target.storage();
        if (storage.remaining(accountId) <= 0) throw new RequestRejected(RequestRejected.Reason.FORBIDDEN, storage.overMessage(accountId));
        try (Scheduler.Reservation place = scheduler.reserve(accountId)) { // a full queue records nothing
            Operation op = operations.create(accountId, OperationKind.IMAGE_IMPORT, null, request.withoutPassword());
            scheduler.submit(place, op, new ImportJob(request, source, target));
            return op;
        }
    }

    private ImportSource source(String accountId, ImportRequest request) throws RequestRejected {
        Matcher m = FILE_URL.matcher(request.url());
        if (m.matches()) {
            String uuid = m.group(2).toLowerCase(Locale.ROOT);
            FileRecord file = files.byUuid(accountId, uuid).orElseThrow(() -> new RequestRejected(RequestRejected.Reason.NOT_FOUND, "file " + uuid + " not found"));
            if (m.group(1).equals("rootfs")) return FileSources.rootfs(files, file);
            java.nio.file.Path archive;
            try {
                archive = files.localPath(file); // an archive is read at random: on this node's disk
            } catch (java.io.IOException e) {
                throw new RequestRejected(RequestRejected.Reason.UNAVAILABLE, "file " + uuid + " is not available: " + e.getMessage());
            }
            return new ArchiveSource(m.group(1).equals("oci-archive") ? ArchiveSource.Kind.OCI : ArchiveSource.Kind.DOCKER, archive);
        }
        if (request.url().contains("+file://")) {
            throw new RequestRejected(RequestRejected.Reason.INVALID, "file imports look like rootfs+file://<file-uuid>, oci-archive+file://<file-uuid> or docker-archive+file://<file-uuid>");
        }
        ImageReference ref;
        try {
            ref = ImageReference.parse(request.url());
        } catch (IllegalArgumentException e) {
            throw new RequestRejected(RequestRejected.Reason.INVALID, e.getMessage());
        }
        return new RegistrySource(registry, ref, new Credentials(request.username(), request.password()));
    }
}
