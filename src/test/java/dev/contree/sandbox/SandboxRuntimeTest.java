package dev.contree.sandbox;

import static org.assertj.core.api.Assertions.assertThat;

import dev.contree.cancel.CancelToken;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Real runsc and runc over a busybox rootfs. Needs root, runsc, runc, /bin/busybox (busybox-static). */
class SandboxRuntimeTest {
    static final String CGROUP_PARENT = "contree-test";
    static Path stateDir;
    static final Map<RuntimeConfig.Kind, SandboxRuntime> RUNTIMES = new EnumMap<>(RuntimeConfig.Kind.class);
    static final AtomicInteger SEQ = new AtomicInteger();

    @TempDir Path tmp;

    @BeforeAll
    static void setUp() throws IOException {
        stateDir = TestRuntimes.open("contree-sbx-state", CGROUP_PARENT, 512L << 20, RUNTIMES);
    }

    @AfterAll
    static void tearDown() throws IOException {
        TestRuntimes.close(RUNTIMES, stateDir);
    }

    /** A busybox rootfs: /bin/busybox + applet symlinks, /etc/passwd with root and user 1000. */
    static Path busyboxRootfs(Path dir) throws IOException {
        Path root = Files.createDirectories(dir.resolve("rootfs" + SEQ.incrementAndGet()));
        Path bin = Files.createDirectories(root.resolve("bin"));
        Files.copy(Path.of("/bin/busybox"), bin.resolve("busybox"));
        Process p = new ProcessBuilder("/bin/busybox", "--list").start();
        for (String applet : new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
            applet = applet.strip();
            if (applet.isEmpty() || applet.equals("busybox")) continue;
            Files.createSymbolicLink(bin.resolve(applet), Path.of("busybox"));
        }
        Path etc = Files.createDirectories(root.resolve("etc"));
        Files.writeString(etc.resolve("passwd"), "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n");
        Files.writeString(etc.resolve("group"), "root:x:0:\nuser:x:1000:\n");
        Files.createDirectories(root.resolve("root"));
        Path tmp = Files.createDirectories(root.resolve("tmp"));
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxrwxrwx"));
        return root;
    }

    SandboxSpec.Builder sh(String script) throws IOException {
        return SandboxSpec.shell("t" + SEQ.incrementAndGet(), busyboxRootfs(tmp), script).timeout(Duration.ofSeconds(30));
    }

    static SandboxResult run(RuntimeConfig.Kind k, SandboxSpec spec) throws IOException {
        SandboxResult r = RUNTIMES.get(k).run(spec);
        assertThat(r.infraError()).as("infra error").isNull();
        return r;
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void echoToStdoutAndStderrSeparately(RuntimeConfig.Kind k) throws IOException {
        SandboxResult r = run(k, sh("echo out; echo err >&2; echo out2").build());
        assertThat(r.stdoutText()).isEqualTo("out\nout2\n");
        assertThat(r.stderrText()).isEqualTo("err\n");
        assertThat(r.exitCode()).isZero();
        assertThat(r.signal()).isEqualTo(-1);
        assertThat(r.timedOut()).isFalse();
        assertThat(r.pid()).isGreaterThan(1);
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void exitCodesAndSignals(RuntimeConfig.Kind k) throws IOException {
        assertThat(run(k, sh("exit 3").build()).exitCode()).isEqualTo(3);
        SandboxResult r = run(k, sh("kill -TERM $$").build());
        assertThat(r.exitCode()).isEqualTo(-1);
        assertThat(r.signal()).isEqualTo(15);
        assertThat(r.timedOut()).isFalse();
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void pathLookupVersusExplicitPath(RuntimeConfig.Kind k) throws IOException {
        Path rootfs = busyboxRootfs(tmp);
        SandboxResult r = run(k, SandboxSpec.builder("t" + SEQ.incrementAndGet(), rootfs, List.of("echo", "a b", "c"))
                .lookupPath(true).build());
        assertThat(r.stdoutText()).isEqualTo("a b c\n");
        assertThat(r.execError()).isNull();

        r = run(k, SandboxSpec.builder("t" + SEQ.incrementAndGet(), rootfs, List.of("echo", "x")).lookupPath(false).build());
        assertThat(r.exitCode()).isEqualTo(127);
        assertThat(r.execError()).contains("echo").contains("No such file");
        assertThat(r.stderrText()).contains("contree-init").contains("echo");

        r = run(k, SandboxSpec.builder("t" + SEQ.incrementAndGet(), rootfs, List.of("no-such-cmd")).build());
        assertThat(r.exitCode()).isEqualTo(127);

        // PATH from the spec's env is used for the lookup
        Files.createDirectories(rootfs.resolve("opt/x"));
        Files.writeString(rootfs.resolve("opt/x/hello"), "#!/bin/sh\necho hello from $0\n");
        Files.setPosixFilePermissions(rootfs.resolve("opt/x/hello"), PosixFilePermissions.fromString("rwxr-xr-x"));
        r = run(k, SandboxSpec.builder("t" + SEQ.incrementAndGet(), rootfs, List.of("hello")).env("PATH", "/bin:/opt/x").build());
        assertThat(r.stdoutText()).isEqualTo("hello from /opt/x/hello\n");
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void envAndCwd(RuntimeConfig.Kind k) throws IOException {
        SandboxResult r = run(k, sh("echo $FOO; pwd; env | sort").env("FOO", "bar baz").cwd("/work/dir").build());
        assertThat(r.stdoutText()).startsWith("bar baz\n/work/dir\n");
        assertThat(r.stdoutText()).contains("PATH=/usr/local/sbin");
        r = run(k, SandboxSpec.builder("t" + SEQ.incrementAndGet(), busyboxRootfs(tmp), List.of("/bin/pwd")).cwd("/etc/passwd").build());
        assertThat(r.exitCode()).isEqualTo(125);
        assertThat(r.execError()).contains("chdir /etc/passwd");
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void uidGidAndHostname(RuntimeConfig.Kind k) throws IOException {
        SandboxSpec s = sh("id -u; id -g; hostname; echo x > /tmp/owned").user(1000, 1000).hostname("sbx-host").build();
        SandboxResult r = run(k, s);
        assertThat(r.stdoutText()).isEqualTo("1000\n1000\nsbx-host\n");
        assertThat(Files.getAttribute(s.rootfs().resolve("tmp/owned"), "unix:uid")).isEqualTo(1000);
        r = run(k, sh("hostname").build());
        assertThat(r.stdoutText()).isEqualTo("linuxkit\n");
        // uid 1000 cannot write root-owned places
        r = run(k, sh("echo x > /etc/nope").user(1000, 1000).build());
        assertThat(r.exitCode()).isNotZero();
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void stdinBinaryRoundTrip(RuntimeConfig.Kind k) throws IOException {
        byte[] in = new byte[256 * 64];
        for (int i = 0; i < in.length; i++) in[i] = (byte) i;
        SandboxResult r = run(k, sh("cat").stdin(in).build());
        assertThat(r.stdout()).isEqualTo(in);
        r = run(k, sh("wc -c").build());
        assertThat(r.stdoutText().strip()).isEqualTo("0");
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void timeoutKillsPromptly(RuntimeConfig.Kind k) throws IOException {
        long t0 = System.nanoTime();
        SandboxResult r = run(k, sh("echo before; sleep 100").timeout(Duration.ofSeconds(1)).build());
        double s = (System.nanoTime() - t0) / 1e9;
        assertThat(r.timedOut()).isTrue();
        assertThat(r.signal()).isEqualTo(9);
        assertThat(r.exitCode()).isEqualTo(-1);
        assertThat(r.stdoutText()).isEqualTo("before\n");
        assertThat(s).isLessThan(4.0);
        assertThat(r.usage().elapsedSeconds()).isBetween(0.9, 2.0);
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void orphansAndTermIgnoringProcessesAreKilled(RuntimeConfig.Kind k) throws IOException, InterruptedException {
        SandboxSpec s = sh("(trap '' TERM; sleep 2; echo late > /tmp/late1) & "
                + "(sh -c 'trap \"\" TERM HUP INT; sleep 2; echo late > /tmp/late2' &) ; echo parent-done").build();
        long t0 = System.nanoTime();
        SandboxResult r = run(k, s);
        assertThat((System.nanoTime() - t0) / 1e9).isLessThan(1.9);
        assertThat(r.exitCode()).isZero();
        assertThat(r.stdoutText()).isEqualTo("parent-done\n");
        Thread.sleep(2500);
        assertThat(s.rootfs().resolve("tmp/late1")).doesNotExist();
        assertThat(s.rootfs().resolve("tmp/late2")).doesNotExist();

        // the same while the main process times out
        s = sh("(trap '' TERM; sleep 3; echo late > /tmp/late3) & trap '' TERM; sleep 100").timeout(Duration.ofSeconds(1)).build();
        r = run(k, s);
        assertThat(r.timedOut()).isTrue();
        Thread.sleep(3000);
        assertThat(s.rootfs().resolve("tmp/late3")).doesNotExist();
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void outputFloodIsBoundedAndCounted(RuntimeConfig.Kind k) throws IOException {
        AtomicLong seen = new AtomicLong();
        ConcurrentLinkedQueue<String> trunc = new ConcurrentLinkedQueue<>();
        SandboxListener l = new SandboxListener() {
            @Override public void onStdout(byte[] b, int off, int len) { seen.addAndGet(len); }
            @Override public void onOutputTruncated(String stream, long emitted, long dropped) {
                trunc.add(stream + ":" + emitted + ":" + dropped);
            }
        };
        long total = 64L << 20;
        SandboxSpec s = sh("yes | head -c " + total + "; echo small >&2").outputCap(100_000).build();
        SandboxResult r = RUNTIMES.get(k).run(s, l, CancelToken.none());
        assertThat(r.infraError()).isNull();
        assertThat(r.stdout()).hasSize(100_000);
        assertThat(r.stdoutTruncated()).isTrue();
        assertThat(r.stdoutTotalBytes()).isEqualTo(total);
        assertThat(r.stderrText()).isEqualTo("small\n");
        assertThat(r.stderrTruncated()).isFalse();
        assertThat(seen.get()).isEqualTo(100_000);
        assertThat(trunc).containsExactly("stdout:100000:" + (total - 100_000));

        // `yes` forever: killed by the timeout, never blocks
        r = run(k, sh("yes").outputCap(1000).timeout(Duration.ofSeconds(2)).build());
        assertThat(r.timedOut()).isTrue();
        assertThat(r.stdout()).hasSize(1000);
        assertThat(r.stdoutTotalBytes()).isGreaterThan(1_000_000);
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void forkBombIsContained(RuntimeConfig.Kind k) throws IOException {
        long t0 = System.nanoTime();
        SandboxResult r = run(k, sh("b() { b | b & }; b; sleep 3; echo survived").pidsLimit(64)
                .timeout(Duration.ofSeconds(5)).build());
        assertThat((System.nanoTime() - t0) / 1e9).isLessThan(20);
        assertThat(r.usage()).isNotNull();
        if (k == RuntimeConfig.Kind.RUNC) assertThat(r.usage().pidsLimitHits()).isPositive();
        // the machine is fine and the next sandbox runs
        assertThat(run(k, sh("echo ok").build()).stdoutText()).isEqualTo("ok\n");
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void memoryBombIsContained(RuntimeConfig.Kind k) throws IOException {
        SandboxResult r = RUNTIMES.get(k).run(sh("a=$(head -c 400000000 /dev/zero | tr '\\0' x); echo done ${#a}")
                .memoryBytes(64L << 20).timeout(Duration.ofSeconds(30)).build());
        System.out.println(k + " memory bomb: " + r + " stderr=" + r.stderrText());
        assertThat(r.stdoutText()).doesNotContain("done 400000000");
        if (k == RuntimeConfig.Kind.RUNSC) {
            // gVisor: the sentry is charged for all sandbox memory and is what gets killed
            assertThat(r.infraError() == null ? "" : r.infraError()).satisfiesAnyOf(
                    e -> assertThat(e).isEmpty(), e -> assertThat(e).contains("memory limit"));
        } else {
            assertThat(r.infraError()).isNull();
            assertThat(r.signal()).isEqualTo(9);
            assertThat(r.usage().oomKills()).isPositive();
            assertThat(r.usage().cgroupMemoryPeakBytes()).isLessThanOrEqualTo(64L << 20);
        }
        assertThat(run(k, sh("echo ok").build()).stdoutText()).isEqualTo("ok\n");
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void noNetwork(RuntimeConfig.Kind k) throws Exception {
        try (ServerSocket ss = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            ss.setSoTimeout(1);
            int port = ss.getLocalPort();
            SandboxResult r = run(k, sh("cat /proc/net/dev; echo x | nc -w 2 127.0.0.1 " + port + "; echo rc=$?").build());
            List<String> ifaces = new ArrayList<>();
            for (String line : r.stdoutText().split("\n"))
                if (line.contains(":") && !line.contains("|")) ifaces.add(line.substring(0, line.indexOf(':')).strip());
            assertThat(ifaces).containsExactly("lo");
            assertThat(r.stdoutText()).doesNotContain("rc=0");
            assertThat(r.stdoutText()).contains("rc=1");
            try {
                ss.accept().close();
                throw new AssertionError("sandbox reached the host's loopback");
            } catch (java.net.SocketTimeoutException expected) {
            }
        }
        // requesting network without a configured namespace is an infra error, never host networking
        SandboxResult r = RUNTIMES.get(k).run(sh("true").network(true).build());
        assertThat(r.infraError()).contains("network");
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void writesToRootAndTmpLandInRootfs(RuntimeConfig.Kind k) throws IOException {
        SandboxSpec s = sh("echo a > /f1; echo b > /tmp/f2; mkdir -p /d/e && echo c > /d/e/f3; rm /etc/group; "
                + "dd if=/dev/zero of=/big bs=1M count=8 2>/dev/null").build();
        run(k, s);
        Path root = s.rootfs();
        assertThat(root.resolve("f1")).hasContent("a");
        assertThat(root.resolve("tmp/f2")).hasContent("b");
        assertThat(root.resolve("d/e/f3")).hasContent("c");
        assertThat(root.resolve("etc/group")).doesNotExist();
        assertThat(Files.size(root.resolve("big"))).isEqualTo(8L << 20);
        // /tmp missing from the image: created, writes still land in the rootfs
        Path rootfs2 = busyboxRootfs(tmp.resolve("second"));
        Files.delete(rootfs2.resolve("tmp"));
        SandboxResult r = run(k, SandboxSpec.shell("t" + SEQ.incrementAndGet(), rootfs2, "echo z > /tmp/z").build());
        if (k == RuntimeConfig.Kind.RUNSC) assertThat(rootfs2.resolve("tmp/z")).hasContent("z"); // runsc needs /tmp: created
        else assertThat(r.exitCode()).isNotZero(); // runc: like the image, no /tmp
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void cancelKillsWithinOneSecond(RuntimeConfig.Kind k) throws Exception {
        CancelToken token = new CancelToken();
        CountDownLatch started = new CountDownLatch(1);
        SandboxListener l = new SandboxListener() {
            @Override public void onStart(int pid) { started.countDown(); }
        };
        SandboxSpec s = sh("trap '' TERM; sleep 100").timeout(Duration.ofSeconds(60)).build();
        try (var ex = Executors.newVirtualThreadPerTaskExecutor()) {
            Future<SandboxResult> f = ex.submit(() -> RUNTIMES.get(k).run(s, l, token));
            assertThat(started.await(20, TimeUnit.SECONDS)).isTrue();
            Thread.sleep(300);
            long t0 = System.nanoTime();
            token.cancel(CancelToken.Reason.CLIENT_REQUEST);
            SandboxResult r = f.get(10, TimeUnit.SECONDS);
            double took = (System.nanoTime() - t0) / 1e9;
            assertThat(r.cancelled()).isTrue();
            assertThat(r.infraError()).isNull();
            assertThat(took).isLessThan(1.0);
        }
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void rusageIsPlausible(RuntimeConfig.Kind k) throws IOException {
        SandboxResult r = run(k, sh("i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo $i").build());
        assertThat(r.stdoutText()).isEqualTo("300000\n");
        ResourceUsage u = r.usage();
        System.out.println(k + " rusage: " + u);
        assertThat(u.userCpuSeconds() + u.systemCpuSeconds()).isGreaterThan(0.0);
        assertThat(u.maxRssKiB()).isPositive();
        assertThat(u.elapsedSeconds()).isPositive();
        if (k == RuntimeConfig.Kind.RUNC) {
            assertThat(u.minorFaults()).isPositive();
            assertThat(u.cgroupCpuSeconds()).isPositive();
        } else {
            assertThat(u.minorFaults()).isEqualTo(-1);
        }
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void isolationDefaults(RuntimeConfig.Kind k) throws IOException {
        SandboxResult r = run(k, sh("cat /proc/kcore | wc -c; echo 1 > /proc/sys/kernel/hostname; echo sys=$?; "
                + "grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status; mount -t tmpfs x /mnt; echo mount=$?; "
                + "ls /.contree; echo > /.contree/init; echo initw=$?").build());
        String out = r.stdoutText();
        System.out.println(k + " isolation: " + out + r.stderrText());
        assertThat(out).startsWith("0\n");
        assertThat(out).contains("sys=1").contains("mount=").doesNotContain("mount=0").doesNotContain("initw=0");
        if (k == RuntimeConfig.Kind.RUNC) {
            assertThat(out).contains("CapEff:\t00000000a80405fb").contains("NoNewPrivs:\t1");
            r = run(k, sh("unshare -U true; echo userns=$?").build());
            assertThat(r.stdoutText()).contains("userns=1");
        }
        r = run(k, sh("grep CapEff /proc/self/status").user(1000, 1000).build());
        assertThat(r.stdoutText()).contains("0000000000000000");
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void parallelRunsOnVirtualThreads(RuntimeConfig.Kind k) throws Exception {
        int n = 8;
        List<Future<SandboxResult>> fs = new ArrayList<>();
        try (var ex = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < n; i++) {
                SandboxSpec s = sh("echo run-" + i + "; sleep 0.2").build();
                fs.add(ex.submit(() -> RUNTIMES.get(k).run(s)));
            }
            for (int i = 0; i < n; i++) {
                SandboxResult r = fs.get(i).get(60, TimeUnit.SECONDS);
                assertThat(r.infraError()).isNull();
                assertThat(r.stdoutText()).isEqualTo("run-" + i + "\n");
            }
        }
        assertNothingLeftBehind(k);
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void cleanupStaleRemovesLeftovers(RuntimeConfig.Kind k) throws Exception {
        OciSandboxRuntime rt = (OciSandboxRuntime) RUNTIMES.get(k);
        // Simulate a crashed server: a container created (not deleted) in our state dir.
        SandboxSpec s = sh("sleep 100").build();
        String cid = OciSandboxRuntime.CONTAINER_PREFIX + s.id();
        Path bundle = Files.createDirectories(stateDir.resolve(rt.name() + "-bundles").resolve(cid));
        RuntimeSpec cfg = OciSpecs.build(RuntimeConfig.defaults(k, stateDir), s, List.of(SandboxRuntime.INIT_PATH, "--", "sleep", "100"),
                rt.initBinary(), "/" + CGROUP_PARENT + "/" + cid, new OciSpecs.Limits(64 << 20, 64, 1), null, false);
        Files.writeString(bundle.resolve("config.json"), OciSpecs.toJson(cfg));
        List<String> cmd = new ArrayList<>(List.of(rt.name(), "--root", stateDir.resolve(rt.name() + "-root").toString()));
        if (k == RuntimeConfig.Kind.RUNSC) cmd.addAll(List.of("--platform=ptrace", "--network=none"));
        cmd.addAll(List.of("run", "--detach", "--bundle", bundle.toString(), cid));
        Process p = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).isZero();
        assertThat(rt.cleanupStale()).isGreaterThanOrEqualTo(1);
        assertNothingLeftBehind(k);
    }

    static void assertNothingLeftBehind(RuntimeConfig.Kind k) throws IOException {
        String name = RUNTIMES.get(k).name();
        try (Stream<Path> s = Files.list(stateDir.resolve(name + "-root"))) {
            assertThat(s.map(Path::toString).toList()).as("runtime state").isEmpty();
        }
        try (Stream<Path> s = Files.list(stateDir.resolve(name + "-bundles"))) {
            assertThat(s.map(Path::toString).toList()).as("bundles").isEmpty();
        }
        for (String c : List.of("memory", "pids", "cpu")) {
            Path d = Path.of("/sys/fs/cgroup", c, CGROUP_PARENT);
            if (!Files.isDirectory(d)) continue;
            try (Stream<Path> s = Files.list(d)) {
                assertThat(s.filter(Files::isDirectory).map(Path::toString).toList()).as("cgroups " + c).isEmpty();
            }
        }
    }
}
