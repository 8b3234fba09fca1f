package dev.contree.network;

import dev.contree.cancel.CancelToken;
import dev.contree.sandbox.RuntimeConfig;
import dev.contree.sandbox.SandboxListener;
import dev.contree.sandbox.SandboxResult;
import dev.contree.sandbox.SandboxRuntime;
import dev.contree.sandbox.SandboxRuntimes;
import dev.contree.sandbox.SandboxSpec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What networking costs a vm-runtime execution (bench/vm-network.sh): N rounds, each a `true` without and with
 * networking (interleaved, so drift hits both), timed to the command's start (the boot) and to the result; then N
 * networked downloads of a blob from a test-made remote host, the guest command's own elapsed time. One VM at a time.
 * Args: N [blob MiB]
 */
public final class VmNetBench {
    public static void main(String[] args) throws Exception {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 7;
        int blobMiB = args.length > 1 ? Integer.parseInt(args[1]) : 16;
        Path work = Files.createTempDirectory("contree-vmnetbench");
        Path state = Files.createDirectories(work.resolve("state")), rootfs = Files.createDirectories(work.resolve("rootfs"));
        Path cache = Path.of(System.getProperty("java.io.tmpdir"), "contree-vm-test-cache");
        Files.createDirectories(cache);
        Files.createSymbolicLink(state.resolve("vm-cache"), cache);
        Files.createDirectories(rootfs.resolve("bin"));
        Files.copy(Path.of("/bin/busybox"), rootfs.resolve("bin/busybox"));
        for (String a : List.of("sh", "true", "wget")) Files.createSymbolicLink(rootfs.resolve("bin/" + a), Path.of("busybox"));
        try (RemoteHost remote = RemoteHost.start(49, (long) blobMiB << 20)) {
            SlirpNetworks nets = SlirpNetworks.start(NetworkingTestBase.policy(remote), state, work.resolve("data"), "contree-vmnetbench");
            try {
                SandboxRuntime vm = SandboxRuntimes.create(new RuntimeConfig(RuntimeConfig.Kind.VM, null, "ptrace", state, 256L << 20,
                        256, 1.0, 1 << 20, Duration.ofSeconds(10), "contree-vmnetbench", nets, false));
                double[][] boot = new double[2][n], total = new double[2][n];
                double[] trueElapsed = new double[n], download = new double[n];
                for (int i = -1; i < n; i++) { // round -1 warms up
                    for (int net = 0; net < 2; net++) {
                        long t0 = System.nanoTime();
                        AtomicLong started = new AtomicLong();
                        SandboxResult r = run(vm, rootfs, "true", net == 1, started);
                        if (i < 0) continue;
                        total[net][i] = (System.nanoTime() - t0) / 1e6;
                        boot[net][i] = (started.get() - t0) / 1e6;
                        if (net == 1) trueElapsed[i] = r.usage().elapsedSeconds() * 1e3;
                    }
                    SandboxResult d = run(vm, rootfs, "wget -q -O /dev/null " + remote.url(remote.allowed, "blob"), true, new AtomicLong());
                    if (i >= 0) download[i] = d.usage().elapsedSeconds() * 1e3;
                    if (i == 0) System.out.println("download's network figures: " + d.network());
                }
                System.out.printf("vm runtime (%s), median of %d (ms)%n", "TCG unless KVM is usable", n);
                System.out.printf("%-26s %10s %10s %10s%n", "", "off", "on", "on - off");
                System.out.printf("%-26s %10.1f %10.1f %10.1f%n", "boot -> command start", median(boot[0]), median(boot[1]), median(boot[1]) - median(boot[0]));
                System.out.printf("%-26s %10.1f %10.1f %10.1f%n", "`true` per execution", median(total[0]), median(total[1]), median(total[1]) - median(total[0]));
                double dl = median(download);
                System.out.printf("networked wget of %d MiB in the guest: %.1f ms (%.1f MiB/s; `true` in the guest %.1f ms)%n",
                        blobMiB, dl, blobMiB / (dl / 1e3), median(trueElapsed));
                System.out.println("raw boot off: " + Arrays.toString(boot[0]));
                System.out.println("raw boot on:  " + Arrays.toString(boot[1]));
                System.out.println("raw total off: " + Arrays.toString(total[0]));
                System.out.println("raw total on:  " + Arrays.toString(total[1]));
                System.out.println("raw download: " + Arrays.toString(download));
                vm.cleanupStale();
            } finally {
                nets.close();
            }
        }
        new ProcessBuilder("rm", "-rf", work.toString()).inheritIO().start().waitFor();
        for (String c : List.of("memory", "cpu", "cpuacct", "pids")) Files.deleteIfExists(Path.of("/sys/fs/cgroup", c, "contree-vmnetbench"));
    }

    static SandboxResult run(SandboxRuntime vm, Path rootfs, String script, boolean net, AtomicLong started) throws Exception {
        SandboxSpec spec = SandboxSpec.shell("nb" + System.nanoTime(), rootfs, script).timeout(Duration.ofSeconds(120)).network(net).build();
        SandboxResult r = vm.run(spec, new SandboxListener() {
            @Override public void onStart(int pid) { started.set(System.nanoTime()); }
        }, CancelToken.none());
        if (!r.ok() || r.exitCode() != 0) throw new IllegalStateException("run failed: " + r + " " + r.stderrText());
        return r;
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
