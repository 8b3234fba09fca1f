package dev.contree.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.TestImages;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Density benchmark, run by {@code bench/density.sh} (issue 11, point 4). Every server is a real {@code contree
 * serve} in its own JVM; the API latencies come from {@link ApiProbe} in a third JVM.
 *
 * <ol>
 *   <li>Sleepers: N sandboxes that all sleep until one shared deadline, submitted at once. Reported: time from
 *       the first submit until all N are EXECUTING, what each costs the host (processes, RSS/PSS, fds from /proc,
 *       MemAvailable), API p50/p99 while they ramp up and while they all sleep, and whether all end SUCCESS.</li>
 *   <li>Burst (after {@code DENSITY_BURST_WARMUP}=100 untimed disposable runs that warm the server's JIT): B executions
 *       of {@code echo $i > /f} (kept: one child image each) from one parent, all POSTed at
 *       once to a server with concurrency P, against the raw runtime doing the same B runs with P workers
 *       ({@code runc run} / {@code runsc run} of a bundle over the extracted rootfs, as ExecBench's raw side).</li>
 * </ol>
 * Environment: DENSITY_WORK (a dir the script cleans), DENSITY_RUNTIMES (runc,runsc), DENSITY_N (100,300,1000;
 * runsc takes the values up to DENSITY_RUNSC_MAX, 300), DENSITY_HOLD_S (sleep window per N; default from a
 * start-rate estimate), DENSITY_BURST (1000; 0 skips), DENSITY_BURST_PARALLEL (4), DENSITY_SANDBOX_MEMORY (64m),
 * DENSITY_PROBE_MS (250).
 */
public final class DensityBench {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String TOKEN = "density-bench-token";
    static final AtomicInteger SEQ = new AtomicInteger();
    static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).executor(Executors.newVirtualThreadPerTaskExecutor()).build();
    /** Child JVMs, stopped on any exit (a timeout's SIGTERM too) so that their sandboxes end with them. */
    static final List<Process> CHILDREN = java.util.Collections.synchronizedList(new ArrayList<>());

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            for (Process p : List.copyOf(CHILDREN)) p.destroy();
            for (Process p : List.copyOf(CHILDREN)) {
                try {
                    if (!p.waitFor(30, TimeUnit.SECONDS)) p.destroyForcibly();
                } catch (InterruptedException e) {
                    p.destroyForcibly();
                }
            }
        }));
    }

    /** One {@code contree serve} in its own JVM, with the busybox image imported. */
    static final class Server implements AutoCloseable {
        final String rt;
        final Process proc;
        final String base;
        final Path dir;
        String image;

        Server(String rt, Path dir, int concurrency, String memory) throws Exception {
            this.rt = rt;
            this.dir = Files.createDirectories(dir);
            int port;
            try (ServerSocket s = new ServerSocket(0)) {
                port = s.getLocalPort();
            }
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            List<String> cmd = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-Xmx2g"));
            // e.g. -XX:StartFlightRecording=filename=/tmp/server-%p.jfr to profile a server
            String opts = env("DENSITY_SERVER_JAVA_OPTS", "");
            if (!opts.isEmpty()) cmd.addAll(Arrays.asList(opts.split("\\s+")));
            // DENSITY_SERVER_CLASSES: the server from another build's classes first (an A/B comparison)
            String classes = env("DENSITY_SERVER_CLASSES", "");
            cmd.addAll(List.of("-cp", (classes.isEmpty() ? "" : classes + ":") + System.getProperty("java.class.path"), "dev.contree.Main", "serve",
                    "--data", dir.resolve("data").toString(), "--listen", "127.0.0.1:" + port, "--token", TOKEN, "--runtime", rt,
                    "--concurrency", String.valueOf(concurrency), "--account-concurrency", String.valueOf(concurrency),
                    "--sandbox-memory", memory, "--max-timeout", "3600"));
            proc = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("server.log").toFile()).start();
            CHILDREN.add(proc);
            base = "http://127.0.0.1:" + port;
            for (int i = 0; ; i++) {
                try {
                    call("GET", "/v1/whoami", null);
                    break;
                } catch (IOException e) {
                    if (!proc.isAlive() || i > 600) throw new IOException("server did not start; see " + dir.resolve("server.log"), e);
                    Thread.sleep(100);
                }
            }
            String file = call("POST", "/v1/files", TestImages.busyboxRootfs()).get("uuid").asText();
            String imp = call("POST", "/v1/images/import", ("{\"registry\":{\"url\":\"rootfs+file://" + file + "\"},\"tag\":\"density\"}").getBytes())
                    .get("uuid").asText();
            image = await(imp, Duration.ofSeconds(120)).get("result").get("image").asText();
        }

        JsonNode call(String method, String path, byte[] body) throws IOException, InterruptedException {
            var b = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(60)).header("Authorization", "Bearer " + TOKEN)
                    .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(body));
            HttpResponse<byte[]> r = HTTP.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
            if (r.statusCode() >= 400) throw new IOException(method + " " + path + " -> " + r.statusCode() + " " + new String(r.body()));
            if (path.contains("/download")) return JSON.getNodeFactory().textNode(new String(r.body()));
            return r.body().length == 0 ? JSON.createObjectNode() : JSON.readTree(r.body());
        }

        JsonNode await(String op, Duration max) throws Exception {
            return await(op, max, 20);
        }

        /** Polls every {@code pollMs}: a burst polls slowly, so the client does not compete with it for the CPU. */
        JsonNode await(String op, Duration max, long pollMs) throws Exception {
            long end = System.nanoTime() + max.toNanos();
            while (true) {
                JsonNode o = call("GET", "/v1/operations/" + op, null);
                if (terminal(o)) return o;
                if (System.nanoTime() > end) throw new IllegalStateException("operation " + op + " not done in " + max + ": " + o);
                Thread.sleep(pollMs);
            }
        }

        /** The uuids of this account's instance operations with {@code status} (all pages). */
        Set<String> withStatus(String status) throws Exception {
            Set<String> s = new HashSet<>();
            for (int off = 0; ; off += 1000) {
                JsonNode page = call("GET", "/v1/operations?kind=instance&limit=1000&status=" + status + "&offset=" + off, null);
                for (JsonNode o : page) s.add(o.get("uuid").asText());
                if (page.size() < 1000) return s;
            }
        }

        /** POSTs every body at once (16 client threads); returns the operation ids in order. */
        List<String> submit(List<String> bodies) throws Exception {
            List<String> ops = new ArrayList<>();
            try (ExecutorService pool = Executors.newFixedThreadPool(16)) {
                List<Future<String>> f = new ArrayList<>();
                for (String b : bodies) f.add(pool.submit(() -> call("POST", "/v1/instances", b.getBytes()).get("uuid").asText()));
                for (Future<String> x : f) ops.add(x.get());
            }
            return ops;
        }

        @Override
        public void close() throws Exception {
            proc.destroy();
            if (!proc.waitFor(60, TimeUnit.SECONDS)) proc.destroyForcibly().waitFor();
        }
    }

    static boolean terminal(JsonNode o) {
        return o.get("status").asText().matches("SUCCESS|FAILED|CANCELLED");
    }

    public static void main(String[] args) throws Exception {
        Path work = Path.of(System.getenv().getOrDefault("DENSITY_WORK", Files.createTempDirectory("density").toString()));
        List<String> runtimes = Arrays.asList(env("DENSITY_RUNTIMES", "runc,runsc").split(","));
        // DENSITY_N=none: the burst only
        List<Integer> ns = env("DENSITY_N", "100,300,1000").equals("none") ? List.of()
                : Arrays.stream(env("DENSITY_N", "100,300,1000").split(",")).map(String::trim).map(Integer::parseInt).toList();
        int runscMax = Integer.parseInt(env("DENSITY_RUNSC_MAX", "300"));
        int burst = Integer.parseInt(env("DENSITY_BURST", "1000"));
        int parallel = Integer.parseInt(env("DENSITY_BURST_PARALLEL", "4"));
        String memory = env("DENSITY_SANDBOX_MEMORY", "64m");
        long t0 = System.nanoTime();
        System.out.printf("ConTree density bench: runtimes %s, N %s (runsc up to %d), burst %d at parallelism %d, sandbox memory %s,"
                + " %d cores, %s%n", runtimes, ns, runscMax, burst, parallel, memory, Runtime.getRuntime().availableProcessors(), Instant.now());
        List<String> summary = new ArrayList<>();
        for (String rt : runtimes) {
            List<Integer> mine = ns.stream().filter(n -> rt.equals("runc") || n <= runscMax).toList();
            if (!mine.isEmpty()) {
                int max = mine.stream().max(Integer::compare).orElseThrow();
                try (Server s = new Server(rt, work.resolve("sleep-" + rt), max + 20, memory)) {
                    Path stop = work.resolve("probe-stop-" + rt), samples = work.resolve("probe-" + rt + ".txt");
                    Process probe = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx256m",
                            "-cp", System.getProperty("java.class.path"), ApiProbe.class.getName(), s.base, TOKEN, s.image,
                            samples.toString(), stop.toString(), env("DENSITY_PROBE_MS", "250"))
                            .redirectErrorStream(true).redirectOutput(work.resolve("probe-" + rt + ".log").toFile()).start();
                    CHILDREN.add(probe);
                    try {
                        Thread.sleep(3000); // the probe's JVM up and warm
                        for (int n : mine) summary.add(sleepers(s, n, samples));
                    } finally {
                        Files.writeString(stop, "");
                        if (!probe.waitFor(30, TimeUnit.SECONDS)) probe.destroyForcibly();
                    }
                }
            }
            if (burst > 0) {
                try (Server s = new Server(rt, work.resolve("burst-" + rt), parallel, memory)) {
                    summary.add(burst(s, work, burst, parallel));
                }
            }
        }
        System.out.printf("%n== summary ==%n");
        summary.forEach(System.out::println);
        System.out.printf("total bench time %.0f s%n", (System.nanoTime() - t0) / 1e9);
        System.exit(0);
    }

    // ---- 1. sleepers ---------------------------------------------------------------------------------

    static String sleepers(Server s, int n, Path samples) throws Exception {
        // How long the sleepers hold: enough for all to start (a guess from the start rate here), then a steady window.
        double perStart = s.rt.equals("runc") ? 0.15 : 0.5;
        long hold = Long.parseLong(env("DENSITY_HOLD_S", String.valueOf(Math.round(40 + n * perStart))));
        System.out.printf("%n== %s: %d sleeping sandboxes (all sleep until %d s after the first submit) ==%n", s.rt, n, hold);
        long serverPid = s.proc.pid();
        HostCost before = HostCost.of(serverPid);
        long idle0 = System.currentTimeMillis();
        Thread.sleep(3000);
        long submit0 = System.currentTimeMillis();
        long deadline = submit0 / 1000 + hold;
        String cmd = "s=$((" + deadline + " - $(date +%s))); [ $s -gt 0 ] && sleep $s; true";
        String body = "{\"image\":\"" + s.image + "\",\"command\":" + JSON.writeValueAsString(cmd) + ",\"shell\":true,\"disposable\":true,\"timeout\":"
                + (hold + 600) + "}";
        long t0 = System.nanoTime();
        List<String> ops = s.submit(java.util.Collections.nCopies(n, body));
        double submitted = (System.nanoTime() - t0) / 1e9;
        Set<String> mine = new HashSet<>(ops);
        int maxExec = 0;
        double allAt = -1;
        while (System.currentTimeMillis() / 1000 < deadline - 5) {
            Set<String> ex = s.withStatus("EXECUTING");
            ex.retainAll(mine);
            maxExec = Math.max(maxExec, ex.size());
            if (ex.size() == n) {
                allAt = (System.nanoTime() - t0) / 1e9;
                break;
            }
            Thread.sleep(1000);
        }
        // EXECUTING is set as the runtime starts, not when the command runs: the host processes settle later
        // (at 1,000 runc sandboxes ~10% were still in `runc init` 3 s after all were EXECUTING).
        HostCost during = HostCost.of(serverPid);
        double settledAt = -1;
        while (System.currentTimeMillis() / 1000 < deadline - 5) {
            Thread.sleep(2000);
            HostCost next = HostCost.of(serverPid);
            boolean stable = next.processes() == during.processes() && next.byName().keySet().equals(during.byName().keySet());
            during = next;
            if (stable) {
                settledAt = (System.nanoTime() - t0) / 1e9;
                break;
            }
        }
        long rampEnd = System.currentTimeMillis();
        int countAt = allAt > 0 ? n : maxExec;
        System.out.printf("submitted %d in %.1f s; %s; most EXECUTING at once %d; host processes settled %s%n", n, submitted,
                allAt > 0 ? String.format(Locale.ROOT, "all %d EXECUTING %.1f s after the first submit", n, allAt)
                        : "NOT all EXECUTING before the deadline", maxExec,
                settledAt > 0 ? String.format(Locale.ROOT, "%.1f s after the first submit", settledAt) : "NOT before the deadline");
        System.out.println(HostCost.perSandbox(before, during, countAt) + (allAt > 0 ? "" : "   (divided by " + countAt + ")"));
        // Wait for the deadline, then for every sleeper to end.
        while (System.currentTimeMillis() / 1000 < deadline) Thread.sleep(500);
        long holdEnd = System.currentTimeMillis();
        Map<String, String> status = new LinkedHashMap<>();
        long end = System.nanoTime() + Duration.ofSeconds(180).toNanos();
        while (status.size() < n && System.nanoTime() < end) {
            for (String op : ops) {
                if (status.containsKey(op)) continue;
                JsonNode o = s.call("GET", "/v1/operations/" + op, null);
                if (terminal(o)) status.put(op, o.get("status").asText() + (o.get("status").asText().equals("SUCCESS") ? "" : " " + o.get("error")));
            }
            if (status.size() < n) Thread.sleep(1000);
        }
        double drained = (System.currentTimeMillis() - holdEnd) / 1e3;
        long ok = status.values().stream().filter("SUCCESS"::equals).count();
        Map<String, Long> bad = new TreeMap<>();
        status.values().stream().filter(v -> !v.equals("SUCCESS")).forEach(v -> bad.merge(v, 1L, Long::sum));
        System.out.printf("ended SUCCESS: %d of %d (%d not ended %.0f s after the deadline)%s; last ended %.1f s after the deadline%n",
                ok, n, n - status.size(), 180.0, bad.isEmpty() ? "" : " others: " + bad, drained);
        String api = apiTable(samples, idle0, submit0, rampEnd, holdEnd);
        System.out.print(api);
        HostCost after = HostCost.of(serverPid);
        System.out.printf("after: %d runtime processes left, server RSS %d MiB (before %d MiB)%n", after.processes(), after.rootRssKiB() / 1024,
                before.rootRssKiB() / 1024);
        return String.format(Locale.ROOT, "%s N=%d: all EXECUTING %s, host processes settled %s, SUCCESS %d/%d, per sandbox %.2f procs (%.1f threads) / RSS %.2f MiB / PSS %.2f MiB /"
                        + " %.1f fds (%+.1f server fds) / MemAvailable %+.2f MiB%n%s", s.rt, n,
                allAt > 0 ? String.format(Locale.ROOT, "in %.1f s", allAt) : "NO (max " + maxExec + ")",
                settledAt > 0 ? String.format(Locale.ROOT, "at %.1f s", settledAt) : "NO", ok, n,
                (during.processes() - before.processes()) / (double) countAt, (during.threads() - before.threads()) / (double) countAt,
                (during.rssKiB() - before.rssKiB()) / 1024.0 / countAt,
                (during.pssKiB() - before.pssKiB()) / 1024.0 / countAt, (during.fds() - before.fds()) / (double) countAt,
                (during.rootFds() - before.rootFds()) / (double) countAt,
                (during.memAvailableKiB() - before.memAvailableKiB()) / 1024.0 / countAt, api);
    }

    /** p50/p99/max per route and window from the probe's samples. */
    static String apiTable(Path samples, long idle0, long ramp0, long hold0, long hold1) throws IOException {
        record S(long at, String route, double ms, int status) {}
        List<S> all = new ArrayList<>();
        for (String line : Files.readAllLines(samples)) {
            String[] f = line.trim().split(" ");
            if (f.length == 4) all.add(new S(Long.parseLong(f[0]), f[1], Double.parseDouble(f[2]), Integer.parseInt(f[3])));
        }
        StringBuilder b = new StringBuilder(String.format("  %-9s %-14s %6s %8s %8s %8s %6s%n", "window", "route", "count", "p50 ms", "p99 ms", "max ms", "errors"));
        String[][] windows = {{"idle", String.valueOf(idle0), String.valueOf(ramp0)}, {"ramp-up", String.valueOf(ramp0), String.valueOf(hold0)},
                {"all-sleep", String.valueOf(hold0), String.valueOf(hold1)}};
        for (String[] w : windows) {
            long a = Long.parseLong(w[1]), z = Long.parseLong(w[2]);
            for (String route : List.of("whoami", "get-operation", "spawn")) {
                List<S> in = all.stream().filter(x -> x.route.equals(route) && x.at >= a && x.at < z).toList();
                List<Double> ms = in.stream().filter(x -> x.status / 100 == 2).map(S::ms).toList();
                long errors = in.stream().filter(x -> x.status / 100 != 2).count();
                b.append(String.format(Locale.ROOT, "  %-9s %-14s %6d %8.1f %8.1f %8.1f %6d%n", w[0], route, in.size(), ExecBench.quantile(ms, 0.5),
                        ExecBench.quantile(ms, 0.99), ms.stream().mapToDouble(Double::doubleValue).max().orElse(Double.NaN), errors));
            }
        }
        return b.toString();
    }

    // ---- 2. burst ------------------------------------------------------------------------------------

    static String burst(Server s, Path work, int count, int parallel) throws Exception {
        System.out.printf("%n== %s: burst of %d `echo $i > /f` (kept) from one parent, parallelism %d, vs the raw runtime ==%n", s.rt, count, parallel);
        Path rootfs = Files.createDirectories(work.resolve("rootfs-" + s.rt));
        Path tgz = work.resolve("busybox.tar.gz");
        if (!Files.exists(tgz)) Files.write(tgz, TestImages.busyboxRootfs());
        ExecBench.exec(work, List.of("tar", "-C", rootfs.toString(), "-xzf", tgz.toString()));
        Path tmpl = Files.createDirectories(work.resolve("bundle-tmpl-" + s.rt));
        ExecBench.exec(tmpl, List.of("runc", "spec"));
        ExecBench.exec(tmpl, List.of("sh", "-c", "jq '.process.terminal=false | .process.args=[\"/bin/sh\",\"-c\",\"echo I > /f\"] | .root.path=\""
                + rootfs + "\" | .root.readonly=false' config.json > c && mv c config.json"));
        String config = Files.readString(tmpl.resolve("config.json"));
        Path rawRoot = Files.createDirectories(work.resolve("raw-state-" + s.rt));
        List<Path> bundles = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            Path b = Files.createDirectories(work.resolve("raw-" + s.rt + "/b" + i));
            Files.writeString(b.resolve("config.json"), config.replace("echo I > /f", "echo " + i + " > /f"));
            bundles.add(b);
        }
        // Raw: the same runs with `parallel` workers.
        long self = ProcessHandle.current().pid();
        CpuMeter rawCpu0 = CpuMeter.of(self);
        long r0 = System.nanoTime();
        try (ExecutorService pool = Executors.newFixedThreadPool(parallel)) {
            List<Future<String>> f = new ArrayList<>();
            for (Path b : bundles) {
                List<String> cmd = new ArrayList<>(List.of(s.rt, "--root", rawRoot.toString()));
                if (s.rt.equals("runsc")) cmd.addAll(List.of("--platform=ptrace", "--network=none"));
                cmd.addAll(List.of("run", "--bundle", b.toString(), "density-raw-" + SEQ.incrementAndGet()));
                f.add(pool.submit(() -> ExecBench.exec(b, cmd)));
            }
            for (Future<String> x : f) x.get();
        }
        double raw = (System.nanoTime() - r0) / 1e9;
        System.out.printf("raw %s run x %d, %d workers: %.1f s%n", s.rt, count, parallel, raw);
        System.out.println("  raw " + CpuMeter.of(self).perRun(rawCpu0, count));
        // Warm-up, untimed: a fresh server JVM runs its first executions interpreted (measured: the first 200 cost
        // ~1.3x the steady state), and the ratio is meant to show the steady state.
        int warmup = Integer.parseInt(env("DENSITY_BURST_WARMUP", "100"));
        List<String> warm = new ArrayList<>();
        for (int i = 0; i < warmup; i++) {
            warm.add("{\"image\":\"" + s.image + "\",\"command\":\"true\",\"shell\":true,\"disposable\":true,\"timeout\":600}");
        }
        for (String op : s.submit(warm)) s.await(op, Duration.ofSeconds(1800), 200);
        if (warmup > 0) System.out.printf("warm-up: %d disposable executions, untimed%n", warmup);
        // API: all POSTed at once; the server runs `parallel` at a time.
        List<String> bodies = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            bodies.add("{\"image\":\"" + s.image + "\",\"command\":\"echo " + i + " > /f\",\"shell\":true,\"timeout\":600}");
        }
        CpuMeter apiCpu0 = CpuMeter.of(s.proc.pid()), clientCpu0 = CpuMeter.of(self);
        Instant wall0 = Instant.now();
        long a0 = System.nanoTime();
        List<String> ops = s.submit(bodies);
        double posted = (System.nanoTime() - a0) / 1e9;
        List<JsonNode> done = new ArrayList<>();
        for (String op : ops) done.add(s.await(op, Duration.ofSeconds(1800), 200));
        double api = (System.nanoTime() - a0) / 1e9;
        String apiCpu = "  server " + CpuMeter.of(s.proc.pid()).perRun(apiCpu0, count) + String.format(Locale.ROOT,
                "; this client (POSTs, polling) %.1f ms", CpuMeter.of(self).selfMs(clientCpu0, count));
        Instant last = wall0;
        Set<String> images = new HashSet<>();
        int ok = 0;
        for (JsonNode j : done) {
            if (!j.get("status").asText().equals("SUCCESS")) continue;
            ok++;
            images.add(j.get("result").get("image").asText());
            Instant f = Instant.parse(j.get("finished_at").asText());
            if (f.isAfter(last)) last = f;
        }
        images.remove(s.image);
        for (int i : new int[] {0, count - 1}) {
            String img = done.get(i).get("result").get("image").asText();
            String text = s.call("GET", "/v1/inspect/" + img + "/download?path=/f", null).asText();
            if (!text.equals(i + "\n")) throw new IllegalStateException("child " + i + " holds " + text);
        }
        double server = Duration.between(wall0, last).toNanos() / 1e9;
        System.out.println(apiCpu);
        System.out.print(phases(s, ops, done, parallel, Duration.between(wall0, last)));
        System.out.printf("API x %d (POSTed in %.1f s), server concurrency %d: %.1f s client wall, %.1f s to the last finished_at;"
                + " SUCCESS %d/%d, %d distinct child images%n", count, posted, parallel, api, server, ok, count, images.size());
        System.out.printf("ratio API / raw: %.2fx (client wall), %.2fx (server side)%n", api / raw, server / raw);
        return String.format(Locale.ROOT, "%s burst %d at parallelism %d: API %.1f s, raw %.1f s, ratio %.2fx (server side %.2fx), SUCCESS %d/%d,"
                + " %d distinct images", s.rt, count, parallel, api, raw, api / raw, server / raw, ok, count, images.size());
    }

    /**
     * Where a burst execution's time goes, from the operations' timestamps and their events' {@code ts}: median and p90
     * per phase, and how busy the slots were (the rest is the time between one run's end and the next one's start).
     */
    static String phases(Server s, List<String> ops, List<JsonNode> done, int parallel, Duration wall) throws Exception {
        String[] names = {"started -> init", "init -> spawn (layer, inject)", "spawn -> exit (runtime)", "exit -> shutdown",
                "shutdown -> finished (commit)", "finished -> completion"};
        List<List<Double>> ms = new ArrayList<>();
        for (String ignored : names) ms.add(new ArrayList<>());
        double busy = 0;
        List<Instant> starts = new ArrayList<>(), completions = new ArrayList<>();
        for (int i = 0; i < ops.size(); i++) {
            JsonNode op = done.get(i);
            if (!op.get("status").asText().equals("SUCCESS")) continue;
            Map<String, Instant> at = new LinkedHashMap<>();
            at.put("started", Instant.parse(op.get("started_at").asText()));
            for (String line : sse(s, ops.get(i)).split("\n")) {
                if (!line.startsWith("data: ")) continue;
                JsonNode e = JSON.readTree(line.substring(6));
                at.putIfAbsent(e.get("type").asText(), Instant.parse(e.get("ts").asText()));
            }
            at.put("finished", Instant.parse(op.get("finished_at").asText()));
            String[] order = {"started", "init", "spawn", "exit", "shutdown", "finished", "completion"};
            for (int k = 0; k + 1 < order.length; k++) {
                Instant a = at.get(order[k]), b = at.get(order[k + 1]);
                if (a != null && b != null) ms.get(k).add(Duration.between(a, b).toNanos() / 1e6);
            }
            if (at.get("completion") != null) busy += Duration.between(at.get("started"), at.get("completion")).toNanos() / 1e9;
            starts.add(at.get("started"));
            if (at.get("completion") != null) completions.add(at.get("completion"));
        }
        // The slot a run starts in was freed by the latest completion before it (all slots are busy in a burst).
        List<Double> gaps = new ArrayList<>();
        List<Instant> ends = completions.stream().sorted().toList();
        for (Instant start : starts) {
            Instant freed = null;
            for (Instant e : ends) {
                if (e.isAfter(start)) break;
                freed = e;
            }
            if (freed != null) gaps.add(Duration.between(freed, start).toNanos() / 1e6);
        }
        StringBuilder b = new StringBuilder(String.format("  %-32s %8s %8s%n", "phase (ms)", "p50", "p90"));
        for (int k = 0; k < names.length; k++) {
            b.append(String.format(Locale.ROOT, "  %-32s %8.2f %8.2f%n", names[k], ExecBench.quantile(ms.get(k), 0.5), ExecBench.quantile(ms.get(k), 0.9)));
        }
        b.append(String.format(Locale.ROOT, "  %-32s %8.2f %8.2f%n", "a completion -> the next start", ExecBench.quantile(gaps, 0.5),
                ExecBench.quantile(gaps, 0.9)));
        double slotSeconds = wall.toNanos() / 1e9 * parallel;
        b.append(String.format(Locale.ROOT, "  slots busy (EXECUTING -> completion) %.1f%% of %d x %.1f s; %.2f ms per execution outside it%n",
                100 * busy / slotSeconds, parallel, wall.toNanos() / 1e9, (slotSeconds - busy) * 1000 / ops.size()));
        return b.toString();
    }

    /** The operation's event log as SSE text (a replay). */
    static String sse(Server s, String op) throws IOException, InterruptedException {
        var r = HTTP.send(HttpRequest.newBuilder(URI.create(s.base + "/v1/operations/" + op + "/events")).timeout(Duration.ofSeconds(60))
                .header("Authorization", "Bearer " + TOKEN).GET().build(), HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200) throw new IOException("events of " + op + " -> " + r.statusCode());
        return r.body();
    }

    static String env(String name, String dflt) {
        String v = System.getenv(name);
        return v == null || v.isBlank() ? dflt : v.trim();
    }
}
