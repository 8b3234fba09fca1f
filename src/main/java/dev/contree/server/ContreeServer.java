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
import dev.contree.images.LayerSource;
import dev.contree.objects.BucketGarbageCollector;
import dev.contree.objects.LayerCache;
import dev.contree.objects.ObjectGuard;
import dev.contree.objects.LayerTransfer;
import dev.contree.objects.ObjectKey;
import dev.contree.objects.ObjectStore;
import dev.contree.objects.S3ObjectStore;
import dev.contree.imports.ImportService;
import dev.contree.instances.InstanceService;
import dev.contree.instances.StdinSpool;
import dev.contree.layers.LayerStore;
import dev.contree.layers.LayerStoreConfig;
import dev.contree.network.SandboxNetworks;
import dev.contree.operations.Admission;
import dev.contree.operations.ClusterQueue;
import dev.contree.operations.ClusterSettings;
import dev.contree.operations.OperationKind;
import dev.contree.operations.WorkQueue;
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
    private final MetadataStore store;
    private final ClusterQueue cluster;

    private ContreeServer(Services services, ApiServer api, List<AutoCloseable> resources, MetadataStore store, ClusterQueue cluster) {
        this.services = services;
        this.api = api;
        this.resources = resources;
        this.store = store;
        this.cluster = cluster;
    }

    /** Operations this node claimed from the cluster queue and has not released (0 on a single node). */
    public int clusterHeld() {
        return cluster == null ? 0 : cluster.held();
    }

    /** This node's part in the cluster queue; null for a single node on SQLite. */
    public ClusterQueue cluster() {
        return cluster;
    }

    /** The node's name in the cluster queue's leases; null for a single node on SQLite. */
    public String workerId() {
        return cluster == null ? null : cluster.nodeId();
    }

    /**
     * Stops this node as if its process died, for tests of what the others do then: no heartbeat, no notification
     * session and no database session any more before anything else stops, so nothing it was running is recorded.
     */
    public void crash() {
        if (cluster != null) cluster.abandon();
        store.close();
        closeAll(resources);
    }

    /** Where other nodes reach this one: the configured URL, else the listen address (the host name for a wildcard). */
    static String advertisedUrl(ServerConfig config, int port) {
        if (config.cluster().apiUrl() != null) return config.cluster().apiUrl();
        String host = config.host();
        if (host.equals("0.0.0.0") || host.equals("::") || host.equals("[::]")) {
            try {
                host = java.net.InetAddress.getLocalHost().getCanonicalHostName();
            } catch (IOException e) {
                host = "localhost";
            }
        }
        if (host.contains(":") && !host.startsWith("[")) host = "[" + host + "]";
        return "http://" + host + ":" + port;
    }

    /** The worker id a data dir keeps (made on first use): a restarted worker ends what its previous run held at once. */
    static String workerId(Path data) throws IOException {
        Path file = data.resolve("worker-id");
        if (java.nio.file.Files.exists(file)) return java.nio.file.Files.readString(file).strip();
        String host;
        try {
            host = java.net.InetAddress.getLocalHost().getHostName().replaceAll("[^A-Za-z0-9.-]", "");
        } catch (IOException e) {
            host = "node";
        }
        String id = (host.isEmpty() ? "node" : host.length() > 40 ? host.substring(0, 40) : host) + "-"
                + java.util.UUID.randomUUID().toString().substring(0, 8);
        Path tmp = data.resolve("worker-id.tmp");
        java.nio.file.Files.writeString(tmp, id + "\n");
        java.nio.file.Files.move(tmp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        return id;
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
            SandboxNetworks networks = SandboxNetworks.open(config.network(), data.resolve("runtime"), data, runtimeConfig.cgroupParent());
            if (networks != null) {
                opened.add(networks);
                runtimeConfig = runtimeConfig.withNetwork(networks);
            }
            SandboxRuntime runtime = SandboxRuntimes.create(runtimeConfig);
            int stale = runtime.cleanupStale();
            if (stale > 0) LOG.warn("removed {} sandbox(es) left by a previous run", stale);

            Tokens tokens = new Tokens(db.tokens());
            AccountStorage storage = new AccountStorage(db, config.maxAccountBytes());
            LayerIndex layerIndex = new LayerIndex(db.layers(), config.database() != null); // PostgreSQL: other nodes' records too
            // Cluster mode: layers and uploads shared through the object store, this node's pool a bounded cache of it.
            ObjectStore objects = null;
            LayerSource layerSource = LayerSource.LOCAL;
            BucketGarbageCollector bucketGc = null;
            if (config.objectStore() != null) {
                S3ObjectStore s3 = S3ObjectStore.open(config.objectStore().url());
                opened.add(s3);
                s3.exists(ObjectKey.file("0".repeat(64))); // fails now, with the store's words, if the bucket or credentials are wrong
                // Every write goes through the guard: reusing an object the bucket's garbage collection marked revives it first.
                ObjectGuard guard = new ObjectGuard(s3, db.objects());
                LayerCache cache = new LayerCache(layers, layerIndex, new LayerTransfer(guard, layers, data.resolve("packs")),
                        config.objectStore().cacheBytes(), guard);
                opened.add(cache::close);
                objects = guard;
                layerSource = cache;
                bucketGc = new BucketGarbageCollector(s3, db.objects(), config.objectStore().gcGrace());
            }
            LayerLeases leases = new LayerLeases(layers, layerSource);
            if (layerSource instanceof LayerCache cache) cache.bind(leases);
            FileService files = new FileService(db.files(), new BlobStore(data.resolve("blobs")), config.maxUploadBytes(), storage, objects);
            ImageService images = new ImageService(db.images());
            OperationService operations = new OperationService(db);
            // On a shared database the unfinished operations are other nodes' too: only leases say which died (ClusterQueue).
            boolean clustered = db.queue().isPresent();
            if (!clustered) {
                int failed = Scheduler.failLeftovers(operations);
                if (failed > 0) LOG.warn("marked {} operation(s) interrupted by a restart as FAILED", failed);
            }
            // On a worker the per-account cap applies to what it claims (ClusterQueue asks before each claim).
            Scheduler scheduler = new Scheduler(operations, bounds(config, runtimeConfig.cgroupParent()), tokens::accountsWithTokens,
                    Admission.byHost(new HostCapacity(runtimeConfig.cgroupParent()), config.admission()), !clustered);
            opened.add(scheduler);
            ClusterQueue cluster = null;
            WorkQueue queue = scheduler;
            if (clustered) {
                ClusterSettings settings = config.cluster();
                if (settings.workerId() == null) settings = settings.withWorkerId(workerId(data));
                // Queued stdin waits in the database, as much of it as the spool below holds on one node.
                cluster = new ClusterQueue(operations, db.queue().get(), settings, scheduler, config.maxQueued(),
                        4 * config.maxJsonBytes(), tokens::accountsWithTokens);
                opened.add(cluster);
                queue = cluster;
            }
            LayerGarbageCollector gc = new LayerGarbageCollector(layers, layerIndex, leases, Duration.ofMinutes(10), layerIndex.shared());
            // Queued stdin waits on disk; all of it together may be 4 JSON bodies' worth (1 GiB by default).
            StdinSpool spool = new StdinSpool(data.resolve("spool"), 4 * config.maxJsonBytes());
            ImageFilesystem imageFiles = new ImageFilesystem(layers, leases);
            InstanceService instances = new InstanceService(images, files, operations, queue, layers, runtime, layerIndex, leases,
                    networks != null, storage, spool, imageFiles);
            RegistryClient registry = new RegistryClient(RegistryConfig.defaults().withInsecureHosts(config.insecureRegistries()));
            opened.add(registry);
            ImportService imports = new ImportService(files, operations, queue, layers, layerIndex, leases, registry,
                    config.maxImportBytes(), storage);
            Services services = new Services(config, tokens, files, images, operations, scheduler, layers, layerIndex, leases, gc,
                    instances, imports, bucketGc);

            if (cluster != null) {
                cluster.register(OperationKind.INSTANCE, instances);
                cluster.register(OperationKind.IMAGE_IMPORT, imports);
                cluster.start();
            }

            ScheduledExecutorService timers = Executors.newSingleThreadScheduledExecutor(Thread.ofVirtual().name("gc").factory());
            timers.scheduleWithFixedDelay(() -> {
                try {
                    gc.collect();
                } catch (Exception e) {
                    LOG.warn("garbage collection failed", e);
                }
            }, 1, 10, TimeUnit.MINUTES);
            if (bucketGc != null && !config.objectStore().gcInterval().isZero()) {
                BucketGarbageCollector collector = bucketGc;
                long every = config.objectStore().gcInterval().toMillis();
                // Started at a random point of the first interval, so nodes started together do not all try at once.
                long first = java.util.concurrent.ThreadLocalRandom.current().nextLong(Math.max(1, every));
                ScheduledExecutorService bucketTimer = Executors.newSingleThreadScheduledExecutor(Thread.ofVirtual().name("object-gc").factory());
                opened.add(bucketTimer::shutdownNow);
                bucketTimer.scheduleWithFixedDelay(() -> {
                    try {
                        collector.collect();
                    } catch (Exception e) {
                        LOG.warn("object store garbage collection failed (nothing was deleted that a record still names; the next pass"
                                + " carries on)", e);
                    }
                }, first, every, TimeUnit.MILLISECONDS);
            }
            opened.add(timers::shutdownNow);

            ApiServer api = new ApiServer(config.api().withInstanceConcurrencyNow(scheduler::effectiveLimit),
                    new ApiServices(tokens, files, images, imageFiles, operations, instances, imports)).start();
            opened.add(api);
            if (cluster != null) cluster.advertise(advertisedUrl(config, api.port()));
            LOG.info("ConTree listening on http://{}:{} (data {}, metadata {}, objects {}, role {}, runtime {}, layer quotas {})", config.host(),
                    api.port(), data, config.database() == null ? "SQLite" : config.database(),
                    objects == null ? "this node only" : objects.describe(), config.cluster().role().name().toLowerCase(), runtime.name(),
                    layers.quotasEnforced() ? "enforced" : "NOT enforced");
            return new ContreeServer(services, api, opened, db, cluster);
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
