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
import dev.contree.operations.Job;
import dev.contree.operations.WorkQueue;
import dev.contree.registry.Credentials;
import dev.contree.registry.ImageReference;
import dev.contree.registry.RegistryClient;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Starts imports: picks the source for the URL, records an {@code image_import} operation, queues it. On a cluster
 * worker it rebuilds a claimed import's job from the operation's row ({@link #rebuild}).
 */
public final class ImportService implements WorkQueue.JobFactory {
    private static final Pattern FILE_URL = Pattern.compile("(rootfs|oci-archive|docker-archive)\\+file://([0-9a-fA-F-]{36})/?");

    private final FileService files;
    private final OperationService operations;
    private final WorkQueue queue;
    private final RegistryClient registry;
    private final ImportTarget target;

    /**
     * @param maxImportBytes the most bytes one import may unpack (file data plus a per-entry overhead)
     * @param storage        the per-account storage bound; an account at it cannot import
     */
    public ImportService(FileService files, OperationService operations, WorkQueue queue, LayerStore store, LayerIndex index,
                         LayerLeases leases, RegistryClient registry, long maxImportBytes, AccountStorage storage) {
        this.files = files;
        this.operations = operations;
        this.queue = queue;
        this.registry = registry;
        this.target = new ImportTarget(store, index, leases, maxImportBytes, storage);
    }

    public Operation start(String accountId, ImportRequest request) throws RequestRejected {
        // Validated here in any case; a queued import's archive is read where a worker rebuilds it, not on this node.
        ImportSource source = source(accountId, request, queue.inProcess());
        AccountStorage storage = target.storage();
        if (storage.remaining(accountId) <= 0) throw new RequestRejected(RequestRejected.Reason.FORBIDDEN, storage.overMessage(accountId));
        try (WorkQueue.Place place = queue.reserve(accountId, 0)) { // a full queue records nothing
            Operation op = operations.create(accountId, OperationKind.IMAGE_IMPORT, null, request.withoutPassword());
            if (queue.inProcess()) queue.submit(place, op, new ImportJob(request, source, target));
            else queue.submit(place, op, new WorkQueue.StoredInput(null, request.password().isEmpty() ? null : request.password()));
            return op;
        }
    }

    /** An import of an uploaded file runs where the file's content is: any node when files live in an object store. */
    @Override
    public boolean runnableHere(Operation op) {
        if (!(op.request() instanceof ImportRequest request)) return false;
        Matcher m = FILE_URL.matcher(request.url());
        if (!m.matches()) return true;
        return files.byUuid(op.accountId(), m.group(2).toLowerCase(Locale.ROOT))
                .map(files::available).orElse(true); // a missing record fails in rebuild
    }

    /** The job of an import a worker claimed: the recorded request with the password the queue's row kept. */
    @Override
    public Job rebuild(Operation op, WorkQueue.StoredInput input) throws RequestRejected {
        if (!(op.request() instanceof ImportRequest recorded)) throw new RequestRejected(RequestRejected.Reason.INVALID, "not an import");
        ImportRequest request = new ImportRequest(recorded.url(), recorded.username(),
                input.secret() != null ? input.secret() : "", recorded.tag(), recorded.timeoutSeconds());
        return new ImportJob(request, source(op.accountId(), request, true), target);
    }

    /** @param open false: check the request only (the file exists and is the account's), and return null for an archive */
    private ImportSource source(String accountId, ImportRequest request, boolean open) throws RequestRejected {
        Matcher m = FILE_URL.matcher(request.url());
        if (m.matches() && !queue.runsWorkHere() && !files.shared()) {
            throw new RequestRejected(RequestRejected.Reason.UNAVAILABLE, "this node runs no imports (serve --role api) and workers"
                    + " cannot read files uploaded to it: upload the file to, and import it on, a worker node");
        }
        if (m.matches()) {
            String uuid = m.group(2).toLowerCase(Locale.ROOT);
            FileRecord file = files.byUuid(accountId, uuid).orElseThrow(() -> new RequestRejected(RequestRejected.Reason.NOT_FOUND, "file " + uuid + " not found"));
            if (m.group(1).equals("rootfs")) return FileSources.rootfs(files, file);
            if (!open) return null;
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
