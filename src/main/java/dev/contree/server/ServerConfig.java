package dev.contree.server;

import dev.contree.api.ApiConfig;
import dev.contree.layers.LayerStoreConfig;
import dev.contree.network.NetworkSettings;
import dev.contree.objects.ObjectStoreSettings;
import dev.contree.operations.Admission;
import dev.contree.operations.ClusterSettings;
import dev.contree.operations.HostCapacity;
import dev.contree.store.postgres.PostgresUrl;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import java.util.function.Consumer;
import java.util.stream.Collectors;

/**
 * Everything an operator can set. Defaults suit one machine; see docs/configuration.md.
 *
 * @param host                  address to bind (loopback by default)
 * @param port                  TCP port (0 picks a free one, for tests)
 * @param dataDir               database, blobs, layers and runtime state live here
 * @param runtime               sandbox runtime: {@code runsc}, {@code runc} or {@code vm} (a QEMU microVM per execution)
 * @param runscPlatform         gVisor platform: {@code ptrace} (works everywhere), {@code kvm} or {@code systrap}
 * @param maxUploadBytes        largest file accepted by {@code POST /v1/files}
 * @param maxJsonBytes          largest JSON request body
 * @param instanceMaxTimeout    longest execution timeout a client may ask for, seconds
 * @param instanceConcurrency   upper bound of executions and imports running at once (the host's memory and pids
 *                              admit fewer when they must, see {@link Admission}); the rest queue as PENDING
 * @param importMaxTimeout      longest import timeout, seconds
 * @param sandbox               cgroup limits every sandbox gets
 * @param network               whether and how executions asking for {@code networking.enabled} get a network: off
 *                              (the default: refused), built in with an egress policy, or the deprecated shared namespace
 * @param layerPoolBytes        size of the sparse btrfs image holding layers (when the data dir is not on btrfs)
 * @param maxMountDepth         image chains deeper than this are compacted before they run (overlay lower dirs)
 * @param insecureRegistries    registry hosts ({@code host} or {@code host:port}) that may be pulled over plain HTTP
 *                              besides loopback; default from {@code CONTREE_INSECURE_REGISTRIES} (comma separated)
 * @param maxImportBytes        most bytes one import may unpack (file data plus 512 per entry), checked while unpacking
 * @param maxAccountBytes       most bytes one account may store (its images' layers and its files);
 *                              {@link Long#MAX_VALUE} = unlimited
 * @param accountConcurrency    most slots one account may hold; below {@code instanceConcurrency} so another
 *                              account's work starts while one account keeps every slot it may have busy
 * @param maxQueued             most operations waiting (PENDING) at once; past it a spawn or import answers 429
 * @param admissionReserveBytes memory admission keeps free for the server and kernel; -1 = {@link Admission.Settings#defaultReserve}
 * @param sandboxCostBytes      what one sandbox is assumed to cost the host until measured; 0 = the runtime's measured default
 * @param database              the PostgreSQL database holding the metadata; null = SQLite in the data dir ({@code contree.db})
 * @param cluster               the node's role and lease in a cluster (roles other than {@code all} need {@code database})
 * @param objectStore           where layers and uploaded files are shared with other nodes, and this node's layer cache
 *                              bound; null = this node's disk only (the single-node default)
 */
public record ServerConfig(String host, int port, Path dataDir, String runtime, String runscPlatform,
                           long maxUploadBytes, long maxJsonBytes, int instanceMaxTimeout, int instanceConcurrency,
                           int importMaxTimeout, SandboxLimits sandbox, NetworkSettings network, long layerPoolBytes,
                           int maxMountDepth, Set<String> insecureRegistries, long maxImportBytes, long maxAccountBytes,
                           int accountConcurrency, int maxQueued, long admissionReserveBytes, long sandboxCostBytes,
                           boolean sandbox32Bit, PostgresUrl database, ClusterSettings cluster, ObjectStoreSettings objectStore) {
    public static final long DEFAULT_MAX_IMPORT_BYTES = 16L << 30;
    /**
     * The default upper bound of executions at once: the density this server is built and benchmarked for on one
     * node (a sleeping runc sandbox costs the server ~5 descriptors and the host ~6 MiB). Memory and pids admit fewer
     * when the host cannot hold that many, and start-up lowers it when the descriptor limit cannot.
     */
    public static final int DEFAULT_CONCURRENCY = 1000;
    public static final int DEFAULT_MAX_QUEUED = 10_000;

    /** Memory (bytes), process count and CPUs of one sandbox's cgroup. */
    public record SandboxLimits(long memoryBytes, long pids, double cpus) {
        public static final SandboxLimits DEFAULT = new SandboxLimits(1L << 30, 512, 1.0);

        public SandboxLimits {
            if (memoryBytes < (16L << 20)) throw new IllegalArgumentException("sandbox memory must be at least 16 MiB");
            if (pids < 8) throw new IllegalArgumentException("sandbox pids must be at least 8");
            if (!(cpus >= 0.01 && cpus <= 1024)) throw new IllegalArgumentException("sandbox cpus must be between 0.01 and 1024");
        }
    }

    public ServerConfig {
        insecureRegistries = insecureRegistries == null ? Set.of() : Set.copyOf(insecureRegistries);
        if (sandbox == null) sandbox = SandboxLimits.DEFAULT;
        if (cluster == null) cluster = ClusterSettings.SINGLE;
        if (cluster.role() != ClusterSettings.Role.ALL && database == null)
            throw new IllegalArgumentException("--role " + cluster.role().name().toLowerCase() + " needs a PostgreSQL database"
                    + " (--database postgresql://…): nodes share their queue there; with SQLite a server is one node, role all");
        if (network == null) network = NetworkSettings.OFF;
        if (instanceConcurrency < 1) throw new IllegalArgumentException("concurrency must be at least 1");
        if (instanceMaxTimeout < 1) throw new IllegalArgumentException("max timeout must be at least 1 s");
        if (maxMountDepth < 2 || maxMountDepth > 32) throw new IllegalArgumentException("max mount depth must be between 2 and 32");
        if (maxImportBytes < (1L << 20)) throw new IllegalArgumentException("max import bytes must be at least 1 MiB");
        if (maxAccountBytes < (1L << 20)) throw new IllegalArgumentException("max account bytes must be at least 1 MiB");
        if (accountConcurrency <= 0) accountConcurrency = defaultAccountConcurrency(instanceConcurrency);
        if (accountConcurrency > instanceConcurrency) throw new IllegalArgumentException("account concurrency must not exceed concurrency");
        if (maxQueued < 1) throw new IllegalArgumentException("max queued must be at least 1");
        if (admissionReserveBytes < -1) throw new IllegalArgumentException("admission memory reserve must not be negative");
        if (sandboxCostBytes != 0 && sandboxCostBytes < (1L << 20)) throw new IllegalArgumentException("sandbox memory estimate must be at least 1 MiB");
    }

    /** What memory and pids admission charges and keeps free, for this runtime on this host. */
    public Admission.Settings admission() {
        long reserve = admissionReserveBytes >= 0 ? admissionReserveBytes : Admission.Settings.defaultReserve(HostCapacity.memTotalBytes());
        Admission.Settings d = Admission.Settings.defaults(runtime.equals("runsc"), reserve);
        // A microVM: QEMU (with TCG's translation cache) and virtiofsd, plus the guest RAM its kernel touches at boot.
        if (runtime.equals("vm")) d = new Admission.Settings(reserve, 192L << 20, 48, d.taskReserve());
        return sandboxCostBytes > 0 ? new Admission.Settings(reserve, sandboxCostBytes, d.sandboxTasks(), d.taskReserve()) : d;
    }

    /**
     * Imports at once: 2 × CPUs (at least 2, at most the concurrency). They unpack on the server's own CPUs and disk,
     * so the host's memory is not what bounds them.
     */
    public int importConcurrency() {
        return Math.min(instanceConcurrency, Math.max(2, Runtime.getRuntime().availableProcessors() * 2));
    }

    /**
     * A quarter of the slots (at least one) stays out of reach of any single account: slots are not preempted, so
     * without a reserve one account's long runs would keep everyone else PENDING until they end.
     */
    public static int defaultAccountConcurrency(int concurrency) {
        return Math.max(1, concurrency - Math.max(1, concurrency / 4));
    }

    public static ServerConfig defaults(Path dataDir) {
        return new ServerConfig("127.0.0.1", 8080, dataDir, "runsc", "ptrace",
                8L << 30, 256L << 20, 3600, DEFAULT_CONCURRENCY, 3600,
                SandboxLimits.DEFAULT, NetworkSettings.OFF, 256L << 30, LayerStoreConfig.DEFAULT_MAX_MOUNT_DEPTH, insecureRegistriesFromEnv(),
                DEFAULT_MAX_IMPORT_BYTES, Long.MAX_VALUE, 0, DEFAULT_MAX_QUEUED, -1, 0, false, null, ClusterSettings.SINGLE, null);
    }

    /** What the HTTP layer needs of this configuration. */
    public ApiConfig api() {
        return new ApiConfig(host, port, dataDir, maxJsonBytes, new ApiConfig.Limits(instanceMaxTimeout, instanceConcurrency,
                accountConcurrency, importMaxTimeout, maxUploadBytes, sandbox.memoryBytes(), sandbox.pids(), sandbox.cpus(),
                maxImportBytes, maxAccountBytes));
    }

    public ServerConfig withListen(String host, int port) {
        return with(b -> { b.host = host; b.port = port; });
    }

    public ServerConfig withRuntime(String runtime, String runscPlatform) {
        return with(b -> { b.runtime = runtime; b.runscPlatform = runscPlatform; });
    }

    public ServerConfig withLimits(long maxUploadBytes, long maxJsonBytes, int instanceConcurrency) {
        return with(b -> { b.maxUploadBytes = maxUploadBytes; b.maxJsonBytes = maxJsonBytes; b.instanceConcurrency = instanceConcurrency;
            b.accountConcurrency = 0; });
    }

    /**
     * How many executions run at once, and the longest timeout a client may ask for (seconds). The per-account share
     * goes back to its default for the new concurrency.
     */
    public ServerConfig withExecutions(int concurrency, int maxTimeoutSeconds) {
        return with(b -> { b.instanceConcurrency = concurrency; b.instanceMaxTimeout = maxTimeoutSeconds; b.accountConcurrency = 0; });
    }

    /** Most slots one account may hold ({@code 0}: the default share, see {@link #defaultAccountConcurrency}). */
    public ServerConfig withAccountConcurrency(int n) {
        return with(b -> b.accountConcurrency = n);
    }

    /** Most bytes one import may unpack, and one account may store ({@link Long#MAX_VALUE}: unlimited). */
    public ServerConfig withStorageLimits(long maxImportBytes, long maxAccountBytes) {
        return with(b -> { b.maxImportBytes = maxImportBytes; b.maxAccountBytes = maxAccountBytes; });
    }

    /** Most operations waiting at once; past it spawns and imports answer 429. */
    public ServerConfig withMaxQueued(int n) {
        return with(b -> b.maxQueued = n);
    }

    /**
     * Memory admission: what it keeps free ({@code -1}: 5% of RAM, at least 512 MiB) and what it assumes one sandbox
     * costs until measured ({@code 0}: the runtime's default).
     */
    public ServerConfig withAdmission(long reserveBytes, long sandboxCostBytes) {
        return with(b -> { b.admissionReserveBytes = reserveBytes; b.sandboxCostBytes = sandboxCostBytes; });
    }

    /** runc: whether sandboxes may make 32-bit (i386) system calls; see {@code RuntimeConfig#compat32}. */
    public ServerConfig withSandbox32Bit(boolean on) {
        return with(b -> b.sandbox32Bit = on);
    }

    public ServerConfig withSandboxLimits(SandboxLimits limits) {
        return with(b -> b.sandbox = limits);
    }

    /** Size of the sparse btrfs image created for the layer pool (tests use a small one they can hash). */
    public ServerConfig withLayerPoolBytes(long bytes) {
        return with(b -> b.layerPoolBytes = bytes);
    }

    public ServerConfig withMaxMountDepth(int depth) {
        return with(b -> b.maxMountDepth = depth);
    }

    /** Metadata in this PostgreSQL database instead of SQLite in the data dir (null: SQLite). */
    public ServerConfig withDatabase(PostgresUrl database) {
        return with(b -> b.database = database);
    }

    /** The node's role and lease timeout in a cluster. */
    public ServerConfig withCluster(ClusterSettings cluster) {
        return with(b -> b.cluster = cluster);
    }

    /** Layers and files shared through this object store (null: this node's disk only). */
    public ServerConfig withObjectStore(ObjectStoreSettings settings) {
        return with(b -> b.objectStore = settings);
    }

    public ServerConfig withNetwork(NetworkSettings settings) {
        return with(b -> b.network = settings);
    }

    /** The deprecated shared namespace ({@code --network-namespace}); null: networking off. */
    public ServerConfig withNetwork(Path sharedNamespace) {
        return withNetwork(sharedNamespace == null ? NetworkSettings.OFF : NetworkSettings.sharedNamespace(sharedNamespace));
    }

    public ServerConfig withInsecureRegistries(Set<String> hosts) {
        return with(b -> b.insecureRegistries = hosts);
    }

    private ServerConfig with(Consumer<Fields> change) {
        Fields f = new Fields(this);
        change.accept(f);
        return f.build();
    }

    /** The record's fields, mutable, so each {@code with…} names only what it changes. */
    private static final class Fields {
        String host, runtime, runscPlatform;
        int port, instanceMaxTimeout, instanceConcurrency, importMaxTimeout, maxMountDepth, accountConcurrency, maxQueued;
        Path dataDir;
        NetworkSettings network;
        long maxUploadBytes, maxJsonBytes, layerPoolBytes, maxImportBytes, maxAccountBytes, admissionReserveBytes, sandboxCostBytes;
        SandboxLimits sandbox;
        Set<String> insecureRegistries;
        boolean sandbox32Bit;
        PostgresUrl database;
        ClusterSettings cluster;
        ObjectStoreSettings objectStore;

        Fields(ServerConfig c) {
            host = c.host; port = c.port; dataDir = c.dataDir; runtime = c.runtime; runscPlatform = c.runscPlatform;
            maxUploadBytes = c.maxUploadBytes; maxJsonBytes = c.maxJsonBytes; instanceMaxTimeout = c.instanceMaxTimeout;
            instanceConcurrency = c.instanceConcurrency; importMaxTimeout = c.importMaxTimeout; sandbox = c.sandbox;
            network = c.network; layerPoolBytes = c.layerPoolBytes; maxMountDepth = c.maxMountDepth;
            insecureRegistries = c.insecureRegistries; maxImportBytes = c.maxImportBytes; maxAccountBytes = c.maxAccountBytes;
            accountConcurrency = c.accountConcurrency; maxQueued = c.maxQueued; admissionReserveBytes = c.admissionReserveBytes;
            sandboxCostBytes = c.sandboxCostBytes; sandbox32Bit = c.sandbox32Bit; database = c.database;
            cluster = c.cluster;
            objectStore = c.objectStore;
        }

        ServerConfig build() {
            return new ServerConfig(host, port, dataDir, runtime, runscPlatform, maxUploadBytes, maxJsonBytes, instanceMaxTimeout,
                    instanceConcurrency, importMaxTimeout, sandbox, network, layerPoolBytes, maxMountDepth, insecureRegistries,
                    maxImportBytes, maxAccountBytes, accountConcurrency, maxQueued, admissionReserveBytes, sandboxCostBytes, sandbox32Bit,
                    database, cluster, objectStore);
        }
    }

    private static Set<String> insecureRegistriesFromEnv() {
        String v = System.getenv("CONTREE_INSECURE_REGISTRIES");
        if (v == null || v.isBlank()) return Set.of();
        return Arrays.stream(v.split(",")).map(String::strip).filter(s -> !s.isEmpty()).collect(Collectors.toUnmodifiableSet());
    }
}
