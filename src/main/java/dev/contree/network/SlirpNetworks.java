package dev.contree.network;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

/**
 * Built-in networking ({@code --network on}): each networked sandbox gets a network namespace of its own and a
 * slirp4netns uplink run as a uid of its own ({@link SlirpUplink}), under the egress policy the host's firewall
 * enforces on those uids ({@link Firewall}). Why slirp4netns and not pasta or a veth with NAT: docs/security.md.
 */
final class SlirpNetworks implements SandboxNetworks {
    private static final Logger log = LoggerFactory.getLogger(SlirpNetworks.class);
    /** What the sandbox's resolver asks: slirp4netns's forwarder, which relays to the upstream resolvers. */
    static final String SANDBOX_RESOLV_CONF = "nameserver 10.0.2.3\n";
    static final List<String> TOOLS = List.of("slirp4netns", "nft", "setpriv", "unshare", "nsenter", "prlimit", "mount", "mknod", "chown");

    private final String table;
    private final UidBlock.Claim claim;
    private final UidBlock uids;
    private final UidBlock.Pool pool;
    private final Path upstream, resolvConf;
    private final UplinkCgroups cgroups;
    private final Set<SlirpUplink> live = ConcurrentHashMap.newKeySet();
    /** Uids lent out by {@link #reserveUplinkUid} (a VM's QEMU): live, not leftovers. */
    private final Set<Integer> lent = ConcurrentHashMap.newKeySet();

    private SlirpNetworks(UidBlock.Claim claim, Path upstream, Path resolvConf, UplinkCgroups cgroups) {
        this.cgroups = cgroups;
        this.claim = claim;
        this.uids = claim.block();
        this.table = Firewall.tableName(uids);
        this.pool = new UidBlock.Pool(uids);
        this.upstream = upstream;
        this.resolvConf = resolvConf;
    }

    /** Checks the tools, writes the resolv.conf files, removes a crashed predecessor's leftovers, installs the policy. */
    static SlirpNetworks start(NetworkSettings settings, Path stateDir, Path dataDir, String cgroupParent) throws IOException {
        List<String> missing = TOOLS.stream().filter(t -> !onPath(t)).toList();
        if (!missing.isEmpty())
            throw new IOException("--network on needs " + String.join(", ", missing) + " on the PATH (Debian: apt-get install slirp4netns nftables)");
        List<String> dns = settings.dns().isEmpty() ? EgressPolicy.nameservers(Path.of("/etc/resolv.conf")) : settings.dns();
        EgressPolicy policy = EgressPolicy.of(settings.allow(), settings.deny(), dns, EgressPolicy.Resolver.SYSTEM);
        if (policy.resolvers().isEmpty())
            log.warn("networking: no DNS resolver (none in /etc/resolv.conf, no --network-dns): names will not resolve in sandboxes");

        Path dir = stateDir.resolve("network");
        Files.createDirectories(dir);
        StringBuilder up = new StringBuilder("# the resolvers slirp4netns forwards sandboxes' DNS queries to (written by ConTree)\n");
        for (Ipv4Range r : policy.resolvers()) up.append("nameserver ").append(r.nft()).append('\n');
        Path upstream = writeReadOnly(dir.resolve("upstream-resolv.conf"), up.toString());
        Path resolvConf = writeReadOnly(dir.resolve("resolv.conf"), SANDBOX_RESOLV_CONF);

        UplinkCgroups cgroups = UplinkCgroups.open(cgroupParent);
        UidBlock.Claim claim = UidBlock.claim(dataDir);
        SlirpNetworks n = new SlirpNetworks(claim, upstream, resolvConf, cgroups);
        try {
            int stale = n.cleanupStale();
            if (stale > 0) log.warn("networking: removed {} uplink process(es) left by a previous run", stale);
            Firewall.install(n.table, n.uids, policy);
        } catch (IOException | RuntimeException e) {
            claim.close();
            throw e;
        }
        log.info("networking on: slirp4netns per sandbox, uids {}-{}, nft table inet {}; {} denied ranges, resolvers {}; uplink cgroups under {} ({})",
                n.uids.first(), n.uids.last(), n.table, policy.denied().size(), policy.resolvers(), cgroupParent, cgroups.controllers());
        return n;
    }

    @Override public String mode() { return "slirp4netns"; }

    @Override public boolean dedicated() { return true; }

    String table() { return table; }

    UidBlock uids() { return uids; }

    UplinkCgroups cgroups() { return cgroups; }

    @Override
    public SandboxNetwork attach(String sandboxId, double cpus) throws IOException {
        int uid = pool.acquire();
        UplinkCgroups.Cgroup cgroup;
        try {
            cgroup = cgroups.create(uid, cpus);
        } catch (IOException | RuntimeException e) {
            pool.release(uid);
            throw e;
        }
        SlirpUplink[] self = new SlirpUplink[1];
        SlirpUplink up = SlirpUplink.start(uid, cgroup, upstream, resolvConf, () -> {
            if (self[0] != null) live.remove(self[0]);
            pool.release(uid);
        });
        self[0] = up;
        live.add(up);
        return up;
    }

    @Override
    public UplinkUid reserveUplinkUid(String sandboxId) {
        int uid = pool.acquire();
        lent.add(uid);
        java.util.concurrent.atomic.AtomicBoolean released = new java.util.concurrent.atomic.AtomicBoolean();
        return new UplinkUid() {
            @Override public int uid() { return uid; }

            @Override public Path upstreamResolvConf() { return upstream; }

            @Override public void close() {
                if (!released.compareAndSet(false, true)) return;
                lent.remove(uid);
                pool.release(uid);
            }
        };
    }

    /** How many uids of the block are lent out or run an uplink now (for tests: none once every sandbox is gone). */
    int uidsInUse() { return lent.size() + live.size(); }

    /**
     * Kills every live process of this server's uplink uids: helpers of sandboxes that no longer exist (the block is
     * this server's alone while it runs, {@link UidBlock#claim}). (They end by
     * themselves when a crashed server's ends of their pipes close; this is for one that did not.) Zombies are already
     * gone but for their entry, which their new parent reaps. Then the cgroups of those uids go, with whatever is still
     * in them (a launcher killed before it took the uplink's uid).
     */
    @Override
    public int cleanupStale() throws IOException {
        int n = 0;
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            for (Path p : (Iterable<Path>) procs::iterator) {
                String name = p.getFileName().toString();
                if (!name.chars().allMatch(Character::isDigit)) continue;
                long uid = liveUidOf(p);
                if (uid < 0 || !uids.contains(uid) || lent.contains((int) uid) || live.stream().anyMatch(u -> u.uid() == uid)) continue;
                ProcessHandle.of(Long.parseLong(name)).ifPresent(ProcessHandle::destroyForcibly);
                n++;
            }
        }
        int groups = cgroups.removeStale(uid -> uids.contains(uid) && live.stream().noneMatch(u -> u.uid() == uid));
        if (groups > 0) log.warn("networking: removed the cgroups of {} uplink(s) left by a previous run", groups);
        return n;
    }

    /** The real uid of a /proc entry, -1 when it is gone or a zombie. */
    static long liveUidOf(Path proc) {
        try {
            for (String line : Files.readAllLines(proc.resolve("status"), StandardCharsets.UTF_8)) {
                if (line.startsWith("State:") && line.substring(6).strip().startsWith("Z")) return -1;
                if (line.startsWith("Uid:")) return Long.parseLong(line.substring(4).strip().split("\\s+")[0]);
            }
        } catch (IOException | RuntimeException e) {
            // exited meanwhile
        }
        return -1;
    }

    @Override
    public void close() {
        for (SlirpUplink up : new ArrayList<>(live)) up.close();
        long deadline = System.nanoTime() + 10_000_000_000L; // each ends within 2 s, a kill then 2 s more
        while (!live.isEmpty() && System.nanoTime() < deadline) {
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        try {
            Firewall.remove(table);
        } catch (IOException e) {
            log.warn("networking: cannot remove nft table inet {}: {}", table, e.getMessage());
        }
        try {
            claim.close();
        } catch (IOException e) {
            log.warn("networking: cannot release uplink uid block {}: {}", uids.index(), e.getMessage());
        }
    }

    private static Path writeReadOnly(Path target, String text) throws IOException {
        Path tmp = Files.createTempFile(target.getParent(), ".tmp", ".conf");
        Files.writeString(tmp, text, StandardCharsets.US_ASCII);
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("r--r--r--"));
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        return target;
    }

    private static boolean onPath(String tool) {
        String path = System.getenv().getOrDefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        for (String d : path.split(":")) {
            if (!d.isEmpty() && Files.isExecutable(Path.of(d, tool)) && !Files.isDirectory(Path.of(d, tool), LinkOption.NOFOLLOW_LINKS)) return true;
        }
        return false;
    }
}
