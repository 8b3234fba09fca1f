package dev.contree.server;

import dev.contree.api.ApiServer;
import dev.contree.api.ApiServices;
import dev.contree.auth.Tokens;
import dev.contree.files.BlobStore;
import dev.contree.files.FileService;
import dev.contree.images.ImageFilesystem;
import dev.contree.images.ImageService;
import dev.contree.images.LayerGarbageCollector;
import dev.contree.images.AccountStorage;
import dev.contree.images.LayerIndex;
import dev.contree.images.LayerLeases;
import dev.contree.imports.ImportService;
import dev.contree.instances.InstanceService;
import dev.contree.instances.StdinSpool;
import dev.contree.layers.LayerStore;
import dev.contree.layers.LayerStoreConfig;
import dev.contree.network.SandboxNetworks;
import dev.contree.operations.Admission;
import dev.contree.operations.HostCapacity;
import dev.contree.operations.OperationService;
import dev.contree.operations.Scheduler;
import dev.contree.registry.RegistryClient;
import dev.contree.registry.RegistryConfig;
import dev.contree.sandbox.RuntimeConfig;
import dev.contree.sandbox.SandboxRuntime;
import dev.contree.sandbox.SandboxRuntimes;
import dev.contree.store.MetadataStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * One ConTree server: opens the data dir (database, blobs, layer store, runtime state), recovers
 * from a previous crash, wires the services and serves the API. {@link #close} shuts down in reverse.
 */
public final class ContreeServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ContreeServer.class);

    private final Services services;
    private final ApiServer api;
    private final List<AutoCloseable> resources;

    private ContreeServer(Services services, ApiServer api, List<AutoCloseable> resources) {
        this.services = services;
        this.api = api;
        this.resources = resources;
    }

    public static ContreeServer start(ServerConfig config) throws IOException {
        Path data = DataDir.prepare(config.dataDir());
        List<AutoCloseable> opened = new ArrayList<>();
        try {
            opened.add(DataDir.lock(data));
            MetadataStore db = MetadataStores.openForServer(data, config.database());
            opened.add(db);
            // A sparse pool larger than the disk under it would fail writes deep inside btrfs; cap it at 90% of what is free.
            long pool = Math.min(config.layerPoolBytes(), java.nio.file.Files.getFileStore(data).getUsableSpace() / 10 * 9);
            LayerStore layers = LayerStore.open(data.resolve("layers"),
                    LayerStoreConfig.defaults().withImageSize(pool).withMaxMountDepth(config.maxMountDepth()));
            opened.add(layers);
            RuntimeConfig.Kind kind = switch (config.runtime()) {
                case "runc" -> RuntimeConfig.Kind.RUNC;
                case "vm" -> RuntimeConfig.Kind.VM;
                default -> RuntimeConfig.Kind.RUNSC;
            };
            RuntimeConfig runtimeConfig = RuntimeConfig.defaults(kind, data.resolve("runtime")).withPlatform(config.runscPlatform())
                    .withLimits(config.sandbox().memoryBytes(), config.sandbox().pids(), config.sandbox().cpus())
                    .withCompat32(config.sandbox32Bit());
            // Before the runtime's own cleanup: leftovers of a crash go, and the egress policy is in place before any run.
            SandboxNetworks networks = SandboxNetworks.open(config.network(), data.resolve("runtime"), data);
            if (networks != null) {
                opened.add(networks);
                runtimeConfig = runtimeConfig.withNetwork(networks);
            }
            SandboxRuntime runtime = SandboxRuntimes.create(runtimeConfig);
            int stale = runtime.cleanupStale();
            if (stale > 0) LOG.warn("removed {} sandbox(es) left by a previous run", stale);

            Tokens tokens = new Tokens(db.tokens());
            AccountStorage storage = new AccountStorage(db, config.maxAccountBytes());
            FileService files = new FileService(db.files(), new BlobStore(data.resolve("blobs")), config.maxUploadBytes(), storage);
            ImageService images = new ImageService(db.images());
            OperationService operations = new OperationService(db);
            int failed = Scheduler.failLeftovers(operations);
            if (failed > 0) LOG.warn("marked {} operation(s) interrupted by a restart as FAILED", failed);
            Scheduler scheduler = new Scheduler(operations, bounds(config, runtimeConfig.cgroupParent()), tokens::accountsWithTokens,
                    Admission.byHost(new HostCapacity(runtimeConfig.cgroupParent()), config.admission()));
            opened.add(scheduler);
            LayerIndex layerIndex = new LayerIndex(db.layers());
            LayerLeases leases = new LayerLeases(layers);
            LayerGarbageCollector gc = new LayerGarbageCollector(layers, layerIndex, leases, Duration.ofMinutes(10));
            // Queued stdin waits on disk; all of it together may be 4 JSON bodies' worth (1 GiB by default).
            StdinSpool spool = new StdinSpool(data.resolve("spool"), 4 * config.maxJsonBytes());
            ImageFilesystem imageFiles = new ImageFilesystem(layers, leases);
            InstanceService instances = new InstanceService(images, files, operations, scheduler, layers, runtime, layerIndex, leases,
                    networks != null, storage, spool, imageFiles);
            RegistryClient registry = new RegistryClient(RegistryConfig.defaults().withInsecureHosts(config.insecureRegistries()));
            opened.add(registry);
            ImportService imports = new ImportService(files, operations, scheduler, layers, layerIndex, leases, registry,
                    config.maxImportBytes(), storage);
            Services services = new Services(config, tokens, files, images, operations, scheduler, layers, layerIndex, leases, gc,
                    instances, imports);

            ScheduledExecutorService timers = Executors.newSingleThreadScheduledExecutor(Thread.ofVirtual().name("gc").factory());
            timers.scheduleWithFixedDelay(() -> {
                try {
                    gc.collect();
                } catch (Exception e) {
                    LOG.warn("garbage collection failed", e);
                }
            }, 1, 10, TimeUnit.MINUTES);
            opened.add(timers::shutdownNow);

            ApiServer api = new ApiServer(config.api().withInstanceConcurrencyNow(scheduler::effectiveLimit),
                    new ApiServices(tokens, files, images, imageFiles, operations, instances, imports)).start();
            opened.add(api);
            LOG.info("ConTree listening on http://{}:{} (data {}, metadata {}, runtime {}, layer quotas {})", config.host(), api.port(), data,
                    config.database() == null ? "SQLite" : config.database(), runtime.name(),
                    layers.quotasEnforced() ? "enforced" : "NOT enforced");
            return new ContreeServer(services, api, opened);
        } catch (RuntimeException | IOException e) {
            closeAll(opened);
            throw e;
        }
    }

    /**
     * Descriptors the server holds per running sandbox: measured 5 for 2 sleeping runc sandboxes (MemoryAdmissionTest
     * prints it), the pipes to {@code runc run} and what watches its exit, plus the bundle and layer files written while
     * a sandbox starts and ends; the {@code runc run} process's own 11 descriptors are its own, not the server's. Rounded
     * up for runsc's and future I/O models' extra pipes.
     */
    static final int FDS_PER_SANDBOX = 8;
    /** Descriptors for everything else: jars, the database and its journal, the layer store, registry connections. */
    static final int FDS_BASE = 512;

    /**
     * The scheduler's bounds: {@code --concurrency}, lowered (with a clear message) when this process's descriptor
     * limit, after raising it to the hard limit, cannot hold that many sandboxes beside the HTTP connections it admits
     * ({@link ApiServer#connectionLimit}). A pid limit below it is reported only: admission waits on pids as they free.
     */
    static Scheduler.Bounds bounds(ServerConfig config, String cgroupParent) {
        HostCapacity.FileLimit files = HostCapacity.raiseFileLimit();
        if (files != null && files.soft() > files.softBefore()) {
            LOG.info("raised the open-file limit from {} to {} (the hard limit)", files.softBefore(), files.soft());
        }
        long nofile = files != null ? files.soft()
                : java.lang.management.ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.UnixOperatingSystemMXBean u
                ? u.getMaxFileDescriptorCount() : 4096;
        if (nofile < 0) nofile = Long.MAX_VALUE / 2; // RLIM_INFINITY: no descriptor bound
        int connections = ApiServer.connectionLimit();
        // A networked sandbox also holds its uplink's descriptors: counted for every sandbox when networking is on.
        int perSandbox = FDS_PER_SANDBOX + (config.network().available() ? SandboxNetworks.FDS_PER_SANDBOX : 0);
        long byFds = Math.max(1, (nofile - connections - FDS_BASE) / perSandbox);
        int slots = config.instanceConcurrency();
        if (byFds < slots) {
            LOG.warn("--concurrency {} needs about {} file descriptors, but this process may open {} ({} of them kept for HTTP "
                    + "connections): running at most {} executions at once. Raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) "
                    + "to allow more.", slots, (long) slots * perSandbox + FDS_BASE + connections, nofile, connections, byFds);
            slots = (int) byFds;
        }
        Admission.Settings admission = config.admission();
        HostCapacity.Reading host = new HostCapacity(cgroupParent).read();
        if (host.taskLimit() > 0 && host.tasks() >= 0) {
            long byPids = Math.max(0, host.taskLimit() - host.tasks() - admission.taskReserve()) / admission.sandboxTasks();
            if (byPids < slots) {
                LOG.warn("the kernel's pid limit ({} tasks, {} in use) holds about {} sandboxes of ~{} tasks each, fewer than the "
                        + "{} --concurrency allows: executions past it wait for pids to free. Raise kernel.pid_max and "
                        + "kernel.threads-max to allow more.", host.taskLimit(), host.tasks(), byPids, admission.sandboxTasks(), slots);
            }
        }
        int perAccount = config.accountConcurrency();
        if (slots < config.instanceConcurrency()) {
            perAccount = perAccount == config.instanceConcurrency() ? slots : Math.min(perAccount, ServerConfig.defaultAccountConcurrency(slots));
        }
        LOG.info("admission: at most {} executions at once, while memory (reserve {} MiB, ~{} MiB per new sandbox) and pids "
                + "allow; {} imports; {} may wait", slots, admission.memoryReserveBytes() >> 20, admission.sandboxBytes() >> 20,
                Math.min(slots, config.importConcurrency()), config.maxQueued());
        return new Scheduler.Bounds(slots, perAccount, Math.min(slots, config.importConcurrency()), config.maxQueued());
    }

    public Services services() {
        return services;
    }

    public int port() {
        return api.port();
    }

    public ApiServer api() {
        return api;
    }

    private static void closeAll(List<AutoCloseable> resources) {
        for (int i = resources.size() - 1; i >= 0; i--) {
            try {
                resources.get(i).close();
            } catch (Exception e) {
                LOG.warn("error while shutting down {}", resources.get(i), e);
            }
        }
    }

    @Override
    public void close() {
        closeAll(resources);
        LOG.info("ConTree stopped");
    }
}
