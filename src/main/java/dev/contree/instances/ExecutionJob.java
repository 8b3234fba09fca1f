package dev.contree.instances;

import dev.contree.files.FileRecord;
import dev.contree.images.AccountStorage;
import dev.contree.images.Image;
import dev.contree.images.ImageConfig;
import dev.contree.images.ImageService;
import dev.contree.images.LayerLeases;
import dev.contree.inspect.MergedView;
import dev.contree.layers.TreeTooDeepException;
import dev.contree.layers.WritableLayer;
import dev.contree.operations.EventPayload;
import dev.contree.operations.EventPayload.Shutdown;
import dev.contree.operations.Job;
import dev.contree.operations.JobOutcome;
import dev.contree.sandbox.LiveSandbox;
import dev.contree.sandbox.ProcessExit;
import dev.contree.sandbox.ProcessSpec;
import dev.contree.sandbox.ResourceUsage;
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
 * sandbox, then settle: commit the layer as a child image, or discard it.
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
    private final StdinSpool.Spooled stdin; // null = no stdin
    /** Leases on the layers the run uses and makes, held until its image is recorded ({@link #finished}). */
    private final List<LayerLeases.Lease> held = java.util.Collections.synchronizedList(new ArrayList<>());

    ExecutionJob(Execution engine, InstanceSpec spec, StdinSpool.Spooled stdin, Image image, Map<String, FileRecord> files) {
        this.engine = engine;
        this.spec = spec;
        this.stdin = stdin;
        this.image = image;
        this.files = files;
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
    public JobOutcome run(Context ctx) throws Exception {
        // Registered before EXECUTING, so a subprocess call that sees the status finds the instance (and waits for init).
        LiveInstance live = new LiveInstance(image.accountId());
        engine.live().add(ctx.operation().uuid(), live);
        try {
            return run(ctx, live);
        } finally {
            live.end();
            engine.live().remove(ctx.operation().uuid());
        }
    }

    private JobOutcome run(Context ctx, LiveInstance live) throws Exception {
        ctx.executing();
        ctx.event(0, new EventPayload.Init(Instant.now(), SandboxRuntime.INIT_PATH, false, 1));

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
                // Before the image names it: every node must be able to fetch the merged layer.
                if (!chain.contains(id)) engine.leases().source().publish(id);
            }
            engine.leases().source().retain(compacted); // none of them on its way out of the bucket
            engine.layerIndex().replaceChain(image.uuid(), compacted);
            chain = compacted;
        }
        return execute(ctx, chain, live);
    }

    /** Who runs the command, where, with which environment: decided from the request and the image. */
    private record Plan(ImageUser.Ids user, String cwd, Map<String, String> env) {}

    private JobOutcome execute(Context ctx, List<String> chain, LiveInstance live) throws Exception {
        // A kept result may not take the account past its storage bound: the writable layer's cap is the smaller one.
        long remaining = spec.disposable() ? AccountStorage.UNLIMITED : engine.storage().remaining(image.accountId());
        if (remaining <= 0) return new JobOutcome.Failed(engine.storage().overMessage(image.accountId()));
        long cap = Math.min(spec.maxLayerBytes(), remaining);
        try (SandboxLayer layer = new SandboxLayer(engine.store(), engine.store().prepare(chain, cap))) {
            held.add(engine.leases().reserve(layer.layer().id())); // the committed layer is protected from the moment it appears
            Plan plan = prepare(chain);
            live.planned(new LiveInstance.Inherited(plan.user().uid(), plan.user().gid(), plan.cwd(), plan.env(),
                    spec.keepStdinOpen()));
            inject(layer.layer());
            SandboxResult r = run(ctx, layer.layer(), plan, live);
            if (ctx.cancel().isCancelled()) {
                ctx.event(0, shutdown(Shutdown.Reason.CANCELLED));
                layer.discard();
                // A client's cancel is already recorded as CANCELLED; anything else (shutdown) is a failure.
                return new JobOutcome.Failed("execution interrupted: " + ctx.cancel().message());
            }
            if (r.infraError() != null) {
                ctx.event(0, shutdown(Shutdown.Reason.ERROR));
                layer.discard();
                return new JobOutcome.Failed("sandbox failed: " + r.infraError());
            }
            ctx.event(1, new EventPayload.Exit(r.pid(), r.exitCode(), r.signal(), r.timedOut(),
                    r.usage() == null ? ResourceUsage.UNKNOWN : r.usage()));
            ctx.event(0, shutdown(Shutdown.Reason.JOB_COMPLETE));
            return settle(ctx, layer, chain, cap, r);
        }
    }

    /** The identity and working directory, read from the image's merged files, and the environment. */
    private Plan prepare(List<String> chain) throws IOException {
        List<Path> lowerDirs = new ArrayList<>();
        for (String id : chain) lowerDirs.add(engine.store().diffDir(id));
        try (MergedView view = new MergedView(lowerDirs)) {
            // The request's identity, else the image's USER, else root.
            ImageUser.Ids user = spec.userGiven() ? new ImageUser.Ids(spec.uid(), spec.gid())
                    : ImageUser.resolve(image.config().user(), view).orElse(new ImageUser.Ids(spec.uid(), spec.gid()));
            return new Plan(user, workingDir(view), effectiveEnv(user.uid()));
        }
    }

    /** Writes the request's files into the writable layer, then secures the runtime's mount points. */
    private void inject(WritableLayer layer) throws IOException {
        FileInjector injector = new FileInjector(layer.rootfs());
        for (var e : spec.files().entrySet()) {
            try (InputStream in = engine.files().open(files.get(e.getValue().fileUuid()))) {
                injector.inject(e.getKey(), in, e.getValue());
            }
        }
        secureMountPoints(layer);
    }

    /** Starts the command and waits for it; a runtime that throws leaves a shutdown event behind. */
    private SandboxResult run(Context ctx, WritableLayer layer, Plan plan, LiveInstance live) throws IOException {
        SandboxSpec sandbox = SandboxSpec.builder(ctx.operation().uuid(), layer.rootfs(), spec.argv())
                .lookupPath(!spec.shell())
                .env(plan.env())
                .cwd(plan.cwd())
                .user(plan.user().uid(), plan.user().gid())
                .hostname(spec.hostname())
                .stdin(spec.stdin())
                .stdinFile(stdin == null ? null : stdin.file())
                .timeout(Duration.ofSeconds(spec.timeoutSeconds()))
                .network(spec.networking())
                .outputCap(Math.max(1, spec.truncateOutputAt()))
                .keepStdinOpen(spec.keepStdinOpen())
                .build();
        ctx.event(1, spawnEvent(plan));
        try {
            return engine.runtime().run(sandbox, new EventListener(ctx, live, networkMode()), ctx.cancel());
        } catch (IOException | RuntimeException e) {
            ctx.event(0, shutdown(Shutdown.Reason.ERROR));
            throw e;
        } finally {
            live.end();
            // Every started process gets its exit event: one the sandbox took down unreported died with it.
            for (int spid : live.unexited()) ctx.event(spid, new EventPayload.Exit(-1, -1, 9, false, ResourceUsage.UNKNOWN));
        }
    }

    /**
     * Keeps what the run wrote: nothing for a disposable run, else the committed layer as a child image (or the input
     * image when nothing changed), within the account's storage bound.
     */
    private JobOutcome settle(Context ctx, SandboxLayer layer, List<String> chain, long cap, SandboxResult r)
            throws IOException {
        if (spec.disposable()) {
            layer.discard();
            return succeeded(new JobOutcome.Discarded(), r, 0);
        }
        Optional<String> committed;
        try {
            committed = layer.commit(scratch());
        } catch (TreeTooDeepException e) {
            return new JobOutcome.Failed("the result cannot be kept: " + e.getMessage() + "; nothing was kept");
        }
        ImageConfig config = childConfig();
        if (committed.isEmpty()) {
            // Files unchanged but the preserved environment changed: a new image over the same layers.
            if (spec.preserveEnv() && !config.equals(image.config())) {
                try {
                    engine.leases().source().retain(chain); // the parent's layers: kept in the bucket for the new image
                } catch (IOException e) {
                    return new JobOutcome.Failed("the result could not be stored in the object store: " + e.getMessage() + "; nothing was kept");
                }
                return succeeded(new JobOutcome.Created(new ImageService.NewImage(image.accountId(), ctx.operation().uuid(),
                        image.uuid(), chain, config, image.size(), null)), r, 0);
            }
            return succeeded(new JobOutcome.Unchanged(image.uuid()), r, 0); // unchanged: the result is the input image
        }
        String id = committed.get();
        long layerBytes = engine.store().sizeOf(id);
        AccountStorage storage = engine.storage();
        // Written with the image unless the storage check below must read it first.
        if (storage.bounded()) engine.layerIndex().record(id, null, layerBytes);
        else engine.layerIndex().recordLater(id, null, layerBytes);
        if (storage.bounded() && storage.usedWith(image.accountId(), List.of(id)) > storage.cap()) {
            // Concurrent runs of one account can each fit alone and not together: the last to commit loses.
            engine.layerIndex().forget(id);
            engine.store().remove(id);
            return new JobOutcome.Failed("the result (" + layerBytes + " bytes) does not fit in the account's"
                    + " storage limit of " + storage.cap() + " bytes (--max-account-bytes); nothing was kept");
        }
        try {
            engine.leases().source().publish(id); // uploaded before the image that uses it is recorded
            engine.leases().source().retain(withParent(id, chain)); // and no layer of it on its way out of the bucket
        } catch (IOException e) {
            engine.layerIndex().forget(id);
            engine.store().remove(id);
            return new JobOutcome.Failed("the result could not be stored in the object store: " + e.getMessage() + "; nothing was kept");
        }
        if (cap > 0 && layerBytes >= cap - (1 << 20) && engine.store().quotasEnforced()) {
            ctx.event(0, new EventPayload.SizeCap(cap, layerBytes));
        }
        List<String> layers = new ArrayList<>(List.of(id));
        layers.addAll(chain);
        return succeeded(new JobOutcome.Created(new ImageService.NewImage(image.accountId(), ctx.operation().uuid(), image.uuid(),
                layers, config, image.size() + layerBytes, null)), r, layerBytes);
    }

    private static List<String> withParent(String top, List<String> chain) {
        List<String> all = new ArrayList<>(List.of(top));
        all.addAll(chain);
        return all;
    }

    private static JobOutcome succeeded(JobOutcome.ResultImage resultImage, SandboxResult r, long layerBytes) {
        ExecutionResult result = new ExecutionResult(r, layerBytes);
        return new JobOutcome.Succeeded(resultImage, layerBytes, result.consumed(), result);
    }

    private static Shutdown shutdown(Shutdown.Reason reason) {
        return new Shutdown(Instant.now(), reason);
    }

    /** {@link #SCRATCH}, and what the runtime mounts only for a networked run (the server's resolv.conf at RESOLV_CONF). */
    private List<String> scratch() {
        if (!spec.networking()) return SCRATCH;
        List<String> out = new ArrayList<>(SCRATCH);
        for (SandboxRuntime.MountPoint mp : engine.runtime().rootfsMountPoints(true))
            if (!out.contains(mp.path())) out.add(mp.path());
        return out;
    }

    /** After injection, before the runtime: no path the runtime mounts on may go through a link the image made. */
    private void secureMountPoints(WritableLayer layer) throws IOException {
        List<String> dirs = new ArrayList<>(), files = new ArrayList<>();
        for (SandboxRuntime.MountPoint mp : engine.runtime().rootfsMountPoints(spec.networking())) (mp.directory() ? dirs : files).add(mp.path());
        engine.store().secureMountPoints(layer, dirs, files);
    }

    /** The image's env, then the request's (null unsets), with a default PATH and HOME. */
    Map<String, String> effectiveEnv(int uid) {
        Map<String, String> env = requestedOverImage();
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

    private ImageConfig childConfig() {
        if (!spec.preserveEnv()) return image.config();
        return new ImageConfig(requestedOverImage(), image.config().workingDir(), image.config().user());
    }

    /** The image's env with the request's variables set over it (a null value unsets one), in the image's order. */
    private Map<String, String> requestedOverImage() {
        Map<String, String> env = new LinkedHashMap<>(image.config().env());
        spec.env().forEach((k, v) -> {
            if (v == null) env.remove(k);
            else env.put(k, v);
        });
        return env;
    }

    private EventPayload.Spawn spawnEvent(Plan plan) {
        List<String> argv = spec.argv();
        return new EventPayload.Spawn(1, argv.getFirst(), List.copyOf(argv.subList(1, argv.size())), spec.shell(), plan.cwd(),
                plan.user().uid(), plan.user().gid(), spec.timeoutSeconds(), spec.truncateOutputAt(), redacted(plan.env()),
                networkMode());
    }

    /** How the sandbox's processes reach the network: "none", or the server's mode when the run asked for one. */
    private String networkMode() {
        return spec.networking() ? engine.runtime().networkMode() : "none";
    }

    /** The environment as a spawn event shows it: secret-looking values replaced. */
    private static Map<String, String> redacted(Map<String, String> env) {
        Map<String, String> shown = new LinkedHashMap<>();
        env.forEach((k, v) -> shown.put(k, secret(k) ? "<redacted>" : v));
        return shown;
    }

    private static boolean secret(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        return SECRET_HINTS.stream().anyMatch(n::endsWith);
    }

    /** Streams output, truncation and every subprocess's life into the operation's event log as it happens. */
    private static final class EventListener implements SandboxListener {
        private final Context ctx;
        private final LiveInstance live;
        private final String network; // subprocesses share the sandbox's network
        /** Each started subprocess's output cap, from its start report: its exit may arrive before its spawn call returns. */
        private final Map<Integer, Long> caps = new java.util.concurrent.ConcurrentHashMap<>();

        EventListener(Context ctx, LiveInstance live, String network) {
            this.ctx = ctx;
            this.live = live;
            this.network = network;
        }

        @Override public void onLive(LiveSandbox sandbox) { live.live(sandbox); }

        @Override
        public void onSubprocessStart(int spid, int pid, ProcessSpec p) {
            List<String> argv = p.argv();
            int timeout = p.timeout() == null ? 0 : (int) p.timeout().toSeconds();
            caps.put(spid, p.outputCap());
            ctx.event(spid, new EventPayload.Spawn(pid, argv.getFirst(), List.copyOf(argv.subList(1, argv.size())),
                    !p.lookupPath(), p.cwd(), p.uid(), p.gid(), timeout, p.outputCap(), redacted(p.env()), network));
        }

        @Override
        public void onSubprocessOutput(int spid, boolean stderr, byte[] b, int off, int len) {
            ctx.event(spid, new EventPayload.Output(stderr ? EventPayload.Stream.STDERR : EventPayload.Stream.STDOUT,
                    java.util.Arrays.copyOfRange(b, off, off + len)));
        }

        @Override
        public void onSubprocessExit(ProcessExit x) {
            if (x.pid() <= 0 && x.error() != null) // refused before it existed: say why where its output goes
                ctx.event(x.spid(), new EventPayload.Output(EventPayload.Stream.STDERR,
                        ("contree: " + x.error() + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8)));
            Long started = caps.remove(x.spid());
            long cap = started != null ? started : InstanceSpec.DEFAULT_TRUNCATE; // refused before it started: no output
            if (x.stdoutTruncated()) ctx.event(x.spid(), truncated(EventPayload.Stream.STDOUT, cap, x.stdoutTotal()));
            if (x.stderrTruncated()) ctx.event(x.spid(), truncated(EventPayload.Stream.STDERR, cap, x.stderrTotal()));
            ctx.event(x.spid(), new EventPayload.Exit(x.pid(), x.exitCode(), x.signal(), x.timedOut(),
                    x.usage() == null ? ResourceUsage.UNKNOWN : x.usage()));
            live.exited(x.spid());
        }

        @Override public void onStdout(byte[] b, int off, int len) { output(EventPayload.Stream.STDOUT, b, off, len); }
        @Override public void onStderr(byte[] b, int off, int len) { output(EventPayload.Stream.STDERR, b, off, len); }

        private void output(EventPayload.Stream stream, byte[] b, int off, int len) {
            // The runtime reuses its buffer: the event keeps a copy.
            ctx.event(1, new EventPayload.Output(stream, java.util.Arrays.copyOfRange(b, off, off + len)));
        }

        /** A truncated stream kept exactly its cap. */
        private static EventPayload.Truncated truncated(EventPayload.Stream stream, long cap, long total) {
            return new EventPayload.Truncated(stream, Math.min(cap, total), Math.max(0, total - cap));
        }

        @Override
        public void onOutputTruncated(String stream, long emitted, long dropped) {
            EventPayload.Stream s = "stderr".equals(stream) ? EventPayload.Stream.STDERR : EventPayload.Stream.STDOUT;
            ctx.event(1, new EventPayload.Truncated(s, emitted, dropped));
        }
    }
}
