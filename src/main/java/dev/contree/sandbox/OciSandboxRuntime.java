package dev.contree.sandbox;

import java.io.ByteArrayOutputStream;
import dev.contree.cancel.CancelToken;
import dev.contree.linux.Dir;
import dev.contree.linux.Reaper;
import dev.contree.linux.SpawnedProcess;
import dev.contree.network.RunscNetworking;
import dev.contree.network.SandboxNetwork;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import static dev.contree.sandbox.InitChannel.longOf;

/**
 * runsc / runc backend: writes an OCI bundle, runs {@code <runtime> run --detach} with contree-init as PID 1
 * ({@link DetachedContainer}: no runtime process stays alive beside a sandbox, init holds the pipes and the
 * server, as child subreaper, waits for it), talks to init through an {@link InitChannel} (stdin, subprocesses,
 * framed output), and cleans up.
 *
 * <p>Every runtime process is a {@link SpawnedProcess}: its pipes and exit are served by one epoll thread, so
 * a sleeping sandbox holds no thread in a blocking native call, only parked virtual threads (its stdout demux,
 * stderr drain, stdin feeder and the caller waiting for the exit). With {@code java.lang.Process} each blocked
 * pipe reader pinned a carrier; the JDK caps carriers at 256, so about 128 sandboxes stalled every other
 * virtual thread of the server, HTTP requests included.
 */
final class OciSandboxRuntime implements SandboxRuntime {
    private static final Logger log = LoggerFactory.getLogger(OciSandboxRuntime.class);
    static final String CONTAINER_PREFIX = "contree-";
    /**
     * Where a container's cgroup directories live under /sys/fs/cgroup: the v1 hierarchies, the v2 one that a
     * hybrid host mounts at "unified" (runc joins it too), and "" for a v2-only host.
     */
    private static final List<String> CGROUP_CONTROLLERS =
            List.of("memory", "pids", "cpu", "cpuacct", "cpuset", "blkio", "devices", "freezer", "systemd", "unified", "");
    private static final int RUNTIME_STDERR_CAP = 64 * 1024;
    private static final Path WORKING_DIR = Path.of("").toAbsolutePath(); // where ProcessBuilder would start them
    private static final String PID_FILE = "init.pid";

    private final RuntimeConfig cfg;
    private final String binary;
    private final Path stateRoot;
    private final Path bundles;
    private final Path initBinary;
    /** Where the runtime mounts or creates, relative to any rootfs (the spec's mounts do not depend on which). */
    private final List<MountPoint> mountPoints, networkedMountPoints;
    private final boolean memsw;

    OciSandboxRuntime(RuntimeConfig cfg) throws IOException {
        this.cfg = cfg;
        this.binary = cfg.binary() != null ? cfg.binary().toString() : name();
        Path state = cfg.stateDir().toAbsolutePath();
        this.stateRoot = state.resolve(name() + "-root");
        this.bundles = state.resolve(name() + "-bundles");
        Files.createDirectories(stateRoot);
        Files.createDirectories(bundles);
        this.initBinary = extractInit(state);
        this.memsw = OciSpecs.memswAvailable();
        Reaper.becomeSubreaper(); // at start-up: detached containers' inits become our children, not PID 1's
        Path placeholder = Path.of("/rootfs");
        this.mountPoints = List.copyOf(OciSpecs.rootfsMountPoints(OciSpecs.mounts(cfg.kind(), placeholder, initBinary),
                placeholder, initBinary));
        this.networkedMountPoints = List.copyOf(OciSpecs.rootfsMountPoints(OciSpecs.mounts(cfg.kind(), placeholder, initBinary,
                Path.of("/resolv.conf")), placeholder, initBinary));
    }

    @Override public String name() { return cfg.kind() == RuntimeConfig.Kind.RUNSC ? "runsc" : "runc"; }

    Path initBinary() { return initBinary; }

    @Override
    public List<MountPoint> rootfsMountPoints() {
        return mountPoints;
    }

    @Override
    public List<MountPoint> rootfsMountPoints(boolean network) {
        return network && cfg.network() != null && cfg.network().dedicated() ? networkedMountPoints : mountPoints;
    }

    @Override
    public String networkMode() {
        return cfg.network() == null ? "none" : cfg.network().mode();
    }

    /** Copies contree-init from the classpath to stateDir/contree-init-&lt;sha&gt; (root-owned, 0555). */
    private static Path extractInit(Path state) throws IOException {
        byte[] bin;
        try (InputStream in = OciSandboxRuntime.class.getResourceAsStream("contree-init")) {
            if (in == null) throw new IOException("contree-init missing from the classpath (build it with the Maven build)");
            bin = in.readAllBytes();
        }
        String sha;
        try {
            sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bin)).substring(0, 16);
        } catch (Exception e) {
            throw new IOException(e);
        }
        Path target = state.resolve("contree-init-" + sha);
        if (Files.isRegularFile(target, LinkOption.NOFOLLOW_LINKS) && Files.size(target) == bin.length) return target;
        Path tmp = Files.createTempFile(state, ".contree-init", ".tmp");
        Files.write(tmp, bin);
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("r-xr-xr-x"));
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        return target;
    }

    // ---------------------------------------------------------------- command lines

    private List<String> globalArgs() {
        List<String> a = new ArrayList<>();
        a.add(binary);
        a.add("--root");
        a.add(stateRoot.toString());
        if (cfg.kind() == RuntimeConfig.Kind.RUNSC) {
            a.add("--platform=" + cfg.runscPlatform());
            a.add("--overlay2=none");          // rootfs writes must land in the host directory
            a.add("--file-access=exclusive");   // (default) the sandbox owns its rootfs; flushed on exit
            a.add("--oci-seccomp");             // the spec's profile, enforced by the sentry (socket families, kill(1))
        }
        return a;
    }

    /** Detached: the runtime exits once the container runs, and init, re-parented to us, holds the pipes. */
    private List<String> runArgs(Path bundle, String cid, SandboxNetwork network) {
        List<String> a = globalArgs();
        if (cfg.kind() == RuntimeConfig.Kind.RUNSC) {
            a.add(1, network != null ? "--network=sandbox" : "--network=none");
        }
        a.add("run");
        a.add("--detach");
        a.add("--pid-file");
        a.add(bundle.resolve(PID_FILE).toString());
        a.add("--bundle");
        a.add(bundle.toString());
        a.add(cid);
        // runsc takes the namespace's interfaces into gVisor's netstack; the wrap gets its own namespace past gVisor #10704
        return cfg.kind() == RuntimeConfig.Kind.RUNSC && network != null && network.dedicated() ? RunscNetworking.wrap(a) : a;
    }

    /** Runs a short runtime subcommand; returns exit code, -1 on timeout. Output discarded (logged at debug). */
    private int runtimeCommand(Duration timeout, String... sub) {
        List<String> a = globalArgs();
        a.addAll(List.of(sub));
        try {
            Process p = SpawnedProcess.start(a, WORKING_DIR, SpawnedProcess.Stderr.TO_STDOUT);
            p.getOutputStream().close(); // reads see the end at once, as from /dev/null
            byte[] out;
            try (InputStream in = p.getInputStream()) {
                out = in.readNBytes(8192);
            }
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                return -1;
            }
            if (p.exitValue() != 0 && log.isDebugEnabled())
                log.debug("{} -> {}: {}", a, p.exitValue(), new String(out, StandardCharsets.UTF_8).strip());
            return p.exitValue();
        } catch (IOException e) {
            log.warn("{} failed: {}", a, e.toString());
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }

    private String runtimeOutput(String... sub) throws IOException {
        List<String> a = globalArgs();
        a.addAll(List.of(sub));
        Process p = SpawnedProcess.start(a, WORKING_DIR, SpawnedProcess.Stderr.DISCARD);
        p.getOutputStream().close();
        try (InputStream in = p.getInputStream()) {
            String s = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            p.waitFor(30, TimeUnit.SECONDS);
            return s;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }

    // ---------------------------------------------------------------- run

    @Override
    public SandboxResult run(SandboxSpec spec, SandboxListener listener, CancelToken cancel) throws IOException {
        if (listener == null) listener = SandboxListener.NONE;
        if (cancel == null) cancel = CancelToken.none();
        long outputCap = spec.outputCap() > 0 ? spec.outputCap() : cfg.defaultOutputCap();
        if (cancel.isCancelled()) return cancelledBeforeStart(spec, outputCap);
        if (!Files.isDirectory(spec.rootfs(), LinkOption.NOFOLLOW_LINKS))
            throw new IOException("the sandbox rootfs is not a directory"); // no host path: messages reach clients
        if (spec.network() && cfg.network() == null)
            return infra("network requested but networking is off on this server");

        String cid = CONTAINER_PREFIX + spec.id();
        Path bundle = bundles.resolve(cid);
        try {
            Files.createDirectory(bundle);
        } catch (FileAlreadyExistsException e) {
            throw new IOException("sandbox id already in use: " + spec.id(), e);
        }
        Process proc = null;
        Killer killer = null;
        SandboxNetwork network = null;
        try {
            if (spec.network()) {
                try {
                    // the uplink's CPU quota follows the sandbox's own
                    network = cfg.network().attach(cid, spec.cpus() != 0 ? spec.cpus() : cfg.defaultCpus());
                } catch (IOException e) {
                    return infra("the sandbox's network could not be set up: " + e.getMessage());
                }
                if (!network.dedicated() && cfg.kind() == RuntimeConfig.Kind.RUNSC)
                    return infra("runsc cannot join a namespace other sandboxes share (gVisor's netstack would take its interfaces"
                            + " over); the deprecated --network-namespace works with runc only: use serve --network on");
            }
            if (cfg.kind() == RuntimeConfig.Kind.RUNSC) ensureTmp(spec.rootfs());
            // The runtime resolves these on the host: refuse a rootfs where one goes through a symlink.
            RootfsCheck.verify(spec.rootfs(), rootfsMountPoints(spec.network()));
            OciSpecs.Limits limits = new OciSpecs.Limits(
                    pick(spec.memoryBytes(), cfg.defaultMemoryBytes()),
                    pick(spec.pidsLimit(), cfg.defaultPidsLimit()),
                    spec.cpus() != 0 ? spec.cpus() : cfg.defaultCpus());
            RuntimeSpec config = OciSpecs.buildWithNetwork(cfg, spec, InitChannel.commandLine(INIT_PATH, spec), initBinary,
                    "/" + cfg.cgroupParent() + "/" + cid, limits, network, memsw);
            Files.writeString(bundle.resolve("config.json"), OciSpecs.toJson(config), StandardCharsets.US_ASCII);

            long timeoutMs = spec.timeout() == null ? 0 : spec.timeout().toMillis();
            long t0 = System.nanoTime();
            proc = DetachedContainer.start(runArgs(bundle, cid, network), bundle, bundle.resolve(PID_FILE),
                    cfg.kind() == RuntimeConfig.Kind.RUNSC ? cgroupProcs(cid) : null);
            killer = new Killer(cid, proc);
            Killer k = killer;
            cancel.onCancel(() -> k.kill("cancel"));

            Process p = proc;
            InitChannel demux = new InitChannel(proc.getOutputStream(), proc.getInputStream(), listener, outputCap,
                    cfg.defaultOutputCap(), InitChannel.newToken(), this::usage, cid);
            demux.whenTampered(() -> k.kill("its report channel was tampered with"));
            demux.start(spec.stdin(), spec.stdinFile(), spec.keepStdinOpen());
            Thread demuxThread = Thread.ofVirtual().name("sandbox-out-" + cid).start(demux::demux);
            ByteArrayOutputStream rtErr = new ByteArrayOutputStream();
            Thread errThread = Thread.ofVirtual().name("sandbox-err-" + cid).start(() -> drain(p.getErrorStream(), rtErr));

            // Hard deadline in case init is stuck: spec timeout + grace (+ startup allowance).
            long hardMs = timeoutMs > 0 ? timeoutMs + cfg.killGrace().toMillis() + 5000 : Long.MAX_VALUE;
            boolean exited = hardMs == Long.MAX_VALUE ? waitFor(proc, -1) : waitFor(proc, hardMs);
            if (!exited) {
                killer.kill("hard deadline");
                exited = waitFor(proc, 10_000);
                if (!exited) proc.destroyForcibly();
            }
            demuxThread.join(5_000);
            errThread.join(2_000);
            demux.finish(cancel.isCancelled());
            double elapsedHost = (System.nanoTime() - t0) / 1e9;
            SandboxResult result = buildResult(demux, rtErr, proc, killer, cancel, elapsedHost);
            return network == null ? result : result.withNetwork(network.usage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            if (killer != null) killer.kill("interrupted");
            throw new IOException("interrupted while running sandbox " + cid, e);
        } finally {
            if (proc != null && proc.isAlive()) {
                if (killer != null) killer.kill("cleanup");
                if (!waitFor(proc, 5000)) proc.destroyForcibly();
            }
            if (killer != null) killer.close();
            if (proc != null) closeStreams(proc); // wakes a reader still parked on a pipe something else holds open
            if (proc instanceof DetachedContainer d && d.initExited()) forgetStoppedRunc(cid);
            cleanupContainer(cid);
            deleteTree(bundle);
            if (network != null) network.close(); // after the sandbox: nothing of it may still use the namespace
        }
    }

    private static void closeStreams(Process p) {
        for (java.io.Closeable c : List.<java.io.Closeable>of(p.getOutputStream(), p.getInputStream(), p.getErrorStream())) {
            try { c.close(); } catch (IOException ignored) { }
        }
    }

    private static long pick(long v, long dflt) { return v != 0 ? v : dflt; }

    private static boolean waitFor(Process p, long ms) {
        try {
            if (ms < 0) { p.waitFor(); return true; }
            return p.waitFor(ms, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return !p.isAlive();
        }
    }

    /** gVisor needs /tmp to exist in the rootfs to bind it over its default tmpfs. */
    private static void ensureTmp(Path rootfs) throws IOException {
        Dir.Name tmp = Dir.Name.of("tmp");
        try (Dir root = Dir.open(rootfs, "/")) {
            if (root.statOrNull(tmp) != null) return; // whatever it is, RootfsCheck decides
            root.mkdir(tmp, 0700);
            root.chmod(tmp, 01777);
        }
    }

    private SandboxResult cancelledBeforeStart(SandboxSpec spec, long cap) {
        return new SandboxResult(-1, -1, false, false, -1, ResourceUsage.UNKNOWN, new byte[0], false, 0, new byte[0],
                false, 0, true, null, null);
    }

    private static SandboxResult infra(String msg) {
        return new SandboxResult(-1, -1, false, false, -1, ResourceUsage.UNKNOWN, new byte[0], false, 0, new byte[0],
                false, 0, false, null, msg);
    }

    private SandboxResult buildResult(InitChannel d, ByteArrayOutputStream rtErr, Process proc, Killer killer,
                                      CancelToken cancel, double elapsedHost) {
        return d.finalResult(cancel, elapsedHost, channelError -> {
            String why = killer.reason != null ? "sandbox killed (" + killer.reason + ")" : "sandbox ended without a result";
            if (killer.reason == null && !proc.isAlive() && proc.exitValue() == 128 + 9)
                why = "sandbox was killed by SIGKILL, most likely by the host OOM killer for exceeding its memory limit"
                        + (cfg.kind() == RuntimeConfig.Kind.RUNSC ? " (gVisor: the whole sandbox is charged and killed)" : "");
            String err = rtErr.toString(StandardCharsets.UTF_8).strip();
            if (channelError != null) err = (err + " [output: " + channelError + "]").strip();
            String infraError = why + " (" + name() + " exit " + (proc.isAlive() ? "?" : proc.exitValue()) + ")"
                    + (err.isEmpty() ? "" : ": " + tail(err, 2000));
            if (err.contains("cannot run with network enabled in root network namespace"))
                infraError += " (runsc releases from before gVisor's fix for issue #10704, July 2024, take every network namespace"
                        + " for the root one on kernels that have /proc/sys/net/core/rmem_default in each: networking needs a newer runsc, or runc; serve --network on gives runsc sandboxes namespaces of their own, which works)";
            return infraError;
        });
    }

    private ResourceUsage usage(Map<String, String> r) {
        boolean gvisor = cfg.kind() == RuntimeConfig.Kind.RUNSC;
        // gVisor's wait4 does not account faults, block I/O, context switches, signals, swaps.
        long u = gvisor ? -1 : 0;
        return new ResourceUsage(
                longOf(r, "utime_us", -1) / 1e6,
                longOf(r, "stime_us", -1) / 1e6,
                longOf(r, "maxrss_kb", -1),
                gvisor ? u : longOf(r, "minflt", -1),
                gvisor ? u : longOf(r, "majflt", -1),
                gvisor ? u : longOf(r, "inblock", -1),
                gvisor ? u : longOf(r, "oublock", -1),
                gvisor ? u : longOf(r, "nvcsw", -1),
                gvisor ? u : longOf(r, "nivcsw", -1),
                gvisor ? u : longOf(r, "nsignals", -1),
                gvisor ? u : longOf(r, "nswap", -1),
                longOf(r, "elapsed_ns", -1) / 1e9,
                longOf(r, "cg_mem_max_usage", -1),
                r.containsKey("cg_cpu_usage_ns") ? longOf(r, "cg_cpu_usage_ns", -1) / 1e9 : -1,
                longOf(r, "cg_oom_kills", -1),
                longOf(r, "cg_pids_max_hit", -1));
    }

    private static String tail(String s, int n) { return s.length() <= n ? s : "..." + s.substring(s.length() - n); }

    private static void drain(InputStream in, ByteArrayOutputStream keep) {
        byte[] buf = new byte[8192];
        try (in) {
            int n;
            while ((n = in.read(buf)) > 0) {
                int room = RUNTIME_STDERR_CAP - keep.size();
                if (room > 0) keep.write(buf, 0, Math.min(room, n));
            }
        } catch (IOException ignored) {
        }
    }

    // ---------------------------------------------------------------- killing and cleanup

    /** Kills a container (cancel / hard deadline), retrying until the runtime process is gone. */
    private final class Killer {
        final String cid;
        final Process proc;
        final AtomicBoolean started = new AtomicBoolean();
        volatile boolean closed;
        volatile String reason;

        Killer(String cid, Process proc) { this.cid = cid; this.proc = proc; }

        void kill(String why) {
            if (!started.compareAndSet(false, true)) return;
            reason = why;
            Thread.ofVirtual().name("sandbox-kill-" + cid).start(() -> {
                long giveUp = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (proc.isAlive() && !closed) {
                    runtimeCommand(Duration.ofSeconds(5), "kill", cid, "KILL");
                    if (waitFor(proc, 100)) break;
                    if (System.nanoTime() > giveUp) {
                        proc.destroyForcibly(); // the finally block deletes the container
                        break;
                    }
                }
            });
        }

        void close() { closed = true; }
    }

    /** runc keeps state in root/CID/, runsc in files named after the container: anything mentioning it. */
    private boolean hasState(String cid) {
        try (Stream<Path> s = Files.list(stateRoot)) {
            return s.anyMatch(p -> p.getFileName().toString().contains(cid));
        } catch (IOException e) {
            return true;
        }
    }

    private void cleanupContainer(String cid) {
        if (hasState(cid)) {
            runtimeCommand(Duration.ofSeconds(20), "delete", "--force", cid);
            if (hasState(cid)) {
                runtimeCommand(Duration.ofSeconds(5), "kill", cid, "KILL");
                runtimeCommand(Duration.ofSeconds(20), "delete", "--force", cid);
            }
            removeOrphanedRunscLock(cid);
        }
        removeCgroups(cid);
    }

    /**
     * runsc keeps a lock file beside each container's state file and leaves it behind when the sandbox dies while
     * it starts (then {@code delete} finds no container): without a state file the lock guards nothing.
     */
    private void removeOrphanedRunscLock(String cid) {
        if (cfg.kind() != RuntimeConfig.Kind.RUNSC) return;
        String base = cid + "_sandbox:" + cid;
        if (Files.exists(stateRoot.resolve(base + ".state"), LinkOption.NOFOLLOW_LINKS)) return;
        try {
            Files.deleteIfExists(stateRoot.resolve(base + ".lock"));
        } catch (IOException e) {
            log.debug("runsc lock of {}: {}", cid, e.toString());
        }
    }

    /**
     * A runc container whose init we reaped is stopped: {@code runc delete} would only remove its state
     * directory (state.json) and its cgroups, so this does it without starting another runc (~5 ms of CPU per
     * run). Anything unexpected in the state directory is left to {@code runc delete}.
     */
    private void forgetStoppedRunc(String cid) {
        if (cfg.kind() != RuntimeConfig.Kind.RUNC) return;
        Path dir = stateRoot.resolve(cid);
        try (Stream<Path> s = Files.list(dir)) {
            if (!s.map(p -> p.getFileName().toString()).toList().equals(List.of("state.json"))) return;
            Files.delete(dir.resolve("state.json"));
            Files.delete(dir);
        } catch (IOException e) {
            log.debug("runc state of {}: {}", cid, e.toString());
        }
    }

    /** The container's cgroup.procs (cgroup v1: the pids hierarchy; v2: the unified one). */
    private Path cgroupProcs(String cid) {
        Path v1 = Path.of("/sys/fs/cgroup/pids");
        Path base = Files.isDirectory(v1) ? v1 : Path.of("/sys/fs/cgroup");
        return base.resolve(cfg.cgroupParent()).resolve(cid).resolve("cgroup.procs");
    }

    private void removeCgroups(String cid) {
        // A cgroup whose last task is still exiting refuses rmdir (EBUSY) for a moment: a few short retries
        // (runc's own delete retries too, and for a stopped runc container this is the only removal).
        for (int attempt = 0; attempt < 4; attempt++) {
            boolean left = false;
            for (String c : CGROUP_CONTROLLERS) {
                Path dir = Path.of("/sys/fs/cgroup", c, cfg.cgroupParent(), cid);
                if (!Files.isDirectory(dir)) continue;
                // cgroup dirs are removed with rmdir, deepest first (runsc may nest one level).
                try (Stream<Path> s = Files.walk(dir)) {
                    s.filter(Files::isDirectory).sorted(Comparator.reverseOrder()).forEach(p -> {
                        try { Files.delete(p); } catch (IOException e) { log.debug("rmdir {}: {}", p, e.toString()); }
                    });
                } catch (IOException | RuntimeException e) {
                    log.debug("cgroup cleanup {}: {}", dir, e.toString());
                }
                left |= Files.isDirectory(dir);
            }
            if (!left) return;
            try {
                Thread.sleep(20L << attempt);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
        log.warn("cgroups of {} could not be removed", cid);
    }

    private static void deleteTree(Path p) { RunFiles.deleteTree(p, log); }

    @Override
    public int cleanupStale() throws IOException {
        int n = 0;
        List<String> ids = new ArrayList<>();
        for (String line : runtimeOutput("list", "--quiet").split("\n")) {
            line = line.strip();
            if (line.startsWith(CONTAINER_PREFIX)) ids.add(line);
        }
        try (Stream<Path> s = Files.list(stateRoot)) {
            s.map(p -> p.getFileName().toString()).filter(x -> x.startsWith(CONTAINER_PREFIX) && !ids.contains(x))
                    .forEach(ids::add);
        }
        try (Stream<Path> s = Files.list(bundles)) {
            s.map(p -> p.getFileName().toString()).filter(x -> x.startsWith(CONTAINER_PREFIX) && !ids.contains(x))
                    .forEach(ids::add);
        }
        for (String cid : ids) {
            runtimeCommand(Duration.ofSeconds(5), "kill", cid, "KILL");
            cleanupContainer(cid);
            deleteTree(stateRoot.resolve(cid));
            deleteTree(bundles.resolve(cid));
            n++;
        }
        return n;
    }
}
