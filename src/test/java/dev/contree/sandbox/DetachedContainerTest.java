package dev.contree.sandbox;

import dev.contree.TestProcesses;
import dev.contree.TestProcesses.Proc;

import static org.assertj.core.api.Assertions.assertThat;

import dev.contree.cancel.CancelToken;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Sandboxes started detached: while one sleeps no runtime process runs beside it (its init is the server's
 * child), and whatever way a run ends (exit, timeout, cancel, its init killed from outside, a server crash
 * cleaned up at start-up) it leaves no zombie, pidfd, state, bundle or cgroup behind. Real runc/runsc.
 */
class DetachedContainerTest {
    static final String CGROUP_PARENT = "contree-test-detached";
    static final int SELF = (int) ProcessHandle.current().pid();
    static final AtomicInteger SEQ = new AtomicInteger();
    static final Map<RuntimeConfig.Kind, OciSandboxRuntime> RUNTIMES = new HashMap<>();
    static Path stateDir;

    @TempDir Path tmp;

    @BeforeAll
    static void setUp() throws IOException {
        stateDir = TestRuntimes.open("contree-detached-state", CGROUP_PARENT, 256L << 20, RUNTIMES);
    }

    @AfterAll
    static void tearDown() throws IOException {
        TestRuntimes.close(RUNTIMES, stateDir);
    }

    SandboxSpec.Builder sh(String script) throws IOException {
        return SandboxSpec.shell("d" + SEQ.incrementAndGet(), SandboxRuntimeTest.busyboxRootfs(tmp), script).timeout(Duration.ofSeconds(30));
    }

    /** Starts {@code spec} on a virtual thread; returns once init reports the command started. */
    static Future<SandboxResult> startAndAwait(RuntimeConfig.Kind k, SandboxSpec spec, CancelToken cancel) throws Exception {
        CountDownLatch started = new CountDownLatch(1);
        SandboxListener l = new SandboxListener() {
            @Override public void onStart(int pid) { started.countDown(); }
        };
        var ex = Executors.newVirtualThreadPerTaskExecutor();
        Future<SandboxResult> f = ex.submit(() -> RUNTIMES.get(k).run(spec, l, cancel));
        ex.shutdown();
        assertThat(started.await(30, TimeUnit.SECONDS)).as("started").isTrue();
        return f;
    }

    // ---- /proc ----

    static Map<Integer, Proc> processes() throws IOException { return TestProcesses.all(); }

    /** Every process under this JVM (its children, theirs, ...). */
    static List<Proc> descendants() throws IOException { return TestProcesses.descendants(SELF); }

    static List<Integer> cgroupProcs(SandboxSpec spec) throws IOException {
        Path procs = Path.of("/sys/fs/cgroup/pids", CGROUP_PARENT, OciSandboxRuntime.CONTAINER_PREFIX + spec.id(), "cgroup.procs");
        return Files.readAllLines(procs).stream().map(String::strip).filter(x -> !x.isEmpty()).map(Integer::parseInt).toList();
    }

    static long pidfds() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.filter(p -> {
                try {
                    return Files.readSymbolicLink(p).toString().equals("anon_inode:[pidfd]");
                } catch (IOException gone) {
                    return false;
                }
            }).count();
        }
    }

    static void assertNoZombieChildren() throws Exception {
        long end = System.currentTimeMillis() + dev.contree.linux.Reaper.orphanGrace().toMillis() + 5000;
        List<Proc> zombies;
        do {
            zombies = processes().values().stream().filter(p -> p.ppid() == SELF && p.state() == 'Z').toList();
            if (zombies.isEmpty()) return;
            Thread.sleep(200);
        } while (System.currentTimeMillis() < end);
        assertThat(zombies).as("zombie children of the server").isEmpty();
    }

    static void assertNothingLeftBehind(RuntimeConfig.Kind k) throws IOException {
        String name = RUNTIMES.get(k).name();
        try (Stream<Path> s = Files.list(stateDir.resolve(name + "-root"))) {
            assertThat(s.map(Path::toString).toList()).as("runtime state").isEmpty();
        }
        try (Stream<Path> s = Files.list(stateDir.resolve(name + "-bundles"))) {
            assertThat(s.map(Path::toString).toList()).as("bundles").isEmpty();
        }
        for (String c : List.of("memory", "pids", "cpu", "freezer", "systemd", "unified")) {
            Path d = Path.of("/sys/fs/cgroup", c, CGROUP_PARENT);
            if (!Files.isDirectory(d)) continue;
            try (Stream<Path> s = Files.list(d)) {
                assertThat(s.filter(Files::isDirectory).map(Path::toString).toList()).as("cgroups " + c).isEmpty();
            }
        }
    }

    // ---- tests ----

    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void aSleepingSandboxHasNoRuntimeProcessBesideIt(RuntimeConfig.Kind k) throws Exception {
        SandboxSpec spec = sh("sleep 60").build();
        CancelToken cancel = new CancelToken();
        Future<SandboxResult> f = startAndAwait(k, spec, cancel);
        Thread.sleep(300); // the launcher's exit is handled a moment after init reports the start
        List<Proc> mine = descendants();
        assertThat(mine).as("runtime launcher processes").noneMatch(p -> p.argv0().equals(k == RuntimeConfig.Kind.RUNC ? "runc" : "runsc"));
        assertThat(mine).as("runc's own init stage").noneMatch(p -> p.argv0().startsWith("runc:"));
        // The container's processes are the server's: its init (runc) or sentry and gofer (runsc) are our children.
        List<Integer> inCgroup = cgroupProcs(spec);
        Map<Integer, Proc> all = processes();
        List<Proc> ours = inCgroup.stream().map(all::get).filter(p -> p != null && p.ppid() == SELF).toList();
        if (k == RuntimeConfig.Kind.RUNC) {
            assertThat(ours).hasSize(1);
            assertThat(ours.getFirst().argv0()).isEqualTo("init"); // /.contree/init
        } else {
            assertThat(ours).extracting(Proc::argv0).containsExactlyInAnyOrder("runsc-sandbox", "runsc-gofer");
        }
        cancel.cancel(CancelToken.Reason.CLIENT_REQUEST);
        SandboxResult r = f.get(20, TimeUnit.SECONDS);
        assertThat(r.cancelled()).isTrue();
        // Adopted, so reaped as they exit, not left to the orphan sweep: by the time the run is over they are gone
        // (runsc's delete waits for its gofer, and a zombie would still count as there).
        for (Proc p : ours) assertThat(Files.exists(Path.of("/proc/" + p.pid()))).as(p + " reaped").isFalse();
        assertNoZombieChildren();
        assertNothingLeftBehind(k);
    }

    /** Many runs ending every way leave no zombie, pidfd, state, bundle or cgroup. */
    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void nothingLeaksHoweverRunsEnd(RuntimeConfig.Kind k) throws Exception {
        long pidfds0 = pidfds();
        OciSandboxRuntime rt = RUNTIMES.get(k);
        for (int i = 0; i < 5; i++) {
            assertThat(rt.run(sh("echo " + i).build()).stdoutText()).isEqualTo(i + "\n");
            assertThat(rt.run(sh("exit 3").build()).exitCode()).isEqualTo(3);
            assertThat(rt.run(sh("sleep 0.3 & sleep 0.1 & echo bg").build()).stdoutText()).isEqualTo("bg\n");
        }
        assertThat(rt.run(sh("sleep 60").timeout(Duration.ofSeconds(1)).build()).timedOut()).isTrue();
        CancelToken cancel = new CancelToken();
        Future<SandboxResult> f = startAndAwait(k, sh("sleep 60").build(), cancel);
        cancel.cancel(CancelToken.Reason.CLIENT_REQUEST);
        assertThat(f.get(20, TimeUnit.SECONDS).cancelled()).isTrue();
        // The runtime fails while it creates the container: too little memory for its own setup.
        SandboxResult bad = rt.run(sh("true").memoryBytes(1 << 20).build());
        System.out.println(k + " with 1 MiB: " + bad);
        // Cancelled while the runtime is still creating the container.
        CancelToken early = new CancelToken();
        var ex = Executors.newVirtualThreadPerTaskExecutor();
        Future<SandboxResult> g = ex.submit(() -> rt.run(sh("sleep 60").build(), SandboxListener.NONE, early));
        Thread.sleep(20);
        early.cancel(CancelToken.Reason.CLIENT_REQUEST);
        assertThat(g.get(30, TimeUnit.SECONDS).cancelled()).isTrue();
        ex.shutdown();

        assertNoZombieChildren();
        assertNothingLeftBehind(k);
        assertThat(pidfds()).as("pidfds held by the server").isLessThanOrEqualTo(pidfds0);
    }

    /** init's own wait status reaches the result: SIGKILL from outside reads as the OOM killer's. */
    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void initKilledFromOutsideIsReportedFromItsWaitStatus(RuntimeConfig.Kind k) throws Exception {
        SandboxSpec spec = sh("sleep 60").build();
        Future<SandboxResult> f = startAndAwait(k, spec, CancelToken.none());
        Thread.sleep(300);
        Map<Integer, Proc> all = processes();
        String initName = k == RuntimeConfig.Kind.RUNC ? "init" : "runsc-sandbox";
        Proc init = cgroupProcs(spec).stream().map(all::get).filter(p -> p != null && p.ppid() == SELF && p.argv0().equals(initName))
                .findFirst().orElseThrow();
        new ProcessBuilder("kill", "-9", Integer.toString(init.pid())).start().waitFor();
        SandboxResult r = f.get(20, TimeUnit.SECONDS);
        assertThat(r.infraError()).contains("killed by SIGKILL, most likely by the host OOM killer").contains("exit 137)");
        assertNoZombieChildren();
        assertNothingLeftBehind(k);
    }

    /** A server that crashed left a detached container running: start-up finds it, and its init is reaped. */
    @ParameterizedTest @EnumSource(value = RuntimeConfig.Kind.class, names = {"RUNSC", "RUNC"})
    void aCrashedServersContainerIsFoundAtStartUp(RuntimeConfig.Kind k) throws Exception {
        OciSandboxRuntime rt = RUNTIMES.get(k);
        SandboxSpec s = sh("sleep 100").build();
        String cid = OciSandboxRuntime.CONTAINER_PREFIX + s.id();
        Path bundle = Files.createDirectories(stateDir.resolve(rt.name() + "-bundles").resolve(cid));
        RuntimeSpec cfg = OciSpecs.build(RuntimeConfig.defaults(k, stateDir), s, List.of(SandboxRuntime.INIT_PATH, "--", "sleep", "100"),
                rt.initBinary(), "/" + CGROUP_PARENT + "/" + cid, new OciSpecs.Limits(64 << 20, 64, 1), null, false);
        Files.writeString(bundle.resolve("config.json"), OciSpecs.toJson(cfg));
        List<String> cmd = new ArrayList<>(List.of(rt.name(), "--root", stateDir.resolve(rt.name() + "-root").toString()));
        if (k == RuntimeConfig.Kind.RUNSC) cmd.addAll(List.of("--platform=ptrace", "--network=none"));
        cmd.addAll(List.of("run", "--detach", "--bundle", bundle.toString(), cid));
        // stdin: a fifo we keep open and never write, so init waits for its token and the container keeps running
        // (a pipe from ProcessBuilder would be closed by the JDK as soon as the runtime exits).
        Path fifo = tmp.resolve("stdin");
        assertThat(new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor()).isZero();
        try (var holder = new java.io.RandomAccessFile(fifo.toFile(), "rw")) {
            Process p = new ProcessBuilder(cmd).redirectInput(fifo.toFile()).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .redirectError(ProcessBuilder.Redirect.DISCARD).start();
            assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
            assertThat(p.exitValue()).isZero();
            try {
                // runc returns once it has told init to start, which may be a moment before init has exec'd.
                String initName = k == RuntimeConfig.Kind.RUNC ? "init" : "runsc-sandbox";
                long end = System.currentTimeMillis() + 5000;
                while (processes().values().stream().noneMatch(x -> x.ppid() == SELF && x.state() != 'Z' && x.argv0().equals(initName))
                        && System.currentTimeMillis() < end) Thread.sleep(50);
                assertThat(processes().values()).as("the container's init, orphaned to us (the subreaper) as the runtime exited")
                        .anyMatch(x -> x.ppid() == SELF && x.state() != 'Z' && x.argv0().equals(initName));
            } finally {
                assertThat(rt.cleanupStale()).isGreaterThanOrEqualTo(1);
            }
        }
        assertNoZombieChildren(); // killed by cleanupStale, adopted by nobody: the sweep reaps them
        assertNothingLeftBehind(k);
    }
}
