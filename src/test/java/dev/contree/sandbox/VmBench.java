package dev.contree.sandbox;

import dev.contree.cancel.CancelToken;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The vm runtime against runsc and runc in one invocation (bench/vm.sh): per execution of {@code true} (median
 * of N), boot to the first command, a {@code true} subprocess round trip in a live sandbox, a 10-way fan-out;
 * then the boot choices of docs/sandbox.md (machine options, kernel command line), each for N boots.
 * Args: N [boot-choices: yes|no|only]
 */
public final class VmBench {
    public static void main(String[] args) throws Exception {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        boolean choices = args.length < 2 || !args[1].equals("no");
        boolean only = args.length >= 2 && args[1].equals("only");
        Path work = Files.createTempDirectory("contree-vmbench");
        Path cache = Path.of(System.getProperty("java.io.tmpdir"), "contree-vm-test-cache");
        System.out.printf("%-6s %12s %14s %14s %14s   (ms; median of %d; fan-out: wall time of 10 at once)%n",
                "kind", "true/exec", "boot->command", "live true rtt", "10-way fanout", n);
        for (RuntimeConfig.Kind k : only ? List.<RuntimeConfig.Kind>of() : List.of(RuntimeConfig.Kind.RUNC, RuntimeConfig.Kind.RUNSC, RuntimeConfig.Kind.VM)) {
            Path state = Files.createDirectories(work.resolve("state-" + k));
            if (k == RuntimeConfig.Kind.VM) {
                Files.createDirectories(cache);
                Files.createSymbolicLink(state.resolve("vm-cache"), cache);
            }
            SandboxRuntime rt = SandboxRuntimes.create(RuntimeConfig.defaults(k, state).withLimits(256L << 20, 256, 1.0));
            if (rt instanceof VmSandboxRuntime vm) vm.assets();
            double[] exec = new double[n], boot = new double[n];
            for (int i = -1; i < n; i++) {
                Path rootfs = SandboxRuntimeTest.busyboxRootfs(work);
                long t0 = System.nanoTime();
                AtomicLong started = new AtomicLong();
                SandboxResult r = rt.run(spec(rootfs, List.of("/bin/true")), new SandboxListener() {
                    @Override public void onStart(int pid) { started.set(System.nanoTime()); }
                }, CancelToken.none());
                if (!r.ok() || r.exitCode() != 0) throw new IllegalStateException("run failed: " + r);
                if (i >= 0) {
                    exec[i] = (System.nanoTime() - t0) / 1e6;
                    boot[i] = (started.get() - t0) / 1e6;
                }
            }
            if (rt instanceof VmSandboxRuntime) System.out.printf("       (host memory of one VM running `sleep`: %.1f MiB, its cgroup's usage)%n",
                    sleepingCost(rt, SandboxRuntimeTest.busyboxRootfs(work)) / 1048576.0);
            double rtt = liveRoundTrip(rt, SandboxRuntimeTest.busyboxRootfs(work), 20);
            double fan = fanOut(rt, work, 10);
            System.out.printf("%-6s %12.1f %14.1f %14.1f %14.1f%n", rt.name(), SandboxBench.median(exec), SandboxBench.median(boot),
                    rtt, fan);
            rt.cleanupStale();
            if (rt instanceof VmSandboxRuntime vm) VmTests.dispose(vm);
        }
        if (choices) bootChoices(work, cache, n);
        SandboxBench.exec(work, List.of("rm", "-rf", work.toString()));
    }

    static SandboxSpec spec(Path rootfs, List<String> argv) {
        return SandboxSpec.builder("b" + System.nanoTime(), rootfs, argv).lookupPath(false).timeout(Duration.ofSeconds(120)).build();
    }

    /** The host cgroup's memory usage of a VM whose command sleeps (QEMU, virtiofsd, the guest RAM touched). */
    static long sleepingCost(SandboxRuntime rt, Path rootfs) throws Exception {
        String id = "b" + System.nanoTime();
        AtomicLong usage = new AtomicLong(-1);
        rt.run(SandboxSpec.builder(id, rootfs, List.of("/bin/sleep", "3")).lookupPath(false).timeout(Duration.ofSeconds(60)).build(),
                new SandboxListener() {
                    @Override public void onStart(int pid) {
                        Thread.ofVirtual().start(() -> {
                            try {
                                Thread.sleep(1500);
                                usage.set(Long.parseLong(Files.readString(Path.of("/sys/fs/cgroup/memory/contree/contree-" + id
                                        + "/memory.usage_in_bytes")).strip()));
                            } catch (Exception e) {
                                e.printStackTrace();
                            }
                        });
                    }
                }, CancelToken.none());
        return usage.get();
    }

    /** Median time of spawn(true) to its exit in one live sandbox. */
    static double liveRoundTrip(SandboxRuntime rt, Path rootfs, int m) throws Exception {
        double[] t = new double[m];
        CountDownLatch done = new CountDownLatch(1);
        java.util.concurrent.BlockingQueue<ProcessExit> exits = new java.util.concurrent.LinkedBlockingQueue<>();
        SandboxResult r = rt.run(SandboxSpec.builder("b" + System.nanoTime(), rootfs, List.of("/bin/cat")).lookupPath(false)
                .keepStdinOpen(true).timeout(Duration.ofSeconds(300)).build(), new SandboxListener() {
            @Override public void onLive(LiveSandbox live) {
                Thread.ofVirtual().start(() -> {
                    try {
                        for (int i = -2; i < m; i++) {
                            long t0 = System.nanoTime();
                            live.spawn(new ProcessSpec(List.of("/bin/true"), false, Map.of(), "/", 0, 0, null, 0), null, true);
                            ProcessExit e = exits.poll(60, TimeUnit.SECONDS);
                            if (e == null || e.exitCode() != 0) throw new IllegalStateException("subprocess: " + e);
                            if (i >= 0) t[i] = (System.nanoTime() - t0) / 1e6;
                        }
                        live.writeStdin(LiveSandbox.MAIN, null, true);
                    } catch (Exception e) {
                        e.printStackTrace();
                    } finally {
                        done.countDown();
                    }
                });
            }
            @Override public void onSubprocessExit(ProcessExit e) { exits.add(e); }
        }, CancelToken.none());
        done.await(5, TimeUnit.MINUTES);
        if (!r.ok()) throw new IllegalStateException("live run failed: " + r);
        return SandboxBench.median(t);
    }

    static double fanOut(SandboxRuntime rt, Path work, int k) throws Exception {
        List<Path> roots = new ArrayList<>();
        for (int i = 0; i < k; i++) roots.add(SandboxRuntimeTest.busyboxRootfs(work));
        long t0 = System.nanoTime();
        try (var pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<SandboxResult>> fs = new ArrayList<>();
            for (Path r : roots) fs.add(pool.submit(() -> rt.run(spec(r, List.of("/bin/true")))));
            for (Future<SandboxResult> f : fs) {
                SandboxResult r = f.get();
                if (!r.ok() || r.exitCode() != 0) throw new IllegalStateException("fan-out run failed: " + r);
            }
        }
        return (System.nanoTime() - t0) / 1e6;
    }

    /** Boot to the first command and the guest's own uptime then, for each machine/command-line choice. */
    static void bootChoices(Path work, Path cache, int n) throws Exception {
        String base = "console=ttyS0 quiet loglevel=1 panic=-1 reboot=t pci=off rdinit=/init tsc_early_khz=@TSC@";
        String[][] choices = {
                {"chosen", VmSandboxRuntime.MACHINE, base},
                {"microvm (all)", "microvm", base},
                {"rtc=off", "microvm,rtc=off", base},
                {"pit=off", "microvm,pit=off", base},
                {"pic=off", "microvm,pic=off", base},
                {"pic,pit,rtc=off", "microvm,rtc=off,pic=off,pit=off", base},
                {"no quiet", VmSandboxRuntime.MACHINE, base.replace("quiet loglevel=1 ", "")},
                {"PCI probe", VmSandboxRuntime.MACHINE, base.replace("pci=off ", "")},
                {"+mitigations=off", VmSandboxRuntime.MACHINE, base + " mitigations=off"},
        };
        Path state = Files.createDirectories(work.resolve("state-choices"));
        Files.createSymbolicLink(state.resolve("vm-cache"), cache);
        VmSandboxRuntime vm = (VmSandboxRuntime) SandboxRuntimes.create(
                RuntimeConfig.defaults(RuntimeConfig.Kind.VM, state).withLimits(256L << 20, 256, 1.0));
        System.out.printf("%n%-18s %14s %14s %8s   (ms, median of %d; guest uptime = /proc/uptime at the first command)%n",
                "boot choice", "boot->command", "guest uptime", "fails", n);
        for (String[] c : choices) {
            vm.tuneBoot(c[1], c[2]);
            double[] boot = new double[n], up = new double[n];
            int fails = 0;
            for (int i = 0; i < n; i++) {
                Path rootfs = SandboxRuntimeTest.busyboxRootfs(work);
                long t0 = System.nanoTime();
                AtomicLong started = new AtomicLong();
                SandboxResult r = vm.run(SandboxSpec.builder("b" + System.nanoTime(), rootfs, List.of("/bin/cat", "/proc/uptime"))
                        .lookupPath(false).timeout(Duration.ofSeconds(60)).build(), new SandboxListener() {
                    @Override public void onStart(int pid) { started.set(System.nanoTime()); }
                }, CancelToken.none());
                if (!r.ok() || r.exitCode() != 0) { fails++; boot[i] = Double.NaN; up[i] = Double.NaN; continue; }
                boot[i] = (started.get() - t0) / 1e6;
                up[i] = Double.parseDouble(r.stdoutText().split(" ")[0]) * 1000;
            }
            System.out.printf("%-18s %14.1f %14.1f %8d%n", c[0], SandboxBench.median(boot), SandboxBench.median(up), fails);
        }
        VmTests.dispose(vm);
    }
}
