package dev.contree;

import dev.contree.auth.Token;
import dev.contree.auth.Tokens;
import dev.contree.server.ContreeServer;
import dev.contree.server.MetadataStores;
import dev.contree.network.EgressPolicy;
import dev.contree.network.NetworkSettings;
import dev.contree.server.ServerConfig;
import dev.contree.objects.ObjectStoreSettings;
import dev.contree.objects.ObjectStoreUrl;
import dev.contree.store.MetadataStore;
import dev.contree.store.postgres.PostgresUrl;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Callable;

/** Command line entry point: {@code serve} and {@code token …}. */
@Command(name = "contree", mixinStandardHelpOptions = true, subcommands = {Main.Serve.class, Main.TokenCommand.class, Main.FsckCommand.class},
        description = "Self-hosted ConTree: sandboxes that branch like git.")
public final class Main {
    static final String DEFAULT_ACCOUNT = "default";

    public static void main(String[] args) {
        System.exit(new CommandLine(new Main()).execute(args));
    }

    static class DataOption {
        @Option(names = "--data", defaultValue = "${env:CONTREE_DATA:-./data}", description = "data directory (default ./data)")
        Path data;
    }

    static class DatabaseOption {
        @Option(names = "--database", defaultValue = "${env:CONTREE_DATABASE}", paramLabel = "URL",
                description = "keep the metadata in this PostgreSQL database, postgresql://user:password@host:port/database"
                        + " (the password may come from PGPASSWORD instead); default: SQLite in the data dir")
        String database;
        @CommandLine.Spec(CommandLine.Spec.Target.MIXEE) CommandLine.Model.CommandSpec command;

        /** The database, or null for SQLite; a malformed URL is a usage error. */
        PostgresUrl parse() {
            if (database == null || database.isBlank()) return null;
            try {
                return PostgresUrl.parse(database, System.getenv("PGPASSWORD"));
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(command.commandLine(), "--database: " + e.getMessage());
            }
        }
    }

    @Command(name = "serve", description = "Serve the ConTree v1 API.")
    static final class Serve implements Callable<Integer> {
        @CommandLine.Mixin DataOption data = new DataOption();
        @CommandLine.Mixin DatabaseOption database = new DatabaseOption();
        @Option(names = "--listen", defaultValue = "${env:CONTREE_LISTEN:-127.0.0.1:8080}", description = "HOST:PORT (default 127.0.0.1:8080)")
        String listen;
        @Option(names = "--token", defaultValue = "${env:CONTREE_TOKEN}", description = "API token for the default account (else generated once)")
        String token;
        @Option(names = "--runtime", defaultValue = "${env:CONTREE_RUNTIME:-runsc}", description = "runsc (gVisor, default), runc, or vm (a QEMU microVM with its own kernel per execution; see docs/sandbox.md)")
        String runtime;
        @Option(names = "--runsc-platform", defaultValue = "${env:CONTREE_RUNSC_PLATFORM:-ptrace}", description = "gVisor platform: ptrace, kvm, systrap")
        String platform;
        @Option(names = "--network", defaultValue = "${env:CONTREE_NETWORK:-off}",
                description = "on: executions asking for networking get a network namespace and slirp4netns uplink of their own, under the "
                        + "egress policy below (outbound only); off (default): such requests get 403 and every sandbox has only loopback")
        String network;
        @Option(names = "--network-allow", split = ",", defaultValue = "${env:CONTREE_NETWORK_ALLOW}", paramLabel = "CIDR|HOST",
                description = "ranges, addresses or host names sandboxes may reach although denied by default (private ranges, "
                        + "link-local/metadata, loopback); a host's own address only when named exactly (a.b.c.d)")
        List<String> networkAllow;
        @Option(names = "--network-deny", split = ",", defaultValue = "${env:CONTREE_NETWORK_DENY}", paramLabel = "CIDR",
                description = "ranges or addresses sandboxes may not reach (0.0.0.0/0 with --network-allow makes an allow-list)")
        List<String> networkDeny;
        @Option(names = "--network-dns", split = ",", defaultValue = "${env:CONTREE_NETWORK_DNS}", paramLabel = "IP",
                description = "resolvers sandboxes' DNS queries are forwarded to (default: the host's /etc/resolv.conf)")
        List<String> networkDns;
        @Option(names = "--network-namespace", defaultValue = "${env:CONTREE_NETWORK_NAMESPACE}", hidden = true,
                description = "deprecated: one prepared network namespace every networked execution shares (no egress policy, "
                        + "sandboxes reach each other); use --network on")
        Path networkNamespace;
        @Option(names = "--concurrency", defaultValue = "${env:CONTREE_CONCURRENCY}",
                description = "upper bound of executions and imports that run at once; within it the host's free memory and pids decide, "
                        + "more queue as PENDING (default 1000, lowered at start when the file descriptor limit cannot hold it)")
        Integer concurrency;
        @Option(names = "--max-queued", defaultValue = "${env:CONTREE_MAX_QUEUED:-10000}",
                description = "most operations waiting (PENDING) at once; past it spawns and imports answer 429 with Retry-After (default 10000)")
        int maxQueued;
        @Option(names = "--admission-memory-reserve", defaultValue = "${env:CONTREE_ADMISSION_MEMORY_RESERVE:-auto}",
                description = "memory admission keeps free for the server and the kernel, e.g. 2g (default auto: 5% of RAM, at least 512m)")
        String admissionReserve;
        @Option(names = "--sandbox-memory-estimate", defaultValue = "${env:CONTREE_SANDBOX_MEMORY_ESTIMATE:-auto}",
                description = "what admission charges a new sandbox until the host shows its cost, e.g. 64m (default auto: 12m runc, 64m runsc)")
        String sandboxEstimate;
        @Option(names = "--max-timeout", defaultValue = "${env:CONTREE_MAX_TIMEOUT:-3600}",
                description = "longest execution timeout a client may ask for, seconds (default 3600)")
        int maxTimeout;
        @Option(names = "--sandbox-memory", defaultValue = "${env:CONTREE_SANDBOX_MEMORY:-1g}",
                description = "memory limit of each sandbox, e.g. 512m, 2g (default 1g)")
        String sandboxMemory;
        @Option(names = "--sandbox-pids", defaultValue = "${env:CONTREE_SANDBOX_PIDS:-512}",
                description = "process/thread limit of each sandbox (default 512)")
        long sandboxPids;
        @Option(names = "--sandbox-cpus", defaultValue = "${env:CONTREE_SANDBOX_CPUS:-1}",
                description = "CPU quota of each sandbox, in CPUs, e.g. 0.5 or 2 (default 1)")
        double sandboxCpus;

        @Option(names = "--sandbox-32bit", defaultValue = "${env:CONTREE_SANDBOX_32BIT:-false}", arity = "0..1",
                description = "runc: let sandboxes make 32-bit (i386) system calls, so 32-bit binaries in images run; off by default,"
                        + " a 32-bit system call then kills the process with SIGSYS (the kernel's compat syscall entry stays closed)")
        boolean sandbox32Bit;

        @Option(names = "--max-mount-depth", defaultValue = "${env:CONTREE_MAX_MOUNT_DEPTH:-16}",
                description = "image chains deeper than this are compacted before they run (default 16; lower lists faster, compacts more)")
        int maxMountDepth;

        @Option(names = "--max-import-bytes", defaultValue = "${env:CONTREE_MAX_IMPORT_BYTES:-16g}",
                description = "most bytes one import may unpack (file data + 512 per entry), e.g. 4g (default 16g)")
        String maxImportBytes;

        @Option(names = "--max-account-bytes", defaultValue = "${env:CONTREE_MAX_ACCOUNT_BYTES:-unlimited}",
                description = "most bytes one account may store (its images' layers and its files), e.g. 100g (default unlimited)")
        String maxAccountBytes;

        @Option(names = "--object-store", defaultValue = "${env:CONTREE_OBJECT_STORE}", paramLabel = "URL",
                description = "share layers and uploaded files with other nodes through this S3(-compatible) bucket, "
                        + "s3://bucket/prefix?endpoint=http://host:port&region=name (credentials from the environment, as the AWS SDK "
                        + "finds them); use with --database (default: none, this node's disk only)")
        String objectStore;

        @Option(names = "--layer-cache-bytes", defaultValue = "${env:CONTREE_LAYER_CACHE_BYTES:-64g}",
                description = "with --object-store: bytes of layers this node keeps in its pool before it evicts the least recently"
                        + " used (never one in use), e.g. 20g (default 64g)")
        String layerCacheBytes;

        @Option(names = "--object-gc-interval", defaultValue = "${env:CONTREE_OBJECT_GC_INTERVAL:-3600}", paramLabel = "S",
                description = "with --object-store: seconds between this node's tries at a bucket-wide garbage collection pass (one"
                        + " runs at a time cluster-wide); 0 turns it off on this node (default 3600)")
        long objectGcInterval;

        @Option(names = "--object-gc-grace", defaultValue = "${env:CONTREE_OBJECT_GC_GRACE:-21600}", paramLabel = "S",
                description = "with --object-store: seconds an object must stay unreferenced before garbage collection deletes it,"
                        + " at least 60 (default 21600, 6 hours)")
        long objectGcGrace;

        @Option(names = "--account-concurrency", defaultValue = "${env:CONTREE_ACCOUNT_CONCURRENCY:-0}",
                description = "most execution/import slots one account may hold while several accounts have tokens (default: concurrency minus a quarter, at least 1 kept for others)")
        int accountConcurrency;

        @Option(names = "--role", defaultValue = "${env:CONTREE_ROLE:-all}", paramLabel = "api|worker|all",
                description = "api: serves HTTP and queues work, runs none; worker: claims and runs work (and serves HTTP too);"
                        + " all: both (default). api and worker need --database postgresql://…")
        String role;

        @Option(names = "--lease-timeout", defaultValue = "${env:CONTREE_LEASE_TIMEOUT:-30}", paramLabel = "SECONDS",
                description = "with --database: how long a worker's claim on an operation outlives its last heartbeat; a dead"
                        + " worker's executions end FAILED after it (default 30)")
        int leaseSeconds;

        @Option(names = "--worker-id", defaultValue = "${env:CONTREE_WORKER_ID}",
                description = "with --database: this node's name in the queue's leases (default: made once, kept in the data dir)")
        String workerId;

        @Option(names = "--advertise-url", defaultValue = "${env:CONTREE_ADVERTISE_URL}", paramLabel = "URL",
                description = "with --database: where other nodes reach this node's API, http(s)://host:port, to route a live"
                        + " instance's subprocess calls to it (default: the --listen address)")
        String advertiseUrl;

        @Option(names = "--worker-kinds", defaultValue = "${env:CONTREE_WORKER_KINDS:-instance,image_import}", paramLabel = "KIND,…",
                description = "with --database: what this worker claims, instance (executions), image_import or both (default),"
                        + " e.g. a pool of import nodes beside the execution nodes")
        String workerKinds;

        /** The cluster part of the configuration; a bad role is a usage error. */
        private dev.contree.operations.ClusterSettings cluster() {
            dev.contree.operations.ClusterSettings.Role r;
            try {
                r = dev.contree.operations.ClusterSettings.Role.valueOf(role.strip().toUpperCase(java.util.Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(new CommandLine(this), "--role must be api, worker or all");
            }
            try {
                return new dev.contree.operations.ClusterSettings(r, java.time.Duration.ofSeconds(leaseSeconds),
                        workerId == null || workerId.isBlank() ? null : workerId.strip(),
                        advertiseUrl == null || advertiseUrl.isBlank() ? null : advertiseUrl.strip(),
                        dev.contree.operations.ClusterSettings.parseKinds(workerKinds));
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(new CommandLine(this), e.getMessage());
            }
        }

        @Override
        public Integer call() throws Exception {
            int colon = listen.lastIndexOf(':');
            if (colon < 0) throw new CommandLine.ParameterException(new CommandLine(this), "--listen must be HOST:PORT");
            String host = listen.substring(0, colon);
            int port = Integer.parseInt(listen.substring(colon + 1));
            if (!runtime.equals("runsc") && !runtime.equals("runc") && !runtime.equals("vm")) {
                throw new CommandLine.ParameterException(new CommandLine(this), "--runtime must be runsc, runc or vm");
            }
            if (new com.sun.security.auth.module.UnixSystem().getUid() != 0) {
                System.err.println("contree serve must run as root: it mounts its btrfs layer store and overlays, and starts "
                        + "OCI runtimes (runsc/runc). Run it with sudo, or as root in a VM/container you dedicate to it.");
                return 1;
            }
            PostgresUrl metadata = database.parse();
            ServerConfig config;
            NetworkSettings networking;
            try {
                networking = networking();
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(new CommandLine(this), e.getMessage());
            }
            if (networkNamespace != null) {
                System.err.println("warning: --network-namespace is deprecated: every networked execution shares " + networkNamespace
                        + " (they can reach each other, no egress policy applies, and runsc cannot use it). Use --network on:"
                        + " a namespace and uplink per sandbox under --network-allow/--network-deny.");
            }
            try {
                ServerConfig base = ServerConfig.defaults(data.data);
                config = base.withListen(host, port).withDatabase(metadata).withCluster(cluster()).withRuntime(runtime, platform).withNetwork(networking)
                        .withExecutions(concurrency != null ? concurrency : base.instanceConcurrency(), maxTimeout)
                        .withSandboxLimits(new ServerConfig.SandboxLimits(parseSize(sandboxMemory), sandboxPids, sandboxCpus))
                        .withMaxMountDepth(maxMountDepth)
                        .withSandbox32Bit(sandbox32Bit)
                        .withAccountConcurrency(accountConcurrency)
                        .withMaxQueued(maxQueued)
                        .withAdmission(admissionReserve.strip().equalsIgnoreCase("auto") ? -1 : parseSize(admissionReserve),
                                sandboxEstimate.strip().equalsIgnoreCase("auto") ? 0 : parseSize(sandboxEstimate))
                        .withStorageLimits(parseSize(maxImportBytes),
                                maxAccountBytes.strip().equalsIgnoreCase("unlimited") ? Long.MAX_VALUE : parseSize(maxAccountBytes))
                        .withObjectStore(objectStore == null || objectStore.isBlank() ? null
                                : new ObjectStoreSettings(ObjectStoreUrl.parse(objectStore.strip()), parseSize(layerCacheBytes))
                                .withGc(objectGcInterval(), objectGcGrace()));
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(new CommandLine(this), e.getMessage());
            }
            ContreeServer server = ContreeServer.start(config);
            String secret = bootstrapToken(server, config.dataDir(), token);
            String url = "http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + server.port();
            System.out.println();
            System.out.println("ConTree is serving " + url + " (data: " + config.dataDir().toAbsolutePath().normalize()
                    + (metadata == null ? "" : ", metadata: " + metadata) + ", runtime: " + runtime + ")");
            if (secret != null) {
                System.out.println("  token:  " + secret);
                System.out.println("  CLI:    contree auth --type jwt --url " + url + " --token " + secret + " -y");
                System.out.println("  curl:   curl -H 'Authorization: Bearer " + secret + "' " + url + "/v1/whoami");
            }
            System.out.println("  explorer: " + url + "/ui/ (sign in with a token)");
            System.out.println();
            CountDownLatch stopped = new CountDownLatch(1);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                server.close();
                stopped.countDown();
            }, "shutdown"));
            stopped.await();
            return 0;
        }

        private NetworkSettings networking() {
            String mode = network.strip().toLowerCase(java.util.Locale.ROOT);
            if (!mode.equals("on") && !mode.equals("off")) throw new IllegalArgumentException("--network must be on or off");
            if (mode.equals("off")) {
                if (networkAllow != null || networkDeny != null || networkDns != null)
                    throw new IllegalArgumentException("--network-allow, --network-deny and --network-dns need --network on");
                return networkNamespace != null ? NetworkSettings.sharedNamespace(networkNamespace) : NetworkSettings.OFF;
            }
            if (networkNamespace != null)
                throw new IllegalArgumentException("--network on and --network-namespace exclude each other (--network on gives each sandbox its own namespace)");
            NetworkSettings on = NetworkSettings.on(orEmpty(networkAllow), orEmpty(networkDeny), orEmpty(networkDns));
            EgressPolicy.of(on.allow(), on.deny(), on.dns(), EgressPolicy.Resolver.SYSTEM); // a bad entry fails here, named
            return on;
        }

        private static List<String> orEmpty(List<String> l) {
            return l == null ? List.of() : l.stream().map(String::strip).filter(s -> !s.isEmpty()).toList();
        }

        private java.time.Duration objectGcInterval() {
            if (objectGcInterval < 0) throw new IllegalArgumentException("--object-gc-interval must be 0 (off) or more seconds");
            return java.time.Duration.ofSeconds(objectGcInterval);
        }

        /** Bounded below: the grace must outlast any reuse in flight (an upload skipped, then its record written). */
        private java.time.Duration objectGcGrace() {
            if (objectGcGrace < 60) throw new IllegalArgumentException("--object-gc-grace must be at least 60 seconds");
            return java.time.Duration.ofSeconds(objectGcGrace);
        }

        /** Bytes from "1073741824", "512m", "2g" (binary units k, m, g, t; case-insensitive). */
        static long parseSize(String v) {
            String t = v.strip().toLowerCase(java.util.Locale.ROOT);
            int shift = switch (t.isEmpty() ? ' ' : t.charAt(t.length() - 1)) {
                case 'k' -> 10;
                case 'm' -> 20;
                case 'g' -> 30;
                case 't' -> 40;
                default -> 0;
            };
            String digits = shift == 0 ? t : t.substring(0, t.length() - 1);
            try {
                long n = Long.parseLong(digits);
                if (n < 0 || n > (Long.MAX_VALUE >> shift)) throw new NumberFormatException();
                return n << shift;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("not a size: '" + v + "' (use e.g. 512m or 2g)");
            }
        }

        /** The default account's token: given, or read from the data dir, or generated and saved there (0600). */
        private static String bootstrapToken(ContreeServer server, Path dataDir, String given) throws Exception {
            Tokens tokens = server.services().tokens();
            if (given != null && !given.isBlank()) {
                tokens.register(given.trim(), DEFAULT_ACCOUNT, "serve --token", null);
                return given.trim();
            }
            Path file = dataDir.resolve("token");
            if (Files.exists(file)) {
                String saved = Files.readString(file, StandardCharsets.UTF_8).trim();
                tokens.register(saved, DEFAULT_ACCOUNT, "bootstrap", null);
                return saved;
            }
            String secret = tokens.issue(DEFAULT_ACCOUNT, "bootstrap", null).secret();
            Files.writeString(file, secret + "\n", StandardCharsets.UTF_8);
            Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
            return secret;
        }
    }

    @Command(name = "fsck", description = "Check a stopped server's data dir, changing nothing; --repair fixes what it finds."
            + " Exit code: 0 clean, 1 problems found, 2 data dir unusable (missing, not initialised, in use).")
    static final class FsckCommand implements Callable<Integer> {
        @CommandLine.Mixin DataOption data = new DataOption();
        @Option(names = "--repair", description = "fix what the check reports: delete pending layers and temp files, seal layers, unmount,"
                + " fail interrupted operations, remove unreferenced layers/blobs and what lost its content")
        boolean repair;

        @Override
        public Integer call() throws Exception {
            return dev.contree.server.Fsck.exec(data.data, repair, System.out, System.err);
        }
    }

    @Command(name = "token", description = "Manage API tokens (stored hashed).",
            subcommands = {TokenCommand.Create.class, TokenCommand.ListTokens.class, TokenCommand.Revoke.class})
    static final class TokenCommand {
        /** A token subcommand: {@link #run} gets the tokens of the data dir's store (or the database's), open for the call only. */
        abstract static class TokenSubcommand implements Callable<Integer> {
            @CommandLine.Mixin DataOption data = new DataOption();
            @CommandLine.Mixin DatabaseOption database = new DatabaseOption();

            abstract int run(Tokens tokens) throws Exception;

            @Override
            public Integer call() throws Exception {
                try (MetadataStore db = MetadataStores.openForCommand(data.data, database.parse())) {
                    return run(new Tokens(db.tokens()));
                }
            }
        }

        @Command(name = "create", description = "Create a token; prints the secret once.")
        static final class Create extends TokenSubcommand {
            @Option(names = "--account", defaultValue = DEFAULT_ACCOUNT, description = "account the token acts for (created if new)")
            String account;
            @Option(names = "--name", defaultValue = "token", description = "a label for the token")
            String name;
            @Option(names = "--expires-in-days", description = "expire after this many days")
            Integer days;

            @Override
            int run(Tokens tokens) {
                Instant expires = days == null ? null : Instant.now().plus(days, ChronoUnit.DAYS);
                Tokens.Issued issued = tokens.issue(account, name, expires);
                System.out.println(issued.secret());
                System.err.println("token " + issued.token().uuid() + " for account '" + account + "'");
                return 0;
            }
        }

        @Command(name = "list", description = "List tokens (never their secrets).")
        static final class ListTokens extends TokenSubcommand {
            @Override
            int run(Tokens tokens) {
                System.out.printf("%-36s  %-12s  %-16s  %-20s  %s%n", "UUID", "ACCOUNT", "NAME", "CREATED", "STATE");
                Instant now = Instant.now();
                for (Token t : tokens.list()) {
                    String state = t.revokedAt() != null ? "revoked" : t.activeAt(now) ? "active" : "expired";
                    System.out.printf("%-36s  %-12s  %-16s  %-20s  %s%n", t.uuid(), t.accountName(), t.name(),
                            t.createdAt().truncatedTo(ChronoUnit.SECONDS), state);
                }
                return 0;
            }
        }

        @Command(name = "revoke", description = "Revoke a token by uuid or name.")
        static final class Revoke extends TokenSubcommand {
            @Parameters(paramLabel = "UUID_OR_NAME") String id;

            @Override
            int run(Tokens tokens) {
                int n = tokens.revoke(id);
                System.out.println(n == 0 ? "no active token matches '" + id + "'" : "revoked " + n + " token(s)");
                return n == 0 ? 1 : 0;
            }
        }
    }
}
