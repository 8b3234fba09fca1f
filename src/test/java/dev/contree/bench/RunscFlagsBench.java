package dev.contree.bench;

import dev.contree.TestImages;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * What one idle runsc sandbox costs with each flag set ({@code bench/density.sh runsc-flags}): K sandboxes of
 * {@code sleep} started with {@code runsc run} (foreground, as the server does) over the extracted busybox rootfs,
 * the host cost of this JVM's descendants read from /proc before and after, divided by K. The first variant is the
 * server's own flag set; every other one changes one thing. Also runc, for comparison.
 *
 * <p>Environment: DENSITY_WORK (the script's dir), FLAGS_K (8 sandboxes per variant).
 */
public final class RunscFlagsBench {

    public static void main(String[] args) throws Exception {
        Path work = Path.of(System.getenv().getOrDefault("DENSITY_WORK", Files.createTempDirectory("runsc-flags").toString()));
        int k = Integer.parseInt(DensityBench.env("FLAGS_K", "8"));
        Path rootfs = Files.createDirectories(work.resolve("flags-rootfs"));
        Path tgz = work.resolve("flags-busybox.tar.gz");
        Files.write(tgz, TestImages.busyboxRootfs());
        ExecBench.exec(work, List.of("tar", "-C", rootfs.toString(), "-xzf", tgz.toString()));
        Files.createDirectories(rootfs.resolve("tmp"));
        List<String> server = List.of("--platform=ptrace", "--network=none", "--overlay2=none", "--file-access=exclusive", "--oci-seccomp");
        Map<String, List<String>> variants = new LinkedHashMap<>();
        variants.put("runc (for comparison)", null);
        variants.put("server's flags", server);
        variants.put("--file-access=shared", replace(server, "--file-access=exclusive", "--file-access=shared"));
        variants.put("--overlay2=root:memory", replace(server, "--overlay2=none", "--overlay2=root:memory"));
        variants.put("--lisafs=false", plus(server, "--lisafs=false"));
        variants.put("--dcache=64", plus(server, "--dcache=64"));
        variants.put("--buffer-pooling=false", plus(server, "--buffer-pooling=false"));
        String only = System.getenv("FLAGS_ONLY");
        System.out.printf("idle sandbox cost per variant, %d `sleep` sandboxes each (runsc %s)%n", k,
                ExecBench.exec(null, List.of("runsc", "--version")).lines().findFirst().orElse("?"));
        long self = ProcessHandle.current().pid();
        int seq = 0;
        for (var v : variants.entrySet()) {
            if (only != null && !v.getKey().contains(only)) continue;
            String rt = v.getValue() == null ? "runc" : "runsc";
            Path root = Files.createDirectories(work.resolve("flags-state-" + seq));
            Path bundle = Files.createDirectories(work.resolve("flags-bundle-" + seq));
            seq++;
            ExecBench.exec(bundle, List.of("runc", "spec"));
            ExecBench.exec(bundle, List.of("sh", "-c", "jq '.process.terminal=false | .process.args=[\"/bin/sleep\",\"600\"] | .root.path=\""
                    + rootfs + "\" | .root.readonly=false' config.json > c && mv c config.json"));
            HostCost before = HostCost.of(self);
            List<Process> ps = new ArrayList<>();
            List<String> cids = new ArrayList<>();
            try {
                for (int i = 0; i < k; i++) {
                    List<String> cmd = new ArrayList<>(List.of(rt, "--root", root.toString()));
                    if (v.getValue() != null) cmd.addAll(v.getValue());
                    String cid = "flags-" + seq + "-" + i;
                    cmd.addAll(List.of("run", "--bundle", bundle.toString(), cid));
                    cids.add(cid);
                    ps.add(new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                            .redirectError(work.resolve("flags-" + cid + ".err").toFile()).redirectInput(new File("/dev/null")).start());
                }
                // Running once `runsc/runc state` says so for all, then a settle for the sentry's start-up garbage.
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
                for (String cid : cids) {
                    while (!ExecBench.exec(null, List.of(rt, "--root", root.toString(), "list")).contains(cid + " ")
                            || !state(rt, root, cid).contains("\"running\"")) {
                        if (System.nanoTime() > end) throw new IllegalStateException(v.getKey() + ": " + cid + " not running; "
                                + Files.readString(work.resolve("flags-" + cid + ".err")));
                        Thread.sleep(200);
                    }
                }
                Thread.sleep(5000);
                HostCost after = HostCost.of(self);
                System.out.printf("%n%-44s %s%n", v.getKey(), HostCost.perSandbox(before, after, k));
            } finally {
                for (String cid : cids) {
                    new ProcessBuilder(rt, "--root", root.toString(), "delete", "--force", cid).redirectErrorStream(true)
                            .redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor(30, TimeUnit.SECONDS);
                }
                for (Process p : ps) if (!p.waitFor(30, TimeUnit.SECONDS)) p.destroyForcibly();
            }
        }
        System.exit(0);
    }

    static String state(String rt, Path root, String cid) {
        try {
            return ExecBench.exec(null, List.of(rt, "--root", root.toString(), "state", cid));
        } catch (Exception e) {
            return "";
        }
    }

    static List<String> replace(List<String> l, String from, String to) {
        return l.stream().map(x -> x.equals(from) ? to : x).toList();
    }

    static List<String> plus(List<String> l, String more) {
        List<String> r = new ArrayList<>(l);
        r.add(more);
        return r;
    }
}
