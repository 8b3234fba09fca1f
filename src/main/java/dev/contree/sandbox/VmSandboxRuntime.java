package dev.contree.sandbox;

import dev.contree.cancel.CancelToken;
import dev.contree.linux.SpawnedProcess;
import dev.contree.network.NetworkUsage;
import dev.contree.network.UplinkUid;
import dev.contree.sandbox.vm.Accelerator;
import dev.contree.sandbox.vm.GuestAssets;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import static dev.contree.sandbox.InitChannel.longOf;

/**
 * The vm runtime: every execution in its own QEMU microVM with its own Linux kernel (Debian's cloud kernel, see
 * {@link GuestAssets}), so a sandbox escape needs a guest kernel exploit and then a QEMU one.
 *
 * <p>Per run: virtiofsd (sandboxed in its own namespaces, pivot_root into the rootfs) serves the execution's
 * rootfs, which becomes the guest's root, so writes land in the host directory as with runc/runsc and
 * snapshots, inspect and commit are unchanged. QEMU runs {@code -M microvm} (no PCI, no firmware tables to walk,
 * no emulated legacy devices beyond one serial port for the kernel console) with no network device (a networked run
 * gets one virtio-net device behind QEMU's libslirp, QEMU then running as an uplink uid under the host's egress
 * policy: {@link #NETDEV}), the
 * sandbox's memory as guest RAM (plus a reserve for the guest kernel) and its CPUs as vCPUs, under a seccomp
 * filter ({@code -sandbox on}), as {@code nobody} once set up ({@code -runas}), inside a cgroup of its own with a
 * memory limit. contree-vmboot (the initramfs's /init) mounts the root and execs contree-init, which speaks the
 * usual protocol over a virtio-serial port; the kernel console goes to a bounded tail in the server.
 *
 * <p>The end: contree-init sync()s the guest and writes the main process's result; the server then kills QEMU
 * (nothing in the guest needs an orderly shutdown: the root's data is on the host already). A guest that panics
 * reboots, which ends QEMU ({@code -no-reboot}); one that hangs is killed at the hard deadline.
 */
final class VmSandboxRuntime implements SandboxRuntime {
    private static final Logger log = LoggerFactory.getLogger(VmSandboxRuntime.class);
    static final String PREFIX = "contree-";
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final Path WORKING_DIR = Path.of("/");
    /** Guest RAM on top of the sandbox's memory limit: the guest kernel, its page cache floor, the initramfs. */
    static final long GUEST_KERNEL_RESERVE = 64L << 20;
    /** QEMU's and virtiofsd's own memory on top of the guest RAM, for the host cgroup's limit. */
    static final long HOST_OVERHEAD = 320L << 20;
    /** Boot to the command's start, at most (TCG boots in 2-5 s, KVM in well under 1 s); not part of its timeout. */
    private static final long BOOT_ALLOWANCE_MS = 30_000;
    private volatile long bootAllowanceMs = BOOT_ALLOWANCE_MS;
    private static final int CONSOLE_TAIL = 8192;
    private static final String VIRTIOFSD = "/usr/lib/qemu/virtiofsd";
    static final int VIRTIOFSD_FILES = 65536;
    private static final List<String> CGROUP_CONTROLLERS = List.of("memory", "cpu", "cpuacct", "pids");
    /** microvm without the legacy PIT (the guest keeps time with the TSC and the LAPIC timer; measured in docs/sandbox.md). */
    static final String MACHINE = "microvm,pit=off";
    static final Path RUN_ROOT = Path.of("/run/contree-vm");
    /** QEMU's uids: no user has them (see docs/security.md), one per live VM. */
    static final int VM_UID_BASE = 1_900_000_000, VM_UID_COUNT = 1_000_000;
    private static final java.util.concurrent.atomic.AtomicInteger UID_SEQ =
            new java.util.concurrent.atomic.AtomicInteger(RANDOM.nextInt(VM_UID_COUNT));

    private final RuntimeConfig cfg;
    private final String qemu;
    private final String accelSetting;
    private final Path runs;
    private final Path cache;
    private final byte[] init, vmboot;
    private final long tscKhz;
    /** The kvm group (QEMU needs /dev/kvm), -1 if none. */
    private final int kvmGid;
    private volatile GuestAssets assets;
    /** The machine type's options and the kernel command line (null: the defaults); benchmarks vary them. */
    private volatile String machineOverride, cmdlineOverride;
    private volatile Accelerator accel;
    private final List<MountPoint> mountPoints = List.of(
            new MountPoint("/proc", true), new MountPoint("/sys", true), new MountPoint("/dev", true));
    /** A networked guest also binds its resolv.conf (10.0.2.3, libslirp's forwarder) over the image's, as runc does. */
    private final List<MountPoint> networkedMountPoints = java.util.stream.Stream.concat(mountPoints.stream(),
            java.util.stream.Stream.of(new MountPoint(RESOLV_CONF, false))).toList();
    /** What the spawn event records for a networked run: QEMU's built-in user-mode stack. */
    static final String NETWORK_MODE = "libslirp";

    VmSandboxRuntime(RuntimeConfig cfg, String accelSetting) throws IOException {
        this.cfg = cfg;
        this.qemu = cfg.binary() != null ? cfg.binary().toString() : "qemu-system-x86_64";
        this.accelSetting = accelSetting;
        Path state = cfg.stateDir().toAbsolutePath();
        // Outside the data dir: QEMU (an unprivileged uid) reaches its sockets there and nothing of the data dir.
        this.runs = RUN_ROOT.resolve(Integer.toHexString(state.toString().hashCode()));
        this.cache = state.resolve("vm-cache");
        Files.createDirectories(runs);
        Files.setPosixFilePermissions(RUN_ROOT, PosixFilePermissions.fromString("rwx--x--x"));
        Files.setPosixFilePermissions(runs, PosixFilePermissions.fromString("rwx--x--x"));
        this.init = resource("contree-init");
        this.vmboot = resource("contree-vmboot");
        this.tscKhz = Accelerator.hostTscKhz();
        this.kvmGid = groupId("kvm");
        dev.contree.linux.Reaper.becomeSubreaper();
    }

    private static byte[] resource(String name) throws IOException {
        try (InputStream in = VmSandboxRuntime.class.getResourceAsStream(name)) {
            if (in == null) throw new IOException(name + " missing from the classpath (build it with the Maven build)");
            return in.readAllBytes();
        }
    }

    private static int groupId(String name) {
        try {
            for (String l : Files.readAllLines(Path.of("/etc/group"))) {
                String[] f = l.split(":");
                if (f.length > 2 && f[0].equals(name)) return Integer.parseInt(f[2]);
            }
        } catch (IOException | RuntimeException ignored) {
        }
        return -1;
    }

    /** A uid of its own for each VM's QEMU: two compromised QEMUs cannot signal or ptrace each other. */
    private static int nextVmUid() {
        return VM_UID_BASE + Math.floorMod(UID_SEQ.getAndIncrement(), VM_UID_COUNT);
    }

    @Override public String name() { return "vm"; }

    /** For benchmarks of the boot choices (docs/sandbox.md): another {@code -M} value or kernel command line. */
    void tuneBoot(String machine, String cmdline) {
        machineOverride = machine;
        cmdlineOverride = cmdline;
    }

    /** For tests: how long a boot may take before the run is ended as hung. */
    void bootAllowance(Duration d) { bootAllowanceMs = d.toMillis(); }

    /** Where the runs' sockets live (one directory per live VM). */
    Path runsDir() { return runs; }

    @Override public List<MountPoint> rootfsMountPoints() { return mountPoints; }

    @Override public List<MountPoint> rootfsMountPoints(boolean network) { return network ? networkedMountPoints : mountPoints; }

    @Override public String networkMode() { return cfg.network() == null || !cfg.network().dedicated() ? "none" : NETWORK_MODE; }

    /** The guest kernel and initramfs (fetched and built at first use) and the accelerator (probed once). */
    GuestAssets assets() throws IOException {
        GuestAssets a = assets;
        if (a != null) return a;
        synchronized (this) {
            if (assets == null) {
                assets = GuestAssets.prepare(cache, vmboot, init);
                accel = Accelerator.choose(accelSetting, qemu, assets.kernel());
            }
            return assets;
        }
    }

    Accelerator accelerator() throws IOException {
        assets();
        return accel;
    }

    // ---------------------------------------------------------------- run

    @Override
    public SandboxResult run(SandboxSpec spec, SandboxListener listener, CancelToken cancel) throws IOException {
        if (listener == null) listener = SandboxListener.NONE;
        if (cancel == null) cancel = CancelToken.none();
        long outputCap = spec.outputCap() > 0 ? spec.outputCap() : cfg.defaultOutputCap();
        if (cancel.isCancelled()) return result(-1, 9, true, null);
        if (!Files.isDirectory(spec.rootfs(), LinkOption.NOFOLLOW_LINKS))
            throw new IOException("the sandbox rootfs is not a directory");
        if (spec.network() && cfg.network() == null) return infra("network requested but networking is off on this server");
        GuestAssets guest;
        try {
            guest = assets();
        } catch (IOException e) {
            return infra("the microVM's kernel and initramfs are not available: " + e.getMessage());
        }

        String cid = PREFIX + spec.id();
        Path dir = runs.resolve(cid);
        try {
            Files.createDirectory(dir);
        } catch (FileAlreadyExistsException e) {
            throw new IOException("sandbox id already in use: " + spec.id(), e);
        }
        long mem = pick(spec.memoryBytes(), cfg.defaultMemoryBytes());
        long guestRam = ((mem > 0 ? mem : 1L << 30) + GUEST_KERNEL_RESERVE + (1 << 20) - 1) >> 20 << 20;
        double cpus = spec.cpus() != 0 ? spec.cpus() : cfg.defaultCpus();
        long pids = pick(spec.pidsLimit(), cfg.defaultPidsLimit());
        int vcpus = (int) Math.max(1, Math.min(Runtime.getRuntime().availableProcessors(), Math.ceil(cpus > 0 ? cpus : 1)));

        SpawnedProcess vfs = null, vm = null;
        UplinkUid uplink = null;
        ServerSocketChannel listen = null;
        SocketChannel ch = null;
        Thread demuxThread = null, consoleThread = null, errThread = null;
        ConsoleTail console = new ConsoleTail(CONSOLE_TAIL);
        ByteArrayOutputStream qemuErr = new ByteArrayOutputStream();
        AtomicReference<String> killReason = new AtomicReference<>();
        try {
            List<String> cgroups;
            try {
                cgroups = makeCgroups(cid, guestRam + HOST_OVERHEAD, cpus);
            } catch (NoCgroups e) {
                return infra(e.getMessage());
            }
            // Networked: QEMU runs as an uplink uid, so the host's egress policy (nft, by socket owner) covers every
            // connection its libslirp opens for the guest; the uid goes back to the pool only once QEMU is gone.
            if (spec.network()) {
                try {
                    uplink = cfg.network().reserveUplinkUid(spec.id());
                } catch (IOException | RuntimeException e) {
                    return infra("no network for the VM: " + e.getMessage());
                }
            }
            int uid = uplink != null ? uplink.uid() : nextVmUid();
            Files.setAttribute(dir, "unix:uid", uid);
            Files.setAttribute(dir, "unix:gid", uid);
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
            Path vfsSock = dir.resolve("fs.sock"), ctlSock = dir.resolve("ctl.sock");
            listen = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            listen.bind(UnixDomainSocketAddress.of(ctlSock));
            listen.configureBlocking(false);
            Files.setAttribute(ctlSock, "unix:uid", uid);

            long t0 = System.nanoTime();
            // virtiofsd: root (it serves every owner's files), but in its own mount/pid/net namespaces with the rootfs
            // as its root: only that tree is reachable through it.
            vfs = SpawnedProcess.start(inCgroups(cgroups, List.of(VIRTIOFSD, "--socket-path=" + vfsSock,
                    "-o", "source=" + spec.rootfs().toAbsolutePath(), "-o", "sandbox=namespace", "-o", "cache=auto",
                    // It holds a descriptor per inode the guest has looked up: room for big images, and a bound.
                    "-o", "log_level=err", "--rlimit-nofile=" + VIRTIOFSD_FILES)), WORKING_DIR, SpawnedProcess.Stderr.TO_STDOUT);
            SpawnedProcess fs = vfs;
            Thread.ofVirtual().name("virtiofsd-" + cid).start(() -> drain(fs.getInputStream(), new ByteArrayOutputStream()));
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (!Files.exists(vfsSock, LinkOption.NOFOLLOW_LINKS)) {
                if (!vfs.isAlive()) return infra("virtiofsd failed to start (exit " + vfs.exitValue() + ")");
                if (System.nanoTime() > until) return infra("virtiofsd did not create its socket in 10 s");
                Thread.sleep(2);
            }
            Files.setAttribute(vfsSock, "unix:uid", uid);

            vm = SpawnedProcess.start(qemuCommand(cgroups, uid, guest, guestRam, vcpus, vfsSock, ctlSock,
                    uplink == null ? null : uplink.upstreamResolvConf()), WORKING_DIR, SpawnedProcess.Stderr.PIPE);
            SpawnedProcess q = vm;
            q.getOutputStream().close();
            consoleThread = Thread.ofVirtual().name("vm-console-" + cid).start(() -> console.drain(q.getInputStream()));
            errThread = Thread.ofVirtual().name("vm-err-" + cid).start(() -> drain(q.getErrorStream(), qemuErr));
            cancel.onCancel(() -> stop(q, killReason, "cancel"));

            until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while ((ch = listen.accept()) == null) { // QEMU connects while it sets up, before the guest runs
                if (!vm.isAlive()) {
                    if (cancel.isCancelled()) return result(-1, 9, true, null); // killed by the cancel, not a failure
                    waitFor(vm, 1000);
                    errThread.join(1000);
                    return infra("QEMU failed to start: " + tail(qemuErr.toString(StandardCharsets.UTF_8).strip(), 2000));
                }
                if (System.nanoTime() > until) return infra("QEMU did not connect its channel in 10 s");
                Thread.sleep(2);
            }
            ch.configureBlocking(true);
            OutputStream toInit = Channels.newOutputStream(ch);
            EndOfRun fromInit = new EndOfRun(Channels.newInputStream(ch));
            // Read by contree-vmboot before anything else; then the channel is contree-init's fd 0 and 1.
            toInit.write(bootFrame(spec, pids, uplink != null));

            java.util.concurrent.CountDownLatch booted = new java.util.concurrent.CountDownLatch(1);
            // The guest's eth0 counters, which contree-init reports with the main process's result.
            AtomicReference<NetworkUsage> traffic = new AtomicReference<>(NetworkUsage.UNKNOWN);
            InitChannel demux = new InitChannel(toInit, fromInit, new BootWatch(listener, booted), outputCap,
                    cfg.defaultOutputCap(), InitChannel.newToken(), r -> {
                        if (r.containsKey("net_tx_bytes"))
                            traffic.set(new NetworkUsage(longOf(r, "net_tx_bytes", -1), longOf(r, "net_rx_bytes", -1)));
                        return usage(r);
                    }, cid);
            demux.whenMainEnded(() -> { // synced before the result: nothing left to wait for
                fromInit.ended = true;
                q.destroyForcibly();
            });
            demux.whenTampered(() -> stop(q, killReason, "its report channel was tampered with"));
            demux.start(spec.stdin(), spec.stdinFile(), spec.keepStdinOpen());
            demuxThread = Thread.ofVirtual().name("vm-out-" + cid).start(demux::demux);

            // A guest that hangs while it boots never starts the command, whatever the command's timeout (none too).
            long bootStart = System.nanoTime();
            while (!booted.await(50, TimeUnit.MILLISECONDS) && vm.isAlive()) {
                if (System.nanoTime() - bootStart > TimeUnit.MILLISECONDS.toNanos(bootAllowanceMs)) {
                    stop(vm, killReason, "the guest did not start the command within " + bootAllowanceMs / 1000
                            + " s: its boot hung");
                    break;
                }
            }
            long timeoutMs = spec.timeout() == null ? 0 : spec.timeout().toMillis();
            long hardMs = timeoutMs > 0 ? timeoutMs + cfg.killGrace().toMillis() : -1;
            if (!waitFor(vm, hardMs)) {
                stop(vm, killReason, "hard deadline: the guest did not finish " + (hardMs / 1000) + " s after its command started");
                waitFor(vm, 10_000);
            }
            if (!waitFor(vm, 0)) vm.destroyForcibly();
            ch.close(); // the demux's read ends even if something else holds QEMU's end
            demuxThread.join(5_000);
            consoleThread.join(2_000);
            errThread.join(2_000);
            demux.finish(cancel.isCancelled());
            double elapsed = (System.nanoTime() - t0) / 1e9;
            SandboxResult r = withHostFigures(buildResult(demux, vm, console, qemuErr, killReason.get(), cancel, elapsed), cid);
            return uplink == null ? r : r.withNetwork(traffic.get());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while running sandbox " + cid, e);
        } finally {
            for (SpawnedProcess p : new SpawnedProcess[]{vm, vfs}) {
                if (p == null) continue;
                if (p.isAlive()) p.destroyForcibly();
                waitFor(p, 5000);
                for (java.io.Closeable c : List.<java.io.Closeable>of(p.getOutputStream(), p.getInputStream(), p.getErrorStream())) {
                    try { c.close(); } catch (IOException ignored) { }
                }
            }
            if (ch != null) try { ch.close(); } catch (IOException ignored) { }
            if (listen != null) try { listen.close(); } catch (IOException ignored) { }
            if (uplink != null) release(uplink, vm);
            removeCgroups(cid);
            deleteTree(dir);
        }
    }

    /**
     * The uplink uid back to the pool once QEMU (its only process: QEMU spawns nothing) is gone; at once when it is
     * dead already, else when it exits (a QEMU stuck in the kernel keeps its uid, so no other VM shares it).
     */
    private static void release(UplinkUid uplink, SpawnedProcess vm) {
        if (vm == null || !vm.isAlive()) {
            uplink.close();
            return;
        }
        log.warn("QEMU {} still alive after SIGKILL: its uplink uid {} is released when it exits", vm.pid(), uplink.uid());
        vm.onExit().thenRun(uplink::close);
    }

    /**
     * sh (root) joins the cgroups and opens the kernel and initramfs as fds 3 and 4, then setpriv drops to the VM's
     * uid with no capability and no_new_privs, then QEMU: it never has root, reads its kernel through /dev/fd (no
     * path into the data dir) and finds only its own run directory writable. Networked ({@code upstream} non-null):
     * all of it in a private mount namespace where {@code /etc/resolv.conf} is the policy's resolvers, which
     * libslirp forwards the guest's DNS to (as slirp4netns's launcher does); the pid stays the same throughout
     * (unshare, sh and setpriv exec).
     */
    private List<String> qemuCommand(List<String> cgroups, int uid, GuestAssets guest, long guestRam, int vcpus,
                                     Path vfsSock, Path ctlSock, Path upstream) {
        StringBuilder s = new StringBuilder();
        for (String p : cgroups) s.append("echo $$ > '").append(p).append("' || exit 125; ");
        if (upstream != null) {
            s.append("mount --bind '").append(upstream).append("' /etc/resolv.conf || exit 125; ");
            s.append("ulimit -n ").append(NETWORKED_FILES).append(" || exit 125; ");
        }
        s.append("exec 3< '").append(guest.kernel()).append("' 4< '").append(guest.initramfs()).append("' || exit 125; ");
        s.append("exec \"$@\"");
        List<String> a = new ArrayList<>();
        if (upstream != null) a.addAll(List.of("unshare", "--mount", "--propagation", "private", "--"));
        a.addAll(List.of("/bin/sh", "-c", s.toString(), "sh", "setpriv", "--reuid=" + uid,
                "--regid=" + uid, kvmGid >= 0 ? "--groups=" + kvmGid : "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all", "--no-new-privs", "--"));
        a.addAll(qemuArgs(guestRam, vcpus, vfsSock, ctlSock, upstream != null));
        return a;
    }

    /**
     * The guest's network (only when networked; otherwise it has no network device at all): libslirp in QEMU, the
     * guest 10.0.2.15/24 behind gateway 10.0.2.2 with DNS at 10.0.2.3, IPv4 only, nothing forwarded in (no
     * hostfwd/guestfwd, no TFTP or SMB). Where its connections may go is the host firewall's business (QEMU runs as
     * an uplink uid): the gateway's alias for the host's loopback is one of the local addresses it refuses.
     */
    /**
     * A networked QEMU's descriptors: libslirp holds one socket per connection the guest opens, so this bounds
     * them (as slirp4netns's 4,096), with room for QEMU's own (memfd, vhost-user, chardevs, eventfds: tens).
     */
    static final int NETWORKED_FILES = 4096 + 256;

    static final String NETDEV = "user,id=n0,ipv6=off,restrict=off,net=10.0.2.0/24,host=10.0.2.2,dns=10.0.2.3,dhcpstart=10.0.2.15";

    private List<String> qemuArgs(long guestRam, int vcpus, Path vfsSock, Path ctlSock, boolean network) {
        List<String> a = new ArrayList<>(List.of(qemu, "-M", machineOverride != null ? machineOverride : MACHINE, "-nodefaults",
                "-no-user-config", "-display", "none", "-no-reboot"));
        a.addAll(accel.qemuArgs());
        long mib = guestRam >> 20;
        a.addAll(List.of("-m", mib + "M", "-smp", Integer.toString(vcpus),
                // virtiofs needs the guest RAM shared with virtiofsd: a memfd, nothing on disk.
                "-object", "memory-backend-memfd,id=mem,size=" + mib + "M,share=on", "-numa", "node,memdev=mem",
                "-kernel", "/dev/fd/3", "-initrd", "/dev/fd/4", "-append", kernelCmdline(),
                "-global", "virtio-mmio.force-legacy=false",
                "-chardev", "socket,id=fs,path=" + vfsSock, "-device", "vhost-user-fs-device,chardev=fs,tag=rootfs",
                "-chardev", "socket,id=ctl,path=" + ctlSock, "-device", "virtio-serial-device,max_ports=2",
                "-device", "virtserialport,chardev=ctl,name=contree",
                "-serial", "stdio"));
        if (network) a.addAll(List.of("-netdev", NETDEV, "-device", "virtio-net-device,netdev=n0"));
        a.addAll(List.of(
                "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"));
        return a;
    }

    /**
     * Each entry saves boot time or noise (docs/sandbox.md has the measurements): the console on the one serial
     * port, quiet (panics and oopses still print), a panic or reboot ends QEMU at once (panic=-1, reboot=t with
     * -no-reboot), the host's TSC frequency (without it the guest can hang calibrating under TCG), no PCI probe.
     */
    String kernelCmdline() {
        if (cmdlineOverride != null) return cmdlineOverride.replace("@TSC@", Long.toString(tscKhz));
        StringBuilder s = new StringBuilder("console=ttyS0 quiet loglevel=1 panic=-1 reboot=t pci=off rdinit=/init");
        if (tscKhz > 0) s.append(" tsc_early_khz=").append(tscKhz);
        return s.toString();
    }

    /** 'B' frame for contree-vmboot: hostname, max tasks, network (1/0), argc, contree-init's arguments, the command's env. */
    private static byte[] bootFrame(SandboxSpec spec, long pids, boolean network) {
        List<String> parts = new ArrayList<>();
        parts.add(spec.hostname());
        parts.add(Long.toString(Math.max(0, pids)));
        parts.add(network ? "1" : "0");
        List<String> args = InitChannel.commandLine("-V", spec);
        parts.add(Integer.toString(args.size()));
        parts.addAll(args);
        spec.env().forEach((k, v) -> parts.add(k + "=" + v));
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (String p : parts) {
            b.writeBytes(p.getBytes(StandardCharsets.UTF_8));
            b.write(0);
        }
        byte[] pl = b.toByteArray();
        if (pl.length > 1 << 20) throw new IllegalArgumentException("command, arguments and environment exceed 1 MiB");
        byte[] f = new byte[5 + pl.length];
        f[0] = 'B';
        f[1] = (byte) (pl.length >>> 24);
        f[2] = (byte) (pl.length >>> 16);
        f[3] = (byte) (pl.length >>> 8);
        f[4] = (byte) pl.length;
        System.arraycopy(pl, 0, f, 5, pl.length);
        return f;
    }

    private static void stop(Process p, AtomicReference<String> reason, String why) {
        reason.compareAndSet(null, why);
        p.destroyForcibly();
    }

    /**
     * The channel from QEMU. Once the main process's result is in, the server kills QEMU, which may reset the socket
     * (bytes still unread on its side): the end of the stream then, not an error that would void the result.
     */
    private static final class EndOfRun extends java.io.FilterInputStream {
        volatile boolean ended;

        EndOfRun(InputStream in) { super(in); }

        @Override public int read() throws IOException {
            try { return super.read(); } catch (IOException e) { if (ended) return -1; throw e; }
        }

        @Override public int read(byte[] b, int off, int len) throws IOException {
            try { return super.read(b, off, len); } catch (IOException e) { if (ended) return -1; throw e; }
        }
    }

    /** Forwards everything; notes the main process's start (the end of the boot). */
    private record BootWatch(SandboxListener to, java.util.concurrent.CountDownLatch booted) implements SandboxListener {
        @Override public void onStart(int pid) { booted.countDown(); to.onStart(pid); }
        @Override public void onStdout(byte[] b, int off, int len) { to.onStdout(b, off, len); }
        @Override public void onStderr(byte[] b, int off, int len) { to.onStderr(b, off, len); }
        @Override public void onOutputTruncated(String stream, long emitted, long dropped) { to.onOutputTruncated(stream, emitted, dropped); }
        @Override public void onLive(LiveSandbox live) { to.onLive(live); }
        @Override public void onSubprocessStart(int spid, int pid, ProcessSpec spec) { to.onSubprocessStart(spid, pid, spec); }
        @Override public void onSubprocessOutput(int spid, boolean stderr, byte[] b, int off, int len) {
            to.onSubprocessOutput(spid, stderr, b, off, len);
        }
        @Override public void onSubprocessExit(ProcessExit exit) { to.onSubprocessExit(exit); }
    }

    // ---------------------------------------------------------------- results

    private SandboxResult buildResult(InitChannel d, Process vm, ConsoleTail console, ByteArrayOutputStream qemuErr,
                                      String killReason, CancelToken cancel, double elapsedHost) {
        return d.finalResult(cancel, elapsedHost, channelError -> {
            String con = console.text();
            String why;
            if (con.contains("Kernel panic")) {
                why = "the guest kernel panicked: " + lineWith(con, "Kernel panic")
                        + (killReason != null ? " (and the VM was killed: " + killReason + ")" : "");
            } else if (killReason != null) {
                why = "the VM was killed (" + killReason + ")";
            } else if (vm.exitValue() == 128 + 9) {
                why = "QEMU was killed by SIGKILL, most likely by the host OOM killer for exceeding the VM's memory limit";
            } else {
                why = "the VM ended without a result (QEMU exit " + vm.exitValue() + ")";
            }
            if (channelError != null) why += "; channel: " + channelError;
            String err = qemuErr.toString(StandardCharsets.UTF_8).strip();
            if (!err.isEmpty()) why += "; QEMU: " + tail(err, 1000);
            if (!con.isBlank()) why += "; console: " + tail(con.strip(), 2000);
            return why;
        });
    }

    /**
     * The whole sandbox's figures, as runc's are its container cgroup's: here the VM's host cgroup (QEMU and
     * virtiofsd: the guest's RAM as it touched it, its boot and emulation CPU), read before the cgroups go.
     */
    private SandboxResult withHostFigures(SandboxResult r, String cid) {
        long mem = readLong(Path.of("/sys/fs/cgroup/memory", cfg.cgroupParent(), cid, "memory.max_usage_in_bytes"));
        long cpuNs = readLong(Path.of("/sys/fs/cgroup/cpuacct", cfg.cgroupParent(), cid, "cpuacct.usage"));
        ResourceUsage u = r.usage();
        ResourceUsage v = new ResourceUsage(u.userCpuSeconds(), u.systemCpuSeconds(), u.maxRssKiB(), u.minorFaults(),
                u.majorFaults(), u.blockInput(), u.blockOutput(), u.voluntarySwitches(), u.involuntarySwitches(), u.signals(),
                u.swaps(), u.elapsedSeconds(), mem, cpuNs >= 0 ? cpuNs / 1e9 : -1, u.oomKills(), u.pidsLimitHits());
        return new SandboxResult(r.exitCode(), r.signal(), r.timedOut(), r.coreDump(), r.pid(), v, r.stdout(), r.stdoutTruncated(),
                r.stdoutTotalBytes(), r.stderr(), r.stderrTruncated(), r.stderrTotalBytes(), r.cancelled(), r.execError(),
                r.infraError());
    }

    private static long readLong(Path p) {
        try {
            return Long.parseLong(Files.readString(p).strip());
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    private static String lineWith(String text, String needle) {
        int i = text.indexOf(needle);
        int end = text.indexOf('\n', i);
        return text.substring(i, end < 0 ? text.length() : end).strip();
    }

    /** The guest's own wait4 figures (a real kernel: all of them); the cgroup figures are the host's (withHostFigures). */
    private ResourceUsage usage(Map<String, String> r) {
        return new ResourceUsage(longOf(r, "utime_us", -1) / 1e6, longOf(r, "stime_us", -1) / 1e6,
                longOf(r, "maxrss_kb", -1), longOf(r, "minflt", -1), longOf(r, "majflt", -1), longOf(r, "inblock", -1),
                longOf(r, "oublock", -1), longOf(r, "nvcsw", -1), longOf(r, "nivcsw", -1), longOf(r, "nsignals", -1),
                longOf(r, "nswap", -1), longOf(r, "elapsed_ns", -1) / 1e9, -1, -1, -1, -1);
    }

    private static SandboxResult infra(String msg) { return result(-1, -1, false, msg); }

    private static SandboxResult result(int exit, int signal, boolean cancelled, String infra) {
        return new SandboxResult(exit, signal, false, false, -1, ResourceUsage.UNKNOWN, new byte[0], false, 0, new byte[0],
                false, 0, cancelled, null, infra);
    }

    // ---------------------------------------------------------------- host cgroups

    /** memory (guest RAM + QEMU's own), cpu (the quota), cpuacct and pids for QEMU and virtiofsd; the cgroup.procs files. */
    private List<String> makeCgroups(String cid, long memLimit, double cpus) throws IOException {
        // Fail closed: a VM without its memory limit could take the host's memory (guest RAM is allocated on touch).
        if (!Files.isDirectory(Path.of("/sys/fs/cgroup/memory")))
            throw new NoCgroups("the vm runtime needs the cgroup v1 memory hierarchy (/sys/fs/cgroup/memory) to bound QEMU;"
                    + " cgroup v2-only hosts are not supported yet");
        List<String> procs = new ArrayList<>();
        for (String c : CGROUP_CONTROLLERS) {
            Path root = Path.of("/sys/fs/cgroup", c);
            if (!Files.isDirectory(root)) continue;
            Path dir = root.resolve(cfg.cgroupParent()).resolve(cid);
            Files.createDirectories(dir);
            switch (c) {
                case "memory" -> {
                    write(dir.resolve("memory.limit_in_bytes"), Long.toString(memLimit));
                    Path sw = dir.resolve("memory.memsw.limit_in_bytes");
                    if (Files.exists(sw)) write(sw, Long.toString(memLimit));
                }
                case "cpu" -> {
                    if (cpus > 0) {
                        write(dir.resolve("cpu.cfs_period_us"), "100000");
                        write(dir.resolve("cpu.cfs_quota_us"), Long.toString(Math.max(1000, Math.round(cpus * 100000))));
                    }
                }
                case "pids" -> write(dir.resolve("pids.max"), "512"); // QEMU's and virtiofsd's threads, never the guest's
                default -> { }
            }
            procs.add(dir.resolve("cgroup.procs").toString());
        }
        return procs;
    }

    private static void write(Path p, String v) throws IOException { Files.writeString(p, v); }

    private static final class NoCgroups extends IOException {
        NoCgroups(String msg) { super(msg); }
    }

    /** Joins the cgroups before exec, so QEMU's first allocation is already charged and limited. */
    private static List<String> inCgroups(List<String> procs, List<String> argv) {
        if (procs.isEmpty()) return argv;
        StringBuilder s = new StringBuilder();
        for (String p : procs) s.append("echo $$ > '").append(p).append("' || exit 125; ");
        s.append("exec \"$@\"");
        List<String> a = new ArrayList<>(List.of("/bin/sh", "-c", s.toString(), "sh"));
        a.addAll(argv);
        return a;
    }

    private void removeCgroups(String cid) {
        for (int attempt = 0; attempt < 5; attempt++) {
            boolean left = false;
            for (String c : CGROUP_CONTROLLERS) {
                Path dir = Path.of("/sys/fs/cgroup", c, cfg.cgroupParent(), cid);
                if (!Files.isDirectory(dir)) continue;
                try { Files.delete(dir); } catch (IOException e) { left = true; }
            }
            if (!left) return;
            try { Thread.sleep(20L << attempt); } catch (InterruptedException e) { Thread.currentThread().interrupt(); return; }
        }
        log.warn("cgroups of {} could not be removed", cid);
    }

    // ---------------------------------------------------------------- helpers

    /** The last {@code cap} bytes of the console (a flooding guest costs a bounded buffer, however much it writes). */
    static final class ConsoleTail {
        private final byte[] ring;
        private long total;

        ConsoleTail(int cap) { ring = new byte[cap]; }

        void drain(InputStream in) {
            byte[] buf = new byte[8192];
            try (in) {
                int n;
                while ((n = in.read(buf)) > 0) add(buf, n);
            } catch (IOException ignored) {
            }
        }

        synchronized void add(byte[] b, int n) {
            for (int i = 0; i < n; i++) ring[(int) ((total + i) % ring.length)] = b[i];
            total += n;
        }

        synchronized String text() {
            int len = (int) Math.min(total, ring.length);
            byte[] out = new byte[len];
            long start = total - len;
            for (int i = 0; i < len; i++) out[i] = ring[(int) ((start + i) % ring.length)];
            return new String(out, StandardCharsets.UTF_8).replaceAll("[\\p{Cntrl}&&[^\n\t]]", "");
        }
    }

    private static void drain(InputStream in, ByteArrayOutputStream keep) {
        byte[] buf = new byte[8192];
        try (in) {
            int n;
            while ((n = in.read(buf)) > 0) {
                synchronized (keep) {
                    int room = 16384 - keep.size();
                    if (room > 0) keep.write(buf, 0, Math.min(room, n));
                }
            }
        } catch (IOException ignored) {
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

    private static String tail(String s, int n) { return s.length() <= n ? s : "..." + s.substring(s.length() - n); }

    private static void deleteTree(Path p) { RunFiles.deleteTree(p, log); }

    /**
     * After a crash of the server: QEMU and virtiofsd processes of old runs (found by their run directory on their
     * command line) are killed, their directories and cgroups removed.
     */
    @Override
    public int cleanupStale() throws IOException {
        List<String> ids;
        try (Stream<Path> s = Files.list(runs)) {
            ids = s.map(p -> p.getFileName().toString()).filter(x -> x.startsWith(PREFIX)).toList();
        }
        if (ids.isEmpty()) return 0;
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            procs.filter(p -> p.getFileName().toString().matches("\\d+")).forEach(p -> {
                try {
                    String cmd = new String(Files.readAllBytes(p.resolve("cmdline")), StandardCharsets.UTF_8);
                    if (cmd.contains(runs + "/" + PREFIX)) ProcessHandle.of(Long.parseLong(p.getFileName().toString()))
                            .ifPresent(ProcessHandle::destroyForcibly);
                } catch (IOException | RuntimeException ignored) {
                }
            });
        }
        for (String cid : ids) {
            removeCgroups(cid);
            deleteTree(runs.resolve(cid));
        }
        return ids.size();
    }
}
