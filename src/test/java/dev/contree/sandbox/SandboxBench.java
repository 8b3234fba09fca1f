package dev.contree.sandbox;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Latency of `true`: through the Java runtime vs the raw runtime CLI on a minimal bundle, same process.
 * Run by bench/sandbox.sh. Args: N [kinds...]
 */
public final class SandboxBench {
    public static void main(String[] args) throws Exception {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 20;
        List<RuntimeConfig.Kind> kinds = new ArrayList<>();
        for (int i = 1; i < args.length; i++) kinds.add(RuntimeConfig.Kind.valueOf(args[i].toUpperCase()));
        if (kinds.isEmpty()) kinds = List.of(RuntimeConfig.Kind.RUNC, RuntimeConfig.Kind.RUNSC);
        Path work = Files.createTempDirectory("contree-bench");
        Path rootfs = SandboxRuntimeTest.busyboxRootfs(work);
        Path bundle = Files.createDirectories(work.resolve("bundle"));
        exec(bundle, List.of("runc", "spec"));
        exec(bundle, List.of("sh", "-c", "jq '.process.terminal=false | .process.args=[\"/bin/true\"] | .root.path=\"" + rootfs + "\"' config.json > c && mv c config.json"));
        System.out.printf("%-6s %10s %10s %7s   (median of %d, ms)%n", "kind", "raw CLI", "ConTree", "ratio", n);
        for (RuntimeConfig.Kind k : kinds) {
            Path state = Files.createDirectories(work.resolve("state-" + k));
            SandboxRuntime rt = SandboxRuntimes.create(RuntimeConfig.defaults(k, state));
            String bin = rt.name();
            List<String> raw = new ArrayList<>(List.of(bin, "--root", state.resolve("raw").toString()));
            if (k == RuntimeConfig.Kind.RUNSC) raw.addAll(List.of("--platform=ptrace", "--network=none"));
            raw.addAll(List.of("run", "--bundle", bundle.toString()));
            double[] tRaw = new double[n], tJava = new double[n];
            for (int i = -2; i < n; i++) { // 2 warm-up rounds
                List<String> cmd = new ArrayList<>(raw);
                cmd.add("bench-raw-" + k + "-" + i);
                long t0 = System.nanoTime();
                exec(bundle, cmd);
                double a = (System.nanoTime() - t0) / 1e6;
                t0 = System.nanoTime();
                SandboxResult r = rt.run(SandboxSpec.builder("bench-" + i + "-" + System.nanoTime(), rootfs, List.of("/bin/true"))
                        .lookupPath(false).timeout(Duration.ofSeconds(30)).build());
                double b = (System.nanoTime() - t0) / 1e6;
                if (!r.ok() || r.exitCode() != 0) throw new IllegalStateException("run failed: " + r);
                if (i >= 0) { tRaw[i] = a; tJava[i] = b; }
            }
            double mr = median(tRaw), mj = median(tJava);
            System.out.printf("%-6s %10.1f %10.1f %7.2f%n", bin, mr, mj, mj / mr);
        }
        exec(work, List.of("rm", "-rf", work.toString()));
    }

    static double median(double[] a) {
        double[] c = a.clone();
        Arrays.sort(c);
        return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
    }

    static void exec(Path dir, List<String> cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) throw new IllegalStateException("failed: " + cmd);
    }
}
