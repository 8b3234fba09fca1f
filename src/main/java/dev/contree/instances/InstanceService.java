package dev.contree.instances;

import dev.contree.files.FileRecord;
import dev.contree.files.FileService;
import dev.contree.images.Image;
import dev.contree.images.ImageFilesystem;
import dev.contree.images.ImageService;
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
import dev.contree.sandbox.SandboxRuntime;

import dev.contree.operations.OperationStatus;
import dev.contree.operations.RequestRejected.Reason;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * Spawns executions: resolves the image and files up front (so mistakes are 4xx), records the operation, queues it.
 * On a cluster worker it also rebuilds a claimed execution's job from the operation's row ({@link #rebuild}).
 */
public final class InstanceService implements WorkQueue.JobFactory {
    private final ImageService images;
    private final FileService files;
    private final OperationService operations;
    private final WorkQueue queue;
    private final Execution engine;
    private final boolean networkAllowed;
    private final StdinSpool spool;
    private final ImageFilesystem imageFiles;

    public InstanceService(ImageService images, FileService files, OperationService operations, WorkQueue queue,
                           LayerStore store, SandboxRuntime runtime, LayerIndex layerIndex, LayerLeases leases, boolean networkAllowed,
                           AccountStorage storage, StdinSpool spool, ImageFilesystem imageFiles) {
        this.images = images;
        this.files = files;
        this.operations = operations;
        this.queue = queue;
        this.engine = new Execution(store, runtime, layerIndex, leases, files, storage, new LiveInstances());
        this.networkAllowed = networkAllowed;
        this.spool = spool;
        this.imageFiles = imageFiles;
    }

    /** An image reference: a UUID, {@code tag:NAME}, or a bare tag name. */
    public Optional<Image> resolveImage(String accountId, String ref, Function<String, Boolean> isUuid) {
        if (ref.startsWith("tag:")) return images.byTag(accountId, ref.substring(4));
        String lower = ref.toLowerCase(java.util.Locale.ROOT);
        if (isUuid.apply(lower)) return images.get(accountId, lower);
        return images.byTag(accountId, ref);
    }

    /**
     * A file target under a non-directory of the image ({@code /etc/passwd/x}) or on a directory ({@code /etc})
     * could only fail at injection time: refuse it now, reading the image as the sandbox will see it (in-image
     * symlinks followed like a chroot).
     */
    private void checkTargetsAgainstImage(Image image, java.util.Set<String> targets) throws RequestRejected {
        if (targets.isEmpty()) return;
        try (ImageFilesystem.View view = imageFiles.open(image)) {
            for (String target : targets) {
                int slash = 0;
                while ((slash = target.indexOf('/', slash + 1)) > 0) {
                    String dir = target.substring(0, slash);
                    var e = view.files().stat(dir, true);
                    if (e.isEmpty()) break; // created by the injector
                    if (!e.get().isDir())
                        throw new RequestRejected(RequestRejected.Reason.INVALID, "file target '" + target + "' lies under '" + dir + "', which is not a directory in the image");
                }
                var t = view.files().stat(target, false);
                if (t.isPresent() && t.get().isDir())
                    throw new RequestRejected(RequestRejected.Reason.INVALID, "file target '" + target + "' is a directory in the image");
            }
        } catch (dev.contree.inspect.InspectException e) {
            throw new RequestRejected(RequestRejected.Reason.INVALID, "file target cannot be resolved in the image: " + e.getMessage());
        } catch (java.io.IOException e) {
            throw new RequestRejected(RequestRejected.Reason.UNAVAILABLE, "could not read the image to check file targets: " + e.getClass().getSimpleName());
        }
    }

    /** Records and queues an execution of {@code spec} on {@code image}. */
    public Operation spawn(String accountId, InstanceSpec spec, Image image) throws RequestRejected {
        if (spec.networking() && !networkAllowed) {
            throw new RequestRejected(RequestRejected.Reason.FORBIDDEN, "networking is disabled on this server (an operator enables it with serve --network on)");
        }
        // A run that keeps its result adds storage; a disposable one only borrows its capped scratch layer.
        if (!spec.disposable() && engine.storage().remaining(accountId) <= 0) {
            throw new RequestRejected(RequestRejected.Reason.FORBIDDEN, engine.storage().overMessage(accountId) + " (disposable runs still work)");
        }
        if (!spec.files().isEmpty() && !queue.runsWorkHere() && !files.shared()) {
            // Without an object store uploaded content is on this node only: no worker could inject it.
            throw new RequestRejected(RequestRejected.Reason.UNAVAILABLE, "this node runs no executions (serve --role api) and"
                    + " workers cannot read files uploaded to it: upload the files to, and spawn on, a worker node");
        }
        Map<String, FileRecord> resolved = new LinkedHashMap<>();
        for (var f : spec.files().entrySet()) {
            String uuid = f.getValue().fileUuid();
            FileRecord record = files.byUuid(accountId, uuid)
                    .orElseThrow(() -> new RequestRejected(RequestRejected.Reason.NOT_FOUND, "file " + uuid + " (for " + f.getKey() + ") not found"));
            resolved.put(uuid, record);
        }
        checkTargetsAgainstImage(image, spec.files().keySet());
        // A place in the queue first, then stdin leaves the heap, then the operation exists: a full queue or a refused
        // spool records nothing and leaves nothing behind.
        try (WorkQueue.Place place = queue.reserve(accountId, spec.stdin().length)) {
            if (!queue.inProcess()) {
                // A worker rebuilds the job from the row; every byte of stdin goes with the queue's row.
                Operation op = operations.create(accountId, OperationKind.INSTANCE, image.uuid(), ExecutionRequest.of(spec, image.uuid()));
                queue.submit(place, op, new WorkQueue.StoredInput(spec.stdin(), null));
                return op;
            }
            StdinSpool.Spooled stdin = spec.stdin().length == 0 ? null : spool.put(spec.stdin());
            try {
                Operation op = operations.create(accountId, OperationKind.INSTANCE, image.uuid(), ExecutionRequest.of(spec, image.uuid()));
                queue.submit(place, op, new ExecutionJob(engine, spec.withoutStdin(), stdin, image, resolved));
                return op;
            } catch (RuntimeException e) {
                if (stdin != null) stdin.close();
                throw e;
            }
        }
    }

    // ------------------------------------------------------------------ a cluster worker's side

    /** An execution runs where its image's layers are, or anywhere when this node fetches layers from an object store. */
    @Override
    public boolean runnableHere(Operation op) {
        if (!(op.request() instanceof ExecutionRequest)) return false;
        if (engine.leases().source() != dev.contree.images.LayerSource.LOCAL) return true; // a missing image fails in rebuild
        Optional<Image> image = images.get(op.accountId(), op.imageUuid());
        return image.isPresent() && image.get().layers().stream().allMatch(engine.store()::exists);
    }

    /** The job of an execution a worker claimed: the recorded request, its image and files, stdin from the queue's row. */
    @Override
    public Job rebuild(Operation op, WorkQueue.StoredInput input) throws RequestRejected {
        if (!(op.request() instanceof ExecutionRequest request)) throw new RequestRejected(Reason.INVALID, "not an execution");
        InstanceSpec spec = request.spec();
        Image image = images.get(op.accountId(), op.imageUuid())
                .orElseThrow(() -> new RequestRejected(Reason.NOT_FOUND, "image " + op.imageUuid() + " is gone"));
        Map<String, FileRecord> resolved = new LinkedHashMap<>();
        for (var f : spec.files().values()) {
            FileRecord record = files.byUuid(op.accountId(), f.fileUuid())
                    .orElseThrow(() -> new RequestRejected(Reason.NOT_FOUND, "file " + f.fileUuid() + " is gone"));
            if (!files.available(record))
                throw new RequestRejected(Reason.UNAVAILABLE, "the content of file " + f.fileUuid() + " is not on this worker"
                        + " (without an object store, upload files through the worker that runs the execution)");
            resolved.put(f.fileUuid(), record);
        }
        StdinSpool.Spooled stdin = input.stdin().length == 0 ? null : spool.put(input.stdin());
        return new ExecutionJob(engine, spec.withoutStdin(), stdin, image, resolved);
    }

    // ------------------------------------------------------------------ live instances: subprocesses

    /** How long a subprocess call waits for an instance that is ASSIGNED or EXECUTING but whose init is not up yet. */
    private static final Duration STARTING_WAIT = Duration.ofSeconds(10);

    /**
     * Where to send a subprocess call for the account's instance when another cluster node runs it (that node's HTTP
     * API); empty when it runs here, or is not running, or its node did not say where it serves.
     */
    public Optional<String> routeFor(String accountId, String operationUuid) {
        Optional<Operation> op = operations.get(accountId, operationUuid);
        if (op.isEmpty() || op.get().kind() != OperationKind.INSTANCE || op.get().status().terminal()) return Optional.empty();
        return queue.routeTo(operationUuid);
    }

    /** Starts one more process in the account's running instance; returns its spid (2, 3, …). */
    public int startSubprocess(String accountId, String operationUuid, SubprocessRequest request) throws RequestRejected {
        return running(accountId, operationUuid).spawn(request, STARTING_WAIT);
    }

    /** Writes to a process's stdin (spid 1 = the main process), closing it after the bytes when {@code close}. */
    public void writeStdin(String accountId, String operationUuid, int spid, byte[] data, boolean close) throws RequestRejected {
        running(accountId, operationUuid).writeStdin(spid, data, close, STARTING_WAIT);
    }

    /** Sends a signal to a process of the account's running instance (spid 1 = the main process). */
    public void signal(String accountId, String operationUuid, int spid, int signo) throws RequestRejected {
        running(accountId, operationUuid).signal(spid, signo, STARTING_WAIT);
    }

    /**
     * A process's state, output and resources folded from the operation's event log, for any status of the
     * instance: while the process runs its exit code and signal are -1.
     */
    public ExecutionResult subprocess(String accountId, String operationUuid, int spid) throws RequestRejected {
        Operation op = instance(accountId, operationUuid);
        var events = operations.events(op.uuid(), -1, spid);
        boolean known = !events.isEmpty() || engine.live().get(op.uuid()).map(l -> l.knows(spid)).orElse(false);
        if (!known) throw new RequestRejected(Reason.NOT_FOUND, "no subprocess " + spid + " in this operation");
        boolean over = operations.get(op.uuid()).map(o -> o.status().terminal()).orElse(true);
        return SubprocessFold.of(events, over);
    }

    private Operation instance(String accountId, String operationUuid) throws RequestRejected {
        Operation op = operations.get(accountId, operationUuid)
                .orElseThrow(() -> new RequestRejected(Reason.NOT_FOUND, "operation not found"));
        if (op.kind() != OperationKind.INSTANCE)
            throw new RequestRejected(Reason.CONFLICT, "operation " + operationUuid + " is an image import, not an instance");
        return op;
    }

    /** The live side of the account's instance, which must be ASSIGNED or EXECUTING. */
    private LiveInstance running(String accountId, String operationUuid) throws RequestRejected {
        Operation op = instance(accountId, operationUuid);
        OperationStatus status = op.status();
        if (status.terminal())
            throw new RequestRejected(Reason.CONFLICT, "the instance already finished (" + status + "): nothing more can run in it");
        if (status == OperationStatus.PENDING)
            throw new RequestRejected(Reason.NOT_YET, "the instance is still queued (PENDING): retry once it is EXECUTING", 1);
        Optional<String> worker = queue.heldElsewhere(op.uuid());
        if (worker.isPresent())
            throw new RequestRejected(Reason.CONFLICT, "the instance runs on worker " + worker.get() + ", not on this node: subprocess"
                    + " calls reach only the node that runs the instance, and that node cannot be reached from here");
        // ASSIGNED: its job may not have registered yet; give it the same bounded wait as a starting init.
        long deadline = System.nanoTime() + STARTING_WAIT.toNanos();
        while (true) {
            var live = engine.live().get(op.uuid());
            if (live.isPresent() && live.get().accountId().equals(accountId)) return live.get();
            if (System.nanoTime() > deadline || operations.get(op.uuid()).map(o -> o.status().terminal()).orElse(true))
                throw new RequestRejected(Reason.CONFLICT, "the instance is not running on this server");
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RequestRejected(Reason.UNAVAILABLE, "interrupted");
            }
        }
    }
}
