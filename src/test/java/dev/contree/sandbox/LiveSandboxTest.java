package dev.contree.sandbox;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.contree.cancel.CancelToken;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Live sandboxes on real runsc and runc: subprocesses that contree-init forks into a running sandbox, their stdin,
 * signals, timeouts and ends, and what a hostile subprocess can do to init. Needs root, runsc, runc, busybox-static.
 */
class LiveSandboxTest {
    static final String CGROUP_PARENT = "contree-live-test";
    static final Map<String, String> PATH_ENV = Map.of("PATH", "/bin");
    static Path stateDir;
    static final Map<RuntimeConfig.Kind, SandboxRuntime> RUNTIMES = new EnumMap<>(RuntimeConfig.Kind.class);
    static final AtomicInteger SEQ = new AtomicInteger();

    @TempDir Path tmp;
    final ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor();

    @BeforeAll
    static void setUp() throws IOException {
        stateDir = TestRuntimes.open("contree-live-state", CGROUP_PARENT, 512L << 20, RUNTIMES);
    }

    @AfterAll
    static void tearDown() throws IOException {
        TestRuntimes.close(RUNTIMES, stateDir);
    }

    @AfterEach
    void closeExecutor() { ex.shutdownNow(); }

    /** Everything a run tells its listener, in order. */
    static final class Recorder implements SandboxListener {
        final CompletableFuture<LiveSandbox> live = new CompletableFuture<>();
        final Map<Integer, CompletableFuture<Integer>> starts = new ConcurrentHashMap<>();
        final Map<Integer, CompletableFuture<ProcessExit>> exits = new ConcurrentHashMap<>();
        final Map<Integer, AtomicInteger> exitCount = new ConcurrentHashMap<>();
        final Map<String, ByteArrayOutputStream> output = new ConcurrentHashMap<>();
        final List<String> events = Collections.synchronizedList(new ArrayList<>());

        @Override public void onLive(LiveSandbox l) { events.add("live"); live.complete(l); }
        @Override public void onSubprocessStart(int spid, int pid, ProcessSpec spec) {
            events.add("start " + spid);
            start(spid).complete(pid);
        }
        @Override public void onSubprocessOutput(int spid, boolean stderr, byte[] b, int off, int len) {
            ByteArrayOutputStream o = output.computeIfAbsent((stderr ? "err" : "out") + spid, x -> new ByteArrayOutputStream());
            synchronized (o) { o.write(b, off, len); }
        }
        @Override public void onSubprocessExit(ProcessExit e) {
            events.add("exit " + e.spid());
            exitCount.computeIfAbsent(e.spid(), x -> new AtomicInteger()).incrementAndGet();
            exit(e.spid()).complete(e);
        }

        CompletableFuture<Integer> start(int spid) { return starts.computeIfAbsent(spid, x -> new CompletableFuture<>()); }
        CompletableFuture<ProcessExit> exit(int spid) { return exits.computeIfAbsent(spid, x -> new CompletableFuture<>()); }

        ProcessExit awaitExit(int spid) throws Exception { return exit(spid).get(30, TimeUnit.SECONDS); }

        String streamed(String key) {
            ByteArrayOutputStream o = output.get(key);
            if (o == null) return "";
            synchronized (o) { return o.toString(StandardCharsets.UTF_8); }
        }
    }

    /** A run in the background, with its recorder and live handle. */
    final class Running {
        final SandboxSpec spec;
        final Recorder rec = new Recorder();
        final Future<SandboxResult> result;
        final LiveSandbox live;

        Running(RuntimeConfig.Kind k, SandboxSpec spec) throws Exception {
            this.spec = spec;
            result = ex.submit(() -> {
                SandboxResult r = RUNTIMES.get(k).run(spec, rec, CancelToken.none());
                rec.events.add("main");
                return r;
            });
            live = rec.live.get(30, TimeUnit.SECONDS);
        }

        SandboxResult end() throws Exception {
            SandboxResult r = result.get(60, TimeUnit.SECONDS);
            assertThat(r.infraError()).as("infra error").isNull();
            return r;
        }

        /** TERM to the main process, then its result. */
        SandboxResult stop() throws Exception {
            live.signal(LiveSandbox.MAIN, 15);
            return end();
        }

        int sh(String script) throws IOException { return live.spawn(ProcessSpec.shell(script, PATH_ENV), null, true); }
    }

    Running keepalive(RuntimeConfig.Kind k) throws Exception {
        return new Running(k, main("sleep 60").build());
    }

    SandboxSpec.Builder main(String script) throws IOException {
        return SandboxSpec.shell("l" + SEQ.incrementAndGet(), SandboxRuntimeTest.busyboxRootfs(tmp), script)
                .timeout(Duration.ofSeconds(60));
    }

    static ProcessSpec spec(List<String> argv, Map<String, String> env, String cwd, int uid, int gid) {
        return new ProcessSpec(argv, true, env, cwd, uid, gid, null, 0);
    }

    // ---------------------------------------------------------------- tests

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void subprocessesHaveTheirOwnIdentityEnvCwdAndOutput(RuntimeConfig.Kind k) throws Exception {
        Running r = keepalive(k);
        String script = "id -u; id -g; echo \"$FOO\"; pwd; echo \"err-$FOO\" >&2; touch \"/tmp/owned-$FOO\"; exit 4";
        int a = r.live.spawn(spec(List.of("sh", "-c", script), Map.of("PATH", "/bin", "FOO", "a"), "/home/a", 1000, 1000), null, true);
        int b = r.live.spawn(spec(List.of("sh", "-c", script), Map.of("PATH", "/bin", "FOO", "b b"), "/tmp", 0, 0), null, true);
        int c = r.live.spawn(spec(List.of("env"), Map.of("PATH", "/bin", "ONLY", "this"), "/", 0, 0), null, true);
        assertThat(List.of(a, b, c)).containsExactly(2, 3, 4);
        ProcessExit ea = r.rec.awaitExit(a), eb = r.rec.awaitExit(b), ec = r.rec.awaitExit(c);
        assertThat(ea.stdoutText()).isEqualTo("1000\n1000\na\n/home/a\n");
        assertThat(ea.stderrText()).isEqualTo("err-a\n");
        assertThat(eb.stdoutText()).isEqualTo("0\n0\nb b\n/tmp\n");
        assertThat(eb.stderrText()).isEqualTo("err-b b\n");
        assertThat(ec.stdoutText().lines().sorted().toList()).containsExactly("ONLY=this", "PATH=/bin");
        for (ProcessExit e : List.of(ea, eb)) {
            assertThat(e.exitCode()).isEqualTo(4);
            assertThat(e.signal()).isEqualTo(-1);
            assertThat(e.error()).isNull();
            assertThat(e.timedOut()).isFalse();
        }
        // the streamed bytes are the same, attributed to the right spid
        assertThat(r.rec.streamed("out" + a)).isEqualTo(ea.stdoutText());
        assertThat(r.rec.streamed("err" + b)).isEqualTo(eb.stderrText());
        assertThat(ea.pid()).isEqualTo(r.rec.start(a).get()).isGreaterThan(1);
        assertThat(ea.pid()).isNotEqualTo(eb.pid());
        SandboxResult res = r.stop();
        assertThat(res.signal()).isEqualTo(15);
        assertThat(res.stdout()).isEmpty();
        Path root = r.spec.rootfs();
        assertThat(Files.getAttribute(root.resolve("tmp/owned-a"), "unix:uid")).isEqualTo(1000);
        assertThat(Files.getAttribute(root.resolve("tmp/owned-b b"), "unix:uid")).isEqualTo(0);
        assertThat(Files.getAttribute(root.resolve("home/a"), "unix:uid")).isEqualTo(0); // created by init, as root
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void execAndChdirFailuresAreReportedLikeTheMainProcesss(RuntimeConfig.Kind k) throws Exception {
        Running r = keepalive(k);
        int a = r.live.spawn(spec(List.of("no-such-cmd"), PATH_ENV, "/", 0, 0), null, true);
        int b = r.live.spawn(spec(List.of("/bin/pwd"), PATH_ENV, "/etc/passwd", 0, 0), null, true);
        int c = r.live.spawn(new ProcessSpec(List.of("echo", "x"), false, PATH_ENV, "/", 0, 0, null, 0), null, true);
        ProcessExit ea = r.rec.awaitExit(a), eb = r.rec.awaitExit(b), ec = r.rec.awaitExit(c);
        assertThat(ea.exitCode()).isEqualTo(127);
        assertThat(ea.error()).contains("no-such-cmd");
        assertThat(ea.stderrText()).contains("contree-init").contains("no-such-cmd");
        assertThat(eb.exitCode()).isEqualTo(125);
        assertThat(eb.error()).contains("chdir /etc/passwd");
        assertThat(ec.exitCode()).isEqualTo(127); // no PATH lookup asked
        assertThat(r.stop().signal()).isEqualTo(15);
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void stdinWrittenInSeveralCallsThenClosed(RuntimeConfig.Kind k) throws Exception {
        Running r = keepalive(k);
        int cat = r.live.spawn(ProcessSpec.shell("cat", PATH_ENV), "one ".getBytes(), false);
        r.live.writeStdin(cat, "two ".getBytes(), false);
        r.live.writeStdin(cat, "three".getBytes(), true);
        ProcessExit e = r.rec.awaitExit(cat);
        assertThat(e.stdoutText()).isEqualTo("one two three");
        assertThat(e.exitCode()).isZero();
        assertThatThrownBy(() -> r.live.writeStdin(cat, "late".getBytes(), false)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> r.live.writeStdin(99, "x".getBytes(), false)).isInstanceOf(NoSuchElementException.class);

        // more than the 1 MiB window, in the spawn and in one write: all of it arrives, in order
        byte[] big = new byte[3 << 20];
        for (int i = 0; i < big.length; i++) big[i] = (byte) (i * 31 + (i >>> 16));
        int sum = r.live.spawn(ProcessSpec.shell("md5sum", PATH_ENV), big, false);
        r.live.writeStdin(sum, big, true);
        byte[] both = new byte[big.length * 2];
        System.arraycopy(big, 0, both, 0, big.length);
        System.arraycopy(big, 0, both, big.length, big.length);
        String md5 = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("MD5").digest(both));
        assertThat(r.rec.awaitExit(sum).stdoutText()).startsWith(md5);

        // a stdin closed at spawn refuses writes
        int closed = r.sh("cat");
        assertThatThrownBy(() -> r.live.writeStdin(closed, "x".getBytes(), false)).isInstanceOf(IllegalStateException.class);
        assertThat(r.rec.awaitExit(closed).stdoutText()).isEmpty();
        r.stop();
    }

    /** A subprocess that does not read its stdin holds a full window; another spid's control frames still pass. */
    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void aSlowReaderDoesNotDelayAnotherSpidsControl(RuntimeConfig.Kind k) throws Exception {
        Running r = keepalive(k);
        int slow = r.live.spawn(ProcessSpec.shell("sleep 4; wc -c", PATH_ENV), null, false);
        Future<?> writer = ex.submit(() -> {
            r.live.writeStdin(slow, new byte[8 << 20], true); // waits for credit: only ~1 MiB can be in flight
            return null;
        });
        int other = r.sh("sleep 100");
        r.rec.start(other).get(10, TimeUnit.SECONDS);
        r.live.signal(other, 9);
        ProcessExit killed = r.rec.awaitExit(other);
        assertThat(killed.signal()).isEqualTo(9);
        // the kill got through while the big write was still waiting for the slow reader
        assertThat(writer.isDone()).isFalse();
        assertThat(r.rec.exit(slow).isDone()).isFalse();
        writer.get(30, TimeUnit.SECONDS);
        assertThat(r.rec.awaitExit(slow).stdoutText().strip()).isEqualTo(Integer.toString(8 << 20));
        r.stop();
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void aSubprocessTimeoutKillsOnlyIt(RuntimeConfig.Kind k) throws Exception {
        Running r = keepalive(k);
        int t = r.live.spawn(new ProcessSpec(List.of("/bin/sh", "-c", "echo before; sleep 100 & sleep 100"), false, PATH_ENV,
                "/", 0, 0, Duration.ofMillis(500), 0), null, true);
        ProcessExit e = r.rec.awaitExit(t);
        assertThat(e.timedOut()).isTrue();
        assertThat(e.signal()).isEqualTo(9);
        assertThat(e.exitCode()).isEqualTo(-1);
        assertThat(e.stdoutText()).isEqualTo("before\n");
        assertThat(e.usage().elapsedSeconds()).isBetween(0.4, 5.0);
        // the instance is still up
        int after = r.sh("echo alive; ps -o comm | grep -c sleep");
        ProcessExit ea = r.rec.awaitExit(after);
        assertThat(ea.stdoutText()).isEqualTo("alive\n1\n"); // only the main's sleep: the group is gone
        SandboxResult res = r.stop();
        assertThat(res.timedOut()).isFalse();
        assertThat(res.signal()).isEqualTo(15);
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void signalsReachTheSpidTheyAreFor(RuntimeConfig.Kind k) throws Exception {
        Running r = keepalive(k);
        int a = r.sh("sleep 100");
        int b = r.sh("trap 'echo got-usr1; exit 7' USR1; while :; do sleep 0.05; done");
        r.rec.start(a).get(10, TimeUnit.SECONDS);
        r.rec.start(b).get(10, TimeUnit.SECONDS);
        Thread.sleep(200); // the trap is set
        r.live.signal(a, 15);
        assertThat(r.rec.awaitExit(a).signal()).isEqualTo(15);
        r.live.signal(b, 10);
        ProcessExit eb = r.rec.awaitExit(b);
        assertThat(eb.exitCode()).isEqualTo(7);
        assertThat(eb.stdoutText()).isEqualTo("got-usr1\n");
        r.live.signal(a, 9); // ended: a no-op
        assertThatThrownBy(() -> r.live.signal(77, 9)).isInstanceOf(NoSuchElementException.class);
        assertThatThrownBy(() -> r.live.signal(a, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThat(r.rec.exitCount.get(a).get()).isEqualTo(1);
        assertThat(r.stop().signal()).isEqualTo(15);
    }

    /** The LazySession's snapshot: TERM to spid 1 ends the instance; every subprocess is killed and reported once. */
    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void theMainsEndKillsAndReportsEverySubprocessBeforeItsOwnResult(RuntimeConfig.Kind k) throws Exception {
        Running r = keepalive(k);
        List<Integer> spids = new ArrayList<>();
        for (int i = 0; i < 5; i++) spids.add(r.sh("echo " + i + " > /file-" + i + "; sleep 100"));
        spids.add(r.sh("trap '' TERM HUP; sleep 100"));
        int quick = r.sh("echo done-quick");
        assertThat(r.rec.awaitExit(quick).stdoutText()).isEqualTo("done-quick\n");
        for (int s : spids) r.rec.start(s).get(10, TimeUnit.SECONDS);
        Thread.sleep(300); // the files are written
        SandboxResult res = r.stop();
        assertThat(res.signal()).isEqualTo(15);
        assertThat(res.exitCode()).isEqualTo(-1);
        for (int s : spids) {
            ProcessExit e = r.rec.exit(s).getNow(null);
            assertThat(e).as("exit of " + s).isNotNull();
            assertThat(e.signal()).isEqualTo(9);
            assertThat(e.error()).isNull();
        }
        spids.add(quick);
        for (int s : spids) assertThat(r.rec.exitCount.get(s).get()).as("exits of " + s).isEqualTo(1);
        List<String> ev = new ArrayList<>(r.rec.events);
        assertThat(ev.getLast()).isEqualTo("main");
        assertThat(ev.stream().filter(x -> x.startsWith("exit")).count()).isEqualTo(spids.size());
        for (int i = 0; i < 5; i++) assertThat(r.spec.rootfs().resolve("file-" + i)).hasContent(Integer.toString(i));
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void noSubprocessOutlivesTheInstance(RuntimeConfig.Kind k) throws Exception {
        Running r = keepalive(k);
        int s = r.sh("(setsid sh -c 'trap \"\" TERM HUP; sleep 2; echo late > /tmp/late' &); "
                + "(sh -c 'sleep 2; echo late > /tmp/late2' &); echo spawned");
        ProcessExit e = r.rec.awaitExit(s);
        assertThat(e.stdoutText()).isEqualTo("spawned\n");
        assertThat(e.exitCode()).isZero();
        r.stop();
        Thread.sleep(2500);
        assertThat(r.spec.rootfs().resolve("tmp/late")).doesNotExist();
        assertThat(r.spec.rootfs().resolve("tmp/late2")).doesNotExist();
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void theSixtyFifthConcurrentSpawnIsRefused(RuntimeConfig.Kind k) throws Exception {
        Running r = keepalive(k);
        List<Integer> spids = new ArrayList<>();
        for (int i = 0; i < LiveSandbox.MAX_SUBPROCESSES; i++) spids.add(r.sh("sleep 100"));
        assertThatThrownBy(() -> r.sh("echo one too many")).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("64");
        for (int s : spids) r.rec.start(s).get(20, TimeUnit.SECONDS);
        r.live.signal(spids.getFirst(), 9);
        r.rec.awaitExit(spids.getFirst());
        int again = r.sh("echo room");
        assertThat(r.rec.awaitExit(again).stdoutText()).isEqualTo("room\n");
        assertThat(again).isEqualTo(spids.getLast() + 1); // the refused spawn used no spid
        r.stop();
        for (int s : spids) assertThat(r.rec.exitCount.get(s).get()).isEqualTo(1);
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void nothingStartsAfterTheMainEnded(RuntimeConfig.Kind k) throws Exception {
        Running r = new Running(k, main("sleep 0.3; exit 3").build());
        SandboxResult res = r.end();
        assertThat(res.exitCode()).isEqualTo(3);
        assertThatThrownBy(() -> r.sh("true")).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> r.live.writeStdin(1, "x".getBytes(), false)).isInstanceOf(IllegalStateException.class);
        r.live.signal(1, 15); // a no-op
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void keepStdinOpenKeepsTheMainsStdinUntilItIsClosed(RuntimeConfig.Kind k) throws Exception {
        Running r = new Running(k, main("cat; echo end").stdin("a".getBytes()).keepStdinOpen(true).build());
        r.live.writeStdin(1, "b".getBytes(), false);
        Thread.sleep(300);
        assertThat(r.result.isDone()).isFalse(); // cat still waits for more
        r.live.writeStdin(1, "c".getBytes(), true);
        SandboxResult res = r.end();
        assertThat(res.stdoutText()).isEqualTo("abcend\n");
        assertThat(res.exitCode()).isZero();

        // without it, the request's stdin is all there is
        Running r2 = new Running(k, main("cat; sleep 0.5").stdin("a".getBytes()).build());
        assertThatThrownBy(() -> r2.live.writeStdin(1, "b".getBytes(), false)).isInstanceOf(IllegalStateException.class);
        assertThat(r2.end().stdoutText()).isEqualTo("a");
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void aSubprocesssRusageIsItsOwn(RuntimeConfig.Kind k) throws Exception {
        Running r = keepalive(k);
        int busy = r.sh("i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo $i");
        ProcessExit e = r.rec.awaitExit(busy);
        assertThat(e.stdoutText()).isEqualTo("300000\n");
        ResourceUsage u = e.usage();
        System.out.println(k + " subprocess rusage: " + u);
        assertThat(u.userCpuSeconds() + u.systemCpuSeconds()).isGreaterThan(0.05);
        assertThat(u.maxRssKiB()).isPositive();
        assertThat(u.cgroupCpuSeconds()).isEqualTo(-1); // the sandbox's figures are the main's
        if (k == RuntimeConfig.Kind.RUNC) assertThat(u.minorFaults()).isPositive();
        else assertThat(u.minorFaults()).isEqualTo(-1);
        SandboxResult res = r.stop();
        // the main process (sleep) did not do the subprocess's work
        assertThat(res.usage().userCpuSeconds()).isLessThan(u.userCpuSeconds());
    }

    // ---------------------------------------------------------------- abuse

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void anOutputFloodIsCappedAndDelaysNobody(RuntimeConfig.Kind k) throws Exception {
        Running r = keepalive(k);
        int flood = r.live.spawn(new ProcessSpec(List.of("yes"), true, PATH_ENV, "/", 0, 0, Duration.ofSeconds(3), 1000),
                null, true);
        int flood2 = r.sh("yes | head -c 50000000 >&2");
        int quiet = r.sh("echo quiet");
        assertThat(r.rec.awaitExit(quiet).stdoutText()).isEqualTo("quiet\n");
        ProcessExit e = r.rec.awaitExit(flood);
        assertThat(e.timedOut()).isTrue();
        assertThat(e.stdout()).hasSize(1000);
        assertThat(e.stdoutTruncated()).isTrue();
        assertThat(e.stdoutTotal()).isGreaterThan(1_000_000);
        assertThat(r.rec.streamed("out" + flood)).hasSize(1000);
        ProcessExit e2 = r.rec.awaitExit(flood2);
        assertThat(e2.stderrTotal()).isEqualTo(50_000_000);
        // The runtime's default cap reached the listener; the exit record keeps only its first 64 KiB.
        assertThat(r.rec.streamed("err" + flood2).length()).isEqualTo(1 << 20);
        assertThat(e2.stderr().length).isEqualTo(InitChannel.SUBPROCESS_KEPT);
        assertThat(e2.stderrTruncated()).isTrue();
        assertThat(r.stop().signal()).isEqualTo(15);
    }

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void aForkBombSubprocessIsContained(RuntimeConfig.Kind k) throws Exception {
        Running r = new Running(k, main("sleep 60").pidsLimit(64).build());
        int bomb = r.live.spawn(new ProcessSpec(List.of("/bin/sh", "-c", "b() { b | b & }; b; sleep 100"), false, PATH_ENV, "/",
                1000, 1000, Duration.ofSeconds(2), 0), null, true);
        ProcessExit e = r.rec.awaitExit(bomb);
        // Killed at its timeout, or its own shell ended first when the pids limit refused its `sleep` a fork.
        assertThat(e.timedOut() || e.exitCode() != 0).as(e.toString()).isTrue();
        // init still answers; once the bomb's processes are gone a spawn works again
        ProcessExit ok = null;
        for (int i = 0; i < 50 && (ok == null || !"ok\n".equals(ok.stdoutText())); i++) {
            if (i > 0) Thread.sleep(200);
            ok = r.rec.awaitExit(r.sh("echo ok"));
        }
        assertThat(ok.stdoutText()).isEqualTo("ok\n");
        SandboxResult res = r.stop();
        assertThat(res.signal()).isEqualTo(15);
        assertThat(res.exitCode()).isEqualTo(-1);
    }

    /**
     * A root subprocess writes garbage into every descriptor of init it can open but its report channel (gVisor lets
     * root open /proc/1/fd: its pipes to the processes, the exec-error pipes, fd 0), and reads init's control
     * channel. Neither init nor the server falls over, and no report is garbled: no forged exec error, no result
     * that is not the process's own.
     */
    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void garbageIntoInitsDescriptorsIsNeverBelieved(RuntimeConfig.Kind k) throws Exception {
        Running r = new Running(k, main("sleep 60").timeout(Duration.ofSeconds(8)).build());
        int spy = r.sh("timeout 1 cat /proc/1/fd/0 > /tmp/stolen 2>/dev/null; echo spied");
        int fill = r.live.spawn(ProcessSpec.shell("cat > /dev/null", PATH_ENV), null, false); // frames to steal
        r.live.writeStdin(fill, "x".repeat(100_000).getBytes(), false);
        assertThat(r.rec.awaitExit(spy).stdoutText()).isEqualTo("spied\n");
        int other = r.sh("sleep 100");
        r.rec.start(other).get(10, TimeUnit.SECONDS);
        int vandal = r.sh("for f in /proc/1/fd/*; do [ $f = /proc/1/fd/1 ] || head -c 4096 /dev/urandom > $f 2>/dev/null;"
                + " done; echo vandal-done");
        ProcessExit ev = r.rec.awaitExit(vandal);
        assertThat(ev.exitCode()).isZero();
        assertThat(ev.error()).isNull();
        assertThat(ev.stdoutText()).contains("vandal-done");
        try {
            r.live.signal(other, 15);
            r.live.signal(1, 15);
        } catch (IOException | IllegalStateException ignored) {
            // the channel may be gone: the main's timeout ends the run
        }
        SandboxResult res = r.result.get(60, TimeUnit.SECONDS);
        System.out.println(k + " garbage: " + res + " stolen=" + Files.size(r.spec.rootfs().resolve("tmp/stolen")));
        assertThat(res.infraError()).isNull();
        assertThat(res.execError()).isNull();
        if (k == RuntimeConfig.Kind.RUNC) { // init's descriptors are closed to the sandbox
            assertThat(res.signal()).isEqualTo(15);
            assertThat(Files.size(r.spec.rootfs().resolve("tmp/stolen"))).isZero();
        } else { // gVisor: the spy may have stolen the TERM's frame; then the timeout ended the main
            assertThat(res.timedOut() || res.signal() == 15).as(res.toString()).isTrue();
        }
        ProcessExit eo = r.rec.awaitExit(other);
        assertThat(eo.error()).isNull();
        assertThat(eo.signal()).isIn(9, 15);
        for (int s = 2; s <= 5; s++) assertThat(r.rec.exitCount.get(s).get()).as("exits of " + s).isEqualTo(1);
    }

    /** Forged frames on init's report channel (reachable on gVisor only): the run fails at once, believing nothing. */
    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void aForgedReportEndsTheRunAsTampered(RuntimeConfig.Kind k) throws Exception {
        Running r = new Running(k, main("sleep 60").timeout(Duration.ofSeconds(60)).build());
        int other = r.sh("sleep 100");
        int forger = r.sh("head -c 4096 /dev/urandom > /proc/1/fd/1; echo rc=$?");
        if (k == RuntimeConfig.Kind.RUNC) {
            assertThat(r.rec.awaitExit(forger).stdoutText()).isEqualTo("rc=1\n");
            assertThat(r.stop().signal()).isEqualTo(15);
            return;
        }
        SandboxResult res = r.result.get(20, TimeUnit.SECONDS); // killed, not left to its 60 s timeout
        assertThat(res.infraError()).contains("tampered");
        assertThat(res.timedOut()).isFalse();
        for (int s : List.of(other, forger)) {
            ProcessExit e = r.rec.exit(s).getNow(null);
            assertThat(e).isNotNull();
            assertThat(r.rec.exitCount.get(s).get()).isEqualTo(1);
        }
        // the runtime is fine afterwards
        Running next = keepalive(k);
        assertThat(next.rec.awaitExit(next.sh("echo fine")).stdoutText()).isEqualTo("fine\n");
        next.stop();
    }
}
