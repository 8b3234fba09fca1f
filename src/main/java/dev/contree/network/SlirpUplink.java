package dev.contree.network;

import dev.contree.linux.Linux;
import dev.contree.linux.SpawnedProcess;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One sandbox's network namespace and its user-mode uplink, both run as the sandbox's own uplink uid:
 *
 * <ol>
 *   <li>the <b>holder</b>, {@code unshare --user --map-root-user --net cat}: a new user namespace (its root is that
 *       uid, and nothing else is mapped) owning a new network namespace with only {@code lo}. It lives until its
 *       stdin closes, i.e. until {@link #close} or until the server dies;</li>
 *   <li><b>slirp4netns</b> in that user namespace but in the host's network namespace: it makes the {@code eth0} tap in
 *       the sandbox's namespace (10.0.2.100/24, gateway 10.0.2.2, DNS forwarder 10.0.2.3) and turns the sandbox's
 *       packets into ordinary sockets of its own on the host, which {@link Firewall} filters by their owner. It
 *       confines itself once set up ({@code --enable-sandbox}: empty root with read-only {@code /etc} and {@code /run},
 *       only {@code CAP_NET_BIND_SERVICE} left, in its user namespace; {@code --enable-seccomp}), never connects to the
 *       host's loopback ({@code --disable-host-loopback}), forwards nothing inbound, and exits when its stdin closes.
 *       Its launcher (as root, in a private mount namespace) gives it a {@code /dev/net/tun} node only its uid may
 *       open and the server's resolv.conf for the upstream resolvers.</li>
 * </ol>
 *
 * The runtime joins the namespace through a descriptor the server holds ({@code /proc/<server>/fd/<n>}), opened
 * while the holder was known to be alive, so no recycled pid can ever stand in for it.
 */
final class SlirpUplink implements SandboxNetwork {
    private static final Logger log = LoggerFactory.getLogger(SlirpUplink.class);
    private static final Path ROOT = Path.of("/");
    private static final Duration START_TIMEOUT = Duration.ofSeconds(10), EXIT_WAIT = Duration.ofSeconds(2);
    static final int MTU = 65520;
    /**
     * What a sandbox can make its uplink hold: sockets (one per connection it opens; the server's own limit is far
     * higher), address space (slirp4netns maps ~6 MiB and grows with connections' buffers) and processes of its uid
     * (the holder, slirp4netns and its short-lived setup child). Past them the sandbox's new connections fail; nothing
     * of the host's or another sandbox's is touched. CPU, memory and processes are bounded by its cgroup too
     * ({@link UplinkCgroups}).
     */
    static final long MAX_FILES = 4096, MAX_ADDRESS_SPACE = 512L << 20, MAX_PROCESSES = 16;
    private static final String HOST_NET = readLink(Path.of("/proc/self/ns/net"));

    /**
     * Runs as root: $1 uid, $2 holder pid, $3 resolv.conf for slirp4netns. It prepares its mount namespace while the
     * holder makes its namespaces, then waits for the server's go (a line on stdin, which then stays slirp4netns's exit
     * fd). The tun node is the uid's alone; slirp4netns is entered into the holder's user namespace (where its uid is
     * root, so --enable-sandbox works) keeping its credentials; fd 3 (our stdout) gets the ready byte, slirp4netns's
     * own chatter goes to stderr.
     */
    private static final String LAUNCH = String.join(" && ",
            "mount -t tmpfs -o mode=0755,size=16k,nosuid,noexec contree-tun /dev/net",
            "mknod -m 0600 /dev/net/tun c 10 200",
            "chown \"$1:$1\" /dev/net/tun",
            "mount --bind \"$3\" /etc/resolv.conf",
            "read -r go",
            "exec prlimit --nofile=" + MAX_FILES + " --as=" + MAX_ADDRESS_SPACE + " --nproc=" + MAX_PROCESSES + " --"
                    + " setpriv --reuid=\"$1\" --regid=\"$1\" --clear-groups --inh-caps=-all --bounding-set=-all --"
                    + " nsenter --preserve-credentials --user=\"/proc/$2/ns/user\" --"
                    + " slirp4netns --configure --mtu=" + MTU + " --disable-host-loopback --enable-sandbox --enable-seccomp"
                    + " --exit-fd=0 --ready-fd=3 --netns-type=path \"/proc/$2/ns/net\" eth0 3>&1 1>&2");

    private final int uid;
    private final UplinkCgroups.Cgroup cgroup;
    private final Process holder;
    private final Process slirp;
    private final int nsFd;
    private final Path nsPath;
    private final Path resolvConf;
    private final Runnable onClosed;
    private final AtomicBoolean closed = new AtomicBoolean();

    private SlirpUplink(int uid, UplinkCgroups.Cgroup cgroup, Process holder, Process slirp, int nsFd, Path resolvConf, Runnable onClosed) {
        this.uid = uid;
        this.cgroup = cgroup;
        this.holder = holder;
        this.slirp = slirp;
        this.nsFd = nsFd;
        this.nsPath = Path.of("/proc", Long.toString(ProcessHandle.current().pid()), "fd", Integer.toString(nsFd));
        this.resolvConf = resolvConf;
        this.onClosed = onClosed;
    }

    /**
     * Starts the holder and slirp4netns for {@code uid} in {@code cgroup} (each joins it before anything else runs);
     * {@code onClosed} runs once both are gone and the cgroup with them.
     *
     * @param upstream   the resolv.conf slirp4netns forwards DNS queries by
     * @param resolvConf the one the sandbox gets
     */
    static SlirpUplink start(int uid, UplinkCgroups.Cgroup cgroup, Path upstream, Path resolvConf, Runnable onClosed) throws IOException {
        Process holder = null, slirp = null;
        int fd = -1;
        String join = joinCgroup(cgroup);
        try {
            List<String> holderArgv = new ArrayList<>(List.of("/bin/sh", "-c", join + "exec \"$@\"", "sh"));
            holderArgv.addAll(List.of("setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--", "unshare", "--user", "--map-root-user", "--net", "--", "cat"));
            holder = SpawnedProcess.start(holderArgv, ROOT, SpawnedProcess.Stderr.TO_STDOUT);
            Bounded holderOut = Bounded.drain(holder.getInputStream(), "uplink-holder-" + uid);
            long pid = holder.pid();
            // Both start at once: the launcher's mounts overlap the holder's unshare; slirp4netns itself waits for the go.
            slirp = SpawnedProcess.start(List.of("unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", "set -e && " + join + LAUNCH,
                    "sh", Integer.toString(uid), Long.toString(pid), upstream.toString()), ROOT, SpawnedProcess.Stderr.PIPE);
            Bounded slirpErr = Bounded.drain(slirp.getErrorStream(), "uplink-slirp-" + uid);
            awaitOwnNamespace(holder, pid, holderOut);
            try {
                slirp.getOutputStream().write('\n');
                slirp.getOutputStream().flush();
            } catch (IOException e) {
                throw new IOException("the uplink's launcher failed: " + slirpErr.text(), e);
            }
            awaitReady(slirp, holder, slirpErr);

            fd = Linux.open(Path.of("/proc", Long.toString(pid), "ns", "net"), Linux.O_RDONLY, 0);
            // Opened while the holder lives (it is our child: its pid cannot be reused before we reap it), and not ours.
            if (!holder.isAlive()) throw new IOException("the uplink's namespace holder exited: " + holderOut.text());
            String ns = readLink(Path.of("/proc/self/fd", Integer.toString(fd)));
            if (ns == null || ns.equals(HOST_NET)) throw new IOException("the uplink's namespace is the host's");
            SlirpUplink up = new SlirpUplink(uid, cgroup, holder, slirp, fd, resolvConf, onClosed);
            fd = -1;
            return up;
        } catch (IOException | RuntimeException e) {
            if (fd >= 0) Linux.close(fd);
            stop(holder, slirp);
            cgroup.remove();
            onClosed.run();
            throw e;
        }
    }

    /**
     * Shell commands that move the shell running them into the uplink's cgroup, each hierarchy's in turn; what it then
     * starts or execs is in the cgroup from its first instruction. (The paths are the server's: validated by
     * {@link UplinkCgroups}, quoted anyway.)
     */
    static String joinCgroup(UplinkCgroups.Cgroup cgroup) {
        StringBuilder b = new StringBuilder();
        for (Path procs : cgroup.procsFiles()) b.append("echo $$ > '").append(procs).append("' && ");
        return b.toString();
    }

    /**
     * Until the holder is in a network namespace of its own and runs {@code cat} (a few ms: three execs and an
     * unshare). Not as soon as the namespace appears: {@code unshare} writes the user namespace's uid map only after
     * that, and a slirp4netns that came in between could not open the namespace (seen about once in 150 uplinks
     * started 40 at a time: "existing path expected when --netns-type=path: Permission denied").
     */
    private static void awaitOwnNamespace(Process holder, long pid, Bounded out) throws IOException {
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        Path ns = Path.of("/proc", Long.toString(pid), "ns", "net"), comm = Path.of("/proc", Long.toString(pid), "comm");
        while (true) {
            String now = readLink(ns);
            if (now != null && !now.equals(HOST_NET) && "cat".equals(readComm(comm)) && holder.isAlive()) return;
            if (!holder.isAlive()) throw new IOException("the uplink's namespace holder failed: " + out.text());
            if (System.nanoTime() > deadline) throw new IOException("the uplink's namespace holder did not start in " + START_TIMEOUT.toSeconds() + " s");
            sleep(Duration.ofNanos(200_000));
        }
    }

    /** Until slirp4netns writes its ready byte, within {@link #START_TIMEOUT} (else both are killed). */
    private static void awaitReady(Process slirp, Process holder, Bounded err) throws IOException {
        AtomicBoolean done = new AtomicBoolean();
        Thread watchdog = Thread.ofVirtual().name("uplink-start-watchdog").start(() -> {
            try {
                Thread.sleep(START_TIMEOUT);
            } catch (InterruptedException e) {
                return;
            }
            if (!done.get()) {
                slirp.destroyForcibly();
                holder.destroyForcibly();
            }
        });
        int b;
        try (InputStream ready = slirp.getInputStream()) {
            b = ready.read(); // -1 when it died first; the stream is only for this byte
        } finally {
            done.set(true);
            watchdog.interrupt();
        }
        if (b != '1') {
            waitFor(slirp, EXIT_WAIT);
            throw new IOException("slirp4netns did not come up: " + err.text());
        }
    }

    @Override public Path namespace() { return nsPath; }

    @Override public Path resolvConf() { return resolvConf; }

    @Override public boolean dedicated() { return true; }

    /** The tap's counters, read in the sandbox's namespace through the holder. */
    @Override
    public NetworkUsage usage() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc", Long.toString(holder.pid()), "net", "dev"))) {
                int colon = line.indexOf(':');
                if (colon < 0 || !line.substring(0, colon).strip().equals("eth0")) continue;
                String[] f = line.substring(colon + 1).strip().split("\\s+");
                return new NetworkUsage(Long.parseLong(f[8]), Long.parseLong(f[0]), cpuMillis());
            }
        } catch (IOException | RuntimeException e) {
            log.debug("uplink counters of uid {}: {}", uid, e.toString());
        }
        return new NetworkUsage(-1, -1, cpuMillis());
    }

    private Long cpuMillis() {
        long ms = cgroup.cpuMillis();
        return ms < 0 ? null : ms;
    }

    /**
     * Ends both processes and the namespace with them: the holder's stdin closes (it exits at once) and slirp4netns is
     * killed (it holds nothing worth a clean exit, and leaving by its exit fd takes it ~20 ms).
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) return;
        Linux.close(nsFd);
        // Killed now; reaped in the background: the kernel takes 15-20 ms to unregister the tap when its last
        // descriptor goes, and the sandbox's result need not wait for that. The uid is free once both are gone.
        Thread.ofVirtual().name("uplink-stop-" + uid).start(() -> {
            stop(holder, slirp);
            cgroup.remove(); // before the uid is free: the cgroup is named after it
            onClosed.run();
        });
    }

    int uid() { return uid; }

    UplinkCgroups.Cgroup cgroup() { return cgroup; }

    /** The slirp4netns process and the namespace holder (for measurements). */
    long[] pids() { return new long[] {slirp.pid(), holder.pid()}; }

    private static void stop(Process holder, Process slirp) {
        for (Process p : new Process[] {slirp, holder}) {
            if (p == null) continue;
            try {
                p.getOutputStream().close(); // slirp4netns's exit fd, the holder's input
            } catch (IOException ignored) {
            }
        }
        if (slirp != null) slirp.destroyForcibly();
        for (Process p : new Process[] {slirp, holder}) {
            if (p == null || waitFor(p, EXIT_WAIT)) continue;
            p.destroyForcibly();
            if (!waitFor(p, EXIT_WAIT)) log.warn("uplink process {} did not exit after SIGKILL", p.pid());
        }
    }

    private static boolean waitFor(Process p, Duration d) {
        try {
            return p.waitFor(d.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return !p.isAlive();
        }
    }

    private static void sleep(Duration d) throws IOException {
        try {
            Thread.sleep(d);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while starting a sandbox's uplink", e);
        }
    }

    private static String readComm(Path p) {
        try {
            return Files.readString(p, StandardCharsets.US_ASCII).strip();
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    static String readLink(Path p) {
        try {
            return Files.readSymbolicLink(p).toString();
        } catch (IOException e) {
            return null;
        }
    }

    /** The first 4 KiB of a helper's output (for error messages), the rest read and dropped. */
    static final class Bounded {
        private final ByteArrayOutputStream kept = new ByteArrayOutputStream();

        static Bounded drain(InputStream in, String name) {
            Bounded b = new Bounded();
            Thread.ofVirtual().name(name).start(() -> {
                byte[] buf = new byte[4096];
                try (in) {
                    int n;
                    while ((n = in.read(buf)) > 0) {
                        synchronized (b) {
                            int room = 4096 - b.kept.size();
                            if (room > 0) b.kept.write(buf, 0, Math.min(room, n));
                        }
                    }
                } catch (IOException ignored) {
                }
            });
            return b;
        }

        synchronized String text() {
            String s = kept.toString(StandardCharsets.UTF_8).strip().replace('\n', ' ');
            return s.isEmpty() ? "(no output)" : s;
        }
    }
}
