package dev.contree.sandbox;

import dev.contree.cancel.CancelToken;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The vm runtime's execution contract on a real QEMU microVM (TCG here: each test boots a guest in 2-5 s, so
 * tests combine checks to keep the boots few). Opt-in: {@link VmTests#enabled()}.
 */
class VmSandboxRuntimeTest {
    static Path stateDir;
    static VmSandboxRuntime vm;

    @TempDir Path tmp;

    @BeforeAll
    static void setUp() throws IOException {
        VmTests.assumeEnabled();
        stateDir = Files.createTempDirectory("contree-vm-state");
        vm = VmTests.runtime(stateDir, 256L << 20);
    }

    @AfterAll
    static void tearDown() throws IOException {
        VmTests.dispose(vm);
        VmTests.deleteTree(stateDir);
    }

    SandboxSpec.Builder sh(String script) throws IOException {
        return SandboxSpec.shell("vm" + SandboxRuntimeTest.SEQ.incrementAndGet(), SandboxRuntimeTest.busyboxRootfs(tmp), script)
                .timeout(Duration.ofSeconds(30));
    }

    @Test
    void echoExitCodeStderrAndTheGuestKernel() throws IOException {
        SandboxResult r = vm.run(sh("echo out; echo err >&2; uname -r; hostname; id -u; echo $FOO; pwd; cat /proc/sys/kernel/threads-max; exit 3")
                .env("FOO", "bar").hostname("box").cwd("/work/here").user(1000, 1000).pidsLimit(40).build());
        assertThat(r.infraError()).isNull();
        assertThat(r.exitCode()).isEqualTo(3);
        assertThat(r.stderrText()).isEqualTo("err\n");
        String[] lines = r.stdoutText().split("\n");
        assertThat(lines[0]).isEqualTo("out");
        assertThat(lines[1]).as("the guest's kernel, not the host's").startsWith("6.1.").isNotEqualTo(System.getProperty("os.version"));
        assertThat(lines[2]).isEqualTo("box");
        assertThat(lines[3]).isEqualTo("1000");
        assertThat(lines[4]).isEqualTo("bar");
        assertThat(lines[5]).isEqualTo("/work/here");
        // The pids limit: the guest's task cap, its kernel threads on top.
        assertThat(Integer.parseInt(lines[6])).isGreaterThan(40).isLessThan(40 + 400);
        assertThat(r.usage().elapsedSeconds()).isPositive();
        assertThat(r.usage().minorFaults()).as("the guest's wait4 rusage").isPositive();
        assertThat(r.usage().cgroupMemoryPeakBytes()).as("the VM's host cgroup").isGreaterThan(32L << 20);
        assertThat(r.usage().cgroupCpuSeconds()).as("the VM's host CPU, its boot included").isGreaterThan(0.1);
        VmTests.assertNothingLeft(vm);
    }

    @Test
    void guestAssetsAreBuiltOnceAndReused() throws IOException {
        Path other = Files.createTempDirectory("contree-vm-state2");
        try {
            var first = vm.assets();
            long mtime = Files.getLastModifiedTime(first.initramfs()).toMillis();
            VmSandboxRuntime again = VmTests.runtime(other, 256L << 20);
            var second = again.assets(); // a second server start on the same cache
            VmTests.dispose(again);
            assertThat(second.initramfs().toRealPath()).isEqualTo(first.initramfs().toRealPath());
            assertThat(Files.getLastModifiedTime(second.initramfs()).toMillis()).isEqualTo(mtime);
            assertThat(first.initramfs().getFileName().toString()).matches("initramfs-[0-9a-f]{16}\\.cpio");
            assertThat(first.release()).startsWith("6.1.");
        } finally {
            VmTests.deleteTree(other);
        }
    }

    @Test
    void timeoutWhileTheGuestFloodsItsConsole() throws IOException {
        Runtime rt = Runtime.getRuntime();
        // ttyS0 is the kernel console: root in the guest may write there (CAP_MKNOD, as in runc); the server keeps a tail.
        // The report channel's port: root may make a node for it, but init holds it open and the driver refuses a
        // second open.
        SandboxResult r = vm.run(sh("d=$(cat /sys/class/virtio-ports/*/dev); mknod /tmp/port c ${d%:*} ${d#*:};"
                + " cat /tmp/port 2>&1 | head -c 200; mknod /tmp/con c 4 64 && (yes flood-the-console > /tmp/con &) ;"
                + " echo started; sleep 60")
                .timeout(Duration.ofSeconds(5)).build());
        assertThat(r.infraError()).isNull();
        assertThat(r.timedOut()).isTrue();
        assertThat(r.signal()).isEqualTo(9);
        assertThat(r.stdoutText()).contains("Device or resource busy").endsWith("started\n");
        assertThat(rt.totalMemory() - rt.freeMemory()).isLessThan(1L << 30);
        VmTests.assertNothingLeft(vm);
    }

    @Test
    void cancelStopsTheVm() throws Exception {
        CancelToken cancel = CancelToken.none();
        var started = new java.util.concurrent.CountDownLatch(1);
        Thread.ofVirtual().start(() -> {
            try {
                if (started.await(60, java.util.concurrent.TimeUnit.SECONDS)) Thread.sleep(300);
            } catch (InterruptedException ignored) {
            }
            cancel.cancel(CancelToken.Reason.CLIENT_REQUEST);
        });
        long t0 = System.nanoTime();
        SandboxResult r = vm.run(sh("echo x > /f; sleep 60").build(), new SandboxListener() {
            @Override public void onStart(int pid) { started.countDown(); }
        }, cancel);
        assertThat(r.cancelled()).isTrue();
        assertThat(r.signal()).isEqualTo(9);
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(30));
        VmTests.assertNothingLeft(vm);
    }

    @Test
    void aGiBIntoA100MiBCapEndsCleanly() throws IOException {
        // Memory: the guest's own OOM killer ends the hog (init is exempt and reports); the 64 MiB /dev/shm fills up.
        SandboxResult r = vm.run(sh("dd if=/dev/zero of=/dev/shm/fill bs=1M count=1024 2>/dev/null; echo shm=$?;"
                + " awk 'BEGIN{s=\"xxxxxxxxxxxxxxxx\"; while(1) s=s s}'; echo awk=$?")
                .memoryBytes(100L << 20).timeout(Duration.ofSeconds(60)).build());
        assertThat(r.infraError()).isNull();
        assertThat(r.stdoutText()).contains("shm=1").containsPattern("awk=(137|1|2)");
        VmTests.assertNothingLeft(vm);
    }

    @Test
    void aGuestKernelCrashEndsClearly() throws IOException {
        SandboxResult r = vm.run(sh("echo c > /proc/sysrq-trigger; sleep 60").timeout(Duration.ofSeconds(60)).build());
        assertThat(r.infraError()).contains("guest kernel panicked").contains("sysrq");
        VmTests.assertNothingLeft(vm);
    }

    @Test
    void liveSubprocessesShareTheGuest() throws Exception {
        List<ProcessExit> exits = new java.util.concurrent.CopyOnWriteArrayList<>();
        List<VmTests.HostProcess> hostSide = new java.util.concurrent.CopyOnWriteArrayList<>();
        StringBuilder subOut = new StringBuilder();
        SandboxResult r = vm.run(sh("read line; echo main got $line").keepStdinOpen(true).build(), new SandboxListener() {
            @Override public void onLive(LiveSandbox live) {
                Thread.ofVirtual().start(() -> {
                    try {
                        live.spawn(new ProcessSpec(List.of("sh", "-c", "cat; echo sub $(id -u) > /tmp/sub"), true,
                                java.util.Map.of("PATH", "/bin"), "/", 1000, 1000, null, 0), "hello".getBytes(), true);
                        for (int i = 0; i < 600 && exits.isEmpty(); i++) Thread.sleep(50);
                        hostSide.addAll(VmTests.hostProcesses(vm));
                        live.writeStdin(LiveSandbox.MAIN, "done\n".getBytes(), true);
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                });
            }
            @Override public void onSubprocessOutput(int spid, boolean stderr, byte[] b, int off, int len) {
                synchronized (subOut) { subOut.append(new String(b, off, len)); }
            }
            @Override public void onSubprocessExit(ProcessExit e) { exits.add(e); }
        }, CancelToken.none());
        assertThat(r.infraError()).isNull();
        assertThat(r.stdoutText()).isEqualTo("main got done\n");
        assertThat(exits).hasSize(1);
        assertThat(exits.getFirst().exitCode()).isZero();
        assertThat(exits.getFirst().usage().minorFaults()).isPositive();
        assertThat(subOut.toString()).isEqualTo("hello");
        // The host side of a live VM: QEMU unprivileged (its own uid, no capabilities, no_new_privs, seccomp) and,
        // with virtiofsd, in the run's own memory cgroup.
        VmTests.HostProcess qemu = hostSide.stream().filter(p -> p.cmdline().contains("qemu-system")).findFirst().orElseThrow();
        assertThat(qemu.uid()).isBetween((long) VmSandboxRuntime.VM_UID_BASE, (long) VmSandboxRuntime.VM_UID_BASE + VmSandboxRuntime.VM_UID_COUNT);
        assertThat(qemu.status()).contains("NoNewPrivs:\t1").contains("Seccomp:\t2").contains("CapEff:\t0000000000000000");
        // virtiofsd: a monitor and the server proper, which runs in its own namespaces under seccomp, no bounding set.
        assertThat(hostSide).hasSize(3).allSatisfy(p -> assertThat(p.memoryCgroup()).endsWith("/" + VmTests.CGROUP_PARENT + "/contree-" + p.runId()));
        assertThat(hostSide).filteredOn(p -> p.cmdline().contains("virtiofsd") && p.status().contains("Seccomp:\t2"))
                .singleElement().satisfies(p -> assertThat(p.status()).contains("NoNewPrivs:\t1").contains("CapBnd:\t0000000000000000"));
        VmTests.assertNothingLeft(vm);
    }

    @Test
    void aGuestThatHangsInItsBootIsEnded() throws IOException {
        Path state = Files.createTempDirectory("contree-vm-hang");
        VmSandboxRuntime hanging = VmTests.runtime(state, 256L << 20);
        try {
            // No init to run and panic=0: the kernel panics and then waits for ever, with or without a command timeout.
            hanging.tuneBoot(null, "console=ttyS0 quiet panic=0 rdinit=/nonexistent tsc_early_khz=@TSC@");
            hanging.bootAllowance(Duration.ofSeconds(8));
            SandboxResult r = hanging.run(sh("true").timeout(null).build());
            assertThat(r.infraError()).contains("panicked").contains("init");
            VmTests.assertNothingLeft(hanging);
        } finally {
            VmTests.dispose(hanging);
            VmTests.deleteTree(state);
        }
    }

    @Test
    void aRestartedServerKillsWhatACrashedOneLeft() throws Exception {
        // A second runtime on the same state dir is what the next server start makes: its cleanupStale must end the
        // VM of a run the first one still had (QEMU, virtiofsd, sockets, cgroups), whoever's child it is.
        var removed = new java.util.concurrent.CompletableFuture<Integer>();
        SandboxResult r = vm.run(sh("sleep 60").timeout(Duration.ofSeconds(60)).build(), new SandboxListener() {
            @Override public void onStart(int pid) {
                Thread.ofVirtual().start(() -> {
                    try {
                        removed.complete(VmTests.runtime(stateDir, 256L << 20).cleanupStale());
                    } catch (Throwable e) {
                        removed.completeExceptionally(e);
                    }
                });
            }
        }, CancelToken.none());
        assertThat(removed.get(30, java.util.concurrent.TimeUnit.SECONDS)).isEqualTo(1);
        assertThat(r.infraError()).contains("QEMU was killed by SIGKILL");
        VmTests.assertNothingLeft(vm);
    }
}
