package dev.contree.instances;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.files.FileRecord;
import dev.contree.images.AccountStorage;
import dev.contree.images.Image;
import dev.contree.images.ImageConfig;
import dev.contree.images.ImageService;
import dev.contree.images.LayerLeases;
import dev.contree.inspect.MergedView;
import dev.contree.layers.TreeTooDeepException;
import dev.contree.layers.WritableLayer;
import dev.contree.operations.Job;
import dev.contree.operations.OperationService;
import dev.contree.operations.OperationStatus;
import dev.contree.operations.StreamRepr;
import dev.contree.sandbox.SandboxListener;
import dev.contree.sandbox.SandboxResult;
import dev.contree.sandbox.SandboxRuntime;
import dev.contree.sandbox.SandboxSpec;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * One execution: prepare a writable layer over the image, inject files, run the command in a
 * sandbox, then commit the layer as a child image (or discard it).
 */
final class ExecutionJob implements Job {
    static final String DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    /** Mount points a runtime may have created in the rootfs; dropped at commit unless the command used them. */
    private static final List<String> SCRATCH = java.util.stream.Stream.concat(
            SandboxRuntime.SCRATCH_PATHS.stream(), java.util.stream.Stream.of(SandboxRuntime.INIT_PATH)).toList();
    private static final List<String> SECRET_HINTS = List.of("token", "secret", "password", "api_key", "credentials", "authorization");

    private final Execution engine;
    private final InstanceSpec spec;
    private final Image image;
    private final Map<String, FileRecord> files;
    private final ObjectNode metadata;
    private final StdinSpool.Spooled stdin; // null = no stdin
    /** Leases on the layers the run uses and makes, held until its image is recorded ({@link #finished}). */
    private final List<LayerLeases.Lease> held = java.util.Collections.synchronizedList(new ArrayList<>());

    ExecutionJob(Execution engine, InstanceSpec spec, StdinSpool.Spooled stdin, Image image, Map<String, FileRecord> files,
                 ObjectNode metadata) {
        this.engine = engine;
        this.spec = spec;
        this.stdin = stdin;
        this.image = image;
        this.files = files;
        this.metadata = metadata;
    }

    @Override
    public void finished() {
        if (stdin != null) stdin.close();
        synchronized (held) {
            held.forEach(LayerLeases.Lease::close);
            held.clear();
        }
    }

    @Override
    public Result run(Context ctx) throws Exception {
        ctx.executing();
        ObjectNode init = json();
        init.put("started_at", Instant.now().toString());
        init.put("runtime_path", SandboxRuntime.INIT_PATH);
        init.put("verbose", false);
        init.put("init_pid", 1);
        ctx.event(0, "init", init);

        List<String> chain = image.layers();
        held.add(engine.leases().acquire(chain));
        List<String> compacted = engine.store().compactIfNeeded(chain);
        if (!compacted.equals(chain)) {
            held.add(engine.leases().acquire(compacted));
            // Recorded with their size so the account's storage keeps counting what the merged layers held.
            for (String id : compacted) {
                if (!chain.contains(id) && engine.layerIndex().size(id).isEmpty()) {
                    engine.layerIndex().record(id, null, engine.store().sizeOf(id));
                }
            }
            engine.layerIndex().replaceChain(image.uuid(), compacted);
            chain = compacted;
        }
        return execute(ctx, chain);
    }

    private Result execute(Context ctx, List<String> chain) throws Exception {
        // A kept result may not take the account past its storage bound: the writable layer's cap is the smaller one.
        long cap = spec.maxLayerBytes();
        long remaining = spec.disposable() ? AccountStorage.UNLIMITED : engine.storage().remaining(image.accountId());
        if (remaining <= 0) return failure(OperationStatus.FAILED, engine.storage().overMessage(image.accountId()));
        cap = Math.min(cap, remaining);
        WritableLayer layer = engine.store().prepare(chain, cap);
        held.add(engine.leases().reserve(layer.id())); // the committed layer is protected from the moment it appears
        boolean settled = false;
        try {
            List<Path> lowerDirs = new ArrayList<>();
            for (String id : chain) lowerDirs.add(engine.store().diffDir(id));
            ImageUser.Ids user;
            String cwd;
            try (MergedView view = new MergedView(lowerDirs)) {
                // The request's identity, else the image's USER, else root.
                user = spec.userGiven() ? new ImageUser.Ids(spec.uid(), spec.gid())
                        : ImageUser.resolve(image.config().user(), view).orElse(new ImageUser.Ids(spec.uid(), spec.gid()));
                cwd = workingDir(view);
            }
            FileInjector injector = new FileInjector(layer.rootfs());
            for (var e : spec.files().entrySet()) {
                try (InputStream in = engine.files().open(files.get(e.getValue().fileUuid()))) {
                    injector.inject(e.getKey(), in, e.getValue());
                }
            }
            secureMountPoints(layer);
            Map<String, String> env = effectiveEnv(user.uid());
            SandboxSpec sandbox = SandboxSpec.builder(ctx.operation().uuid(), layer.rootfs(), spec.argv())
                    .lookupPath(!spec.shell())
                    .env(env)
                    .cwd(cwd)
                    .user(user.uid(), user.gid())
                    .hostname(spec.hostname())
                    .stdin(spec.stdin())
                    .stdinFile(stdin == null ? null : stdin.file())
                    .timeout(Duration.ofSeconds(spec.timeoutSeconds()))
                    .network(spec.networking())
                    .outputCap(Math.max(1, spec.truncateOutputAt()))
                    .build();
            ctx.event(1, "spawn", spawnEvent(env, cwd, user));
            SandboxResult r;
            try {
                r = engine.runtime().run(sandbox, new EventListener(ctx), ctx.cancel());
            } catch (IOException | RuntimeException e) {
                ctx.event(0, "shutdown", InstanceResults.shutdownEvent("error"));
                throw e;
            }
            if (ctx.cancel().isCancelled()) {
                ctx.event(0, "shutdown", InstanceResults.shutdownEvent("cancelled"));
                settled = true;
                engine.store().discard(layer);
                // A client's cancel is already recorded as CANCELLED; anything else (shutdown) is a failure.
                return failure(OperationStatus.FAILED, "execution interrupted: " + ctx.cancel().message());
            }
            if (r.infraError() != null) {
                ctx.event(0, "shutdown", InstanceResults.shutdownEvent("error"));
                settled = true;
                engine.store().discard(layer);
                return failure(OperationStatus.FAILED, "sandbox failed: " + r.infraError());
            }
            ctx.event(1, "exit", InstanceResults.exitEvent(r));
            ctx.event(0, "shutdown", InstanceResults.shutdownEvent("job_complete"));

            String resultImage = null;
            ImageService.NewImage child = null;
            long layerBytes = 0;
            if (spec.disposable()) {
                settled = true;
                engine.store().discard(layer);
            } else {
                Optional<String> committed;
                try {
                    committed = engine.store().commit(layer, SCRATCH);
                } catch (TreeTooDeepException e) {
                    return failure(OperationStatus.FAILED, "the result cannot be kept: " + e.getMessage() + "; nothing was kept");
                } finally {
                    settled = true; // a failed commit has discarded the layer
                }
                if (committed.isPresent()) {
                    String id = committed.get();
                    layerBytes = engine.store().sizeOf(id);
                    engine.layerIndex().record(id, null, layerBytes);
                    AccountStorage storage = engine.storage();
                    if (storage.bounded() && storage.usedWith(image.accountId(), List.of(id)) > storage.cap()) {
                        // Concurrent runs of one account can each fit alone and not together: the last to commit loses.
                        engine.layerIndex().forget(id);
                        engine.store().remove(id);
                        return failure(OperationStatus.FAILED, "the result (" + layerBytes + " bytes) does not fit in the account's"
                                + " storage limit of " + storage.cap() + " bytes (--max-account-bytes); nothing was kept");
                    }
                    if (cap > 0 && layerBytes >= cap - (1 << 20) && engine.store().quotasEnforced()) {
                        ObjectNode capEvent = json();
                        capEvent.put("limit_bytes", cap);
                        capEvent.put("file_size", layerBytes);
                        ctx.event(0, "size_cap", capEvent);
                    }
                    List<String> layers = new ArrayList<>(List.of(id));
                    layers.addAll(chain);
                    child = new ImageService.NewImage(image.accountId(), ctx.operation().uuid(), image.uuid(), layers,
                            childConfig(env), image.size() + layerBytes, null);
                } else if (spec.preserveEnv() && !childConfig(env).equals(image.config())) {
                    // Files unchanged but the preserved environment changed: a new image over the same layers.
                    child = new ImageService.NewImage(image.accountId(), ctx.operation().uuid(), image.uuid(), chain,
                            childConfig(env), image.size(), null);
                } else {
                    resultImage = image.uuid(); // unchanged: the result is the input image
                }
            }
            ObjectNode meta = metadata.deepCopy();
            meta.set("result", InstanceResults.result(r, layerBytes));
            var done = new OperationService.Completion(OperationStatus.SUCCESS, null, resultImage, null, layerBytes,
                    InstanceResults.cpuSeconds(r.usage()), InstanceResults.memoryKiB(r.usage()), meta);
            return new Result(done, child);
        } finally {
            if (!settled) {
                try {
                    engine.store().discard(layer);
                } catch (Exception ignored) {
                    // the store's startup cleanup removes what is left
                }
            }
        }
    }

    /** After injection, before the runtime: no path the runtime mounts on may go through a link the image made. */
    private void secureMountPoints(WritableLayer layer) throws IOException {
        List<String> dirs = new ArrayList<>(), files = new ArrayList<>();
        for (SandboxRuntime.MountPoint mp : engine.runtime().rootfsMountPoints()) (mp.directory() ? dirs : files).add(mp.path());
        engine.store().secureMountPoints(layer, dirs, files);
    }

    private static Result failure(OperationStatus status, String error) {
        return new Result(new OperationService.Completion(status, error, null, null, null, null, null, null), null);
    }

    /** The image's env, then the request's (null unsets), with a default PATH and HOME. */
    Map<String, String> effectiveEnv(int uid) {
        Map<String, String> env = new LinkedHashMap<>(image.config().env());
        spec.env().forEach((k, v) -> {
            if (v == null) env.remove(k);
            else env.put(k, v);
        });
        env.putIfAbsent("PATH", DEFAULT_PATH);
        env.putIfAbsent("HOME", uid == 0 ? "/root" : "/");
        env.putIfAbsent("HOSTNAME", spec.hostname());
        return env;
    }

    /** The request's cwd, else the image's WORKDIR, else /root when the image has it, else /. */
    private String workingDir(MergedView view) {
        if (!spec.cwd().isEmpty()) return spec.cwd();
        if (!image.config().workingDir().isEmpty()) return image.config().workingDir();
        try {
            if (view.stat("/root", true).map(MergedView.Entry::isDir).orElse(false)) return "/root";
        } catch (Exception ignored) {
            // fall through to /
        }
        return "/";
    }

    private ImageConfig childConfig(Map<String, String> env) {
        if (!spec.preserveEnv()) return image.config();
        Map<String, String> kept = new LinkedHashMap<>(image.config().env());
        spec.env().forEach((k, v) -> {
            if (v == null) kept.remove(k);
            else kept.put(k, v);
        });
        return new ImageConfig(kept, image.config().workingDir(), image.config().user());
    }

    private ObjectNode spawnEvent(Map<String, String> env, String cwd, ImageUser.Ids user) {
        ObjectNode o = json();
        List<String> argv = spec.argv();
        o.put("pid", 1);
        o.put("command", argv.getFirst());
        var args = o.putArray("args");
        argv.subList(1, argv.size()).forEach(args::add);
        o.put("shell", spec.shell());
        o.put("cwd", cwd);
        o.put("uid", user.uid());
        o.put("gid", user.gid());
        o.put("timeout", spec.timeoutSeconds());
        o.put("truncate_at", spec.truncateOutputAt());
        ObjectNode e = o.putObject("env");
        env.forEach((k, v) -> e.put(k, secret(k) ? "<redacted>" : v));
        return o;
    }

    private static boolean secret(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        return SECRET_HINTS.stream().anyMatch(n::endsWith);
    }

    private static ObjectNode json() {
        return JsonNodeFactory.instance.objectNode();
    }

    /** Streams output and truncation into the operation's event log as it happens. */
    private static final class EventListener implements SandboxListener {
        private final Context ctx;

        EventListener(Context ctx) {
            this.ctx = ctx;
        }

        @Override public void onStdout(byte[] b, int off, int len) { ctx.event(1, "stdout", StreamRepr.eventData(b, off, len)); }
        @Override public void onStderr(byte[] b, int off, int len) { ctx.event(1, "stderr", StreamRepr.eventData(b, off, len)); }

        @Override
        public void onOutputTruncated(String stream, long emitted, long dropped) {
            ObjectNode o = json();
            o.put("stream", stream);
            o.put("bytes_emitted", emitted);
            o.put("bytes_dropped", dropped);
            ctx.event(1, "truncated", o);
        }
    }
}
