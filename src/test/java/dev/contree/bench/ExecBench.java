package dev.contree.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.TestImages;
import dev.contree.TestServer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * End-to-end execution benchmark, run by {@code bench/exec.sh}. Everything is measured in one process,
 * interleaved between the compared sides (round by round, in a shuffled order per round), and reported as
 * medians, p90s and ratios, because the machine is shared.
 *
 * <ol>
 *   <li>Latency of one step: the API (POST /v1/instances + poll GET /v1/operations/{id} every
 *       {@value #POLL_MS} ms) vs the raw OCI runtime on a minimal bundle vs {@code podman run} +
 *       {@code podman commit}, over the same busybox rootfs and on the same runtime.</li>
 *   <li>Fan-out: N children of one parent image, each writing one file, through the API vs podman with
 *       the same parallelism as the server's concurrency limit.</li>
 *   <li>Snapshot overhead: 0 B / 100 MiB / 10,000 files written, non-disposable vs disposable.</li>
 * </ol>
 * For every API run the phases are taken from the operation's timestamps and its event log.
 *
 * <p>Args: {@code runc|runsc|both}. Environment: {@code BENCH_N} (latency rounds, 15),
 * {@code BENCH_SECTIONS} (latency,fanout,snapshot), {@code BENCH_FANOUT_REPS} (3),
 * {@code BENCH_SNAP_REPS} (5), {@code BENCH_PODMAN_100} (1 = also podman 100-way, once per runtime),
 * {@code BENCH_CONCURRENCY} (the server's execution slots; default 2 x cores, as the server).
 */
public final class ExecBench {
    static final int POLL_MS = 5;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String PODMAN_BASE = "localhost/contree-bench-busybox:latest";
    private static final String PODMAN_OUT = "localhost/contree-bench-out";
    private static final AtomicInteger SEQ = new AtomicInteger();

    /** One runtime under test: a ConTree server on it, a raw bundle, podman flags. */
    static final class Side {
        final String rt;
        final TestServer s;
        final String base;
        final Path bundle;
        final Path rawRoot;
        final List<String> podman;
        final Path rootfs;
        final dev.contree.sandbox.SandboxRuntime rtDefault;
        final dev.contree.sandbox.SandboxRuntime rtNoLimits;
        final List<String> podmanContainers = new ArrayList<>();
        final List<String> podmanImages = new ArrayList<>();

        Side(String rt, Path work, Path rootfs, byte[] tarball, int concurrency) throws Exception {
            this.rt = rt;
            Path data = Files.createDirectories(work.resolve("data-" + rt));
            s = new TestServer(data, c -> c.withRuntime(rt, "ptrace").withLimits(1L << 30, 256L << 20, concurrency));
            base = s.importRootfs(s.tokenA, tarball, "busybox:bench");
            bundle = Files.createDirectories(work.resolve("bundle-" + rt));
            rawRoot = Files.createDirectories(work.resolve("raw-state-" + rt));
            exec(bundle, List.of("runc", "spec"));
            exec(bundle, List.of("sh", "-c", "jq '.process.terminal=false | .process.args=[\"/bin/true\"] | .root.path=\""
                    + rootfs + "\"' config.json > c && mv c config.json"));
            this.rootfs = rootfs;
            var kind = rt.equals("runc") ? dev.contree.sandbox.RuntimeConfig.Kind.RUNC : dev.contree.sandbox.RuntimeConfig.Kind.RUNSC;
            // The server's runtime config (1 GiB, 512 pids, 1.0 CPU), and the same with no cgroup limits.
            rtDefault = dev.contree.sandbox.SandboxRuntimes.create(dev.contree.sandbox.RuntimeConfig.defaults(kind,
                    Files.createDirectories(work.resolve("rt-" + rt))).withPlatform("ptrace"));
            var d = dev.contree.sandbox.RuntimeConfig.defaults(kind, Files.createDirectories(work.resolve("rt-nolim-" + rt)));
            rtNoLimits = dev.contree.sandbox.SandboxRuntimes.create(new dev.contree.sandbox.RuntimeConfig(kind, null, "ptrace",
                    d.stateDir(), 0, 0, 0, d.defaultOutputCap(), d.killGrace(), "contree-bench", null, false));
            podman = rt.equals("runsc")
                    ? List.of("podman", "--runtime", "runsc", "--runtime-flag", "platform=ptrace", "--runtime-flag", "network=none")
                    : List.of("podman", "--runtime", "runc");
        }

        double raw() throws Exception {
            List<String> cmd = new ArrayList<>(List.of(rt, "--root", rawRoot.toString()));
            if (rt.equals("runsc")) cmd.addAll(List.of("--platform=ptrace", "--network=none"));
            cmd.addAll(List.of("run", "--bundle", bundle.toString(), "bench-raw-" + SEQ.incrementAndGet()));
            long t0 = System.nanoTime();
            exec(bundle, cmd);
            return ms(t0);
        }

        /** `true` through the Java runtime in this JVM (what the server calls), no layers, no HTTP. */
        double runtime(dev.contree.sandbox.SandboxRuntime r) throws Exception {
            long t0 = System.nanoTime();
            var res = r.run(dev.contree.sandbox.SandboxSpec.builder("bench-" + SEQ.incrementAndGet() + "-" + System.nanoTime(), rootfs,
                    List.of("/bin/true")).lookupPath(false).timeout(Duration.ofSeconds(30)).build(), null, null);
            double t = ms(t0);
            if (!res.ok() || res.exitCode() != 0) throw new IllegalStateException("runtime run failed: " + res);
            return t;
        }

        /** podman run + podman commit of one step; returns {total, run, commit} ms. */
        double[] podmanStep(String script) throws Exception {
            String name = "contree-bench-" + rt + "-" + SEQ.incrementAndGet();
            List<String> run = new ArrayList<>(podman);
            // No CAP_SYS_RESOURCE here: podman's default rlimits (nofile 1048576, nproc above conmon's) fail to apply.
            run.addAll(List.of("run", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096", "--network=none",
                    "--name", name, PODMAN_BASE));
            if (script.equals("true")) run.add("/bin/true");
            else run.addAll(List.of("/bin/sh", "-c", script));
            long t0 = System.nanoTime();
            exec(null, run);
            double tRun = ms(t0);
            long t1 = System.nanoTime();
            String id = exec(null, List.of("podman", "commit", "-q", name, PODMAN_OUT + ":" + name)).trim();
            double tCommit = ms(t1);
            synchronized (this) {
                podmanContainers.add(name);
                podmanImages.add(PODMAN_OUT + ":" + name);
            }
            if (id.isEmpty()) throw new IllegalStateException("podman commit printed no id");
            return new double[] {tRun + tCommit, tRun, tCommit};
        }

        /** Removes this side's podman containers and images (outside any timing). */
        void podmanCleanup() throws Exception {
            List<String> c, i;
            synchronized (this) {
                c = new ArrayList<>(podmanContainers);
                i = new ArrayList<>(podmanImages);
                podmanContainers.clear();
                podmanImages.clear();
            }
            if (!c.isEmpty()) {
                List<String> cmd = new ArrayList<>(List.of("podman", "rm", "-f"));
                cmd.addAll(c);
                exec(null, cmd);
            }
            if (!i.isEmpty()) {
                List<String> cmd = new ArrayList<>(List.of("podman", "rmi", "-f"));
                cmd.addAll(i);
                exec(null, cmd);
            }
        }

        /** One API execution, timed by the client; returns the run with its phases. */
        ApiRun api(String script, boolean disposable) {
            String body = "{\"image\":\"" + base + "\",\"command\":" + quote(script) + ",\"shell\":true,\"disposable\":" + disposable + "}";
            long t0 = System.nanoTime();
            String op = s.start(s.tokenA, "/v1/instances", body);
            JsonNode done = poll(op);
            double total = ms(t0);
            return ApiRun.of(this, done, total);
        }

        JsonNode poll(String op) {
            while (true) {
                TestServer.Reply r = s.get(s.tokenA, "/v1/operations/" + op);
                if (r.status() != 200) throw new IllegalStateException("GET operation " + r.status() + " " + r.text());
                JsonNode j = r.json();
                String st = j.get("status").asText();
                if (st.equals("SUCCESS") || st.equals("FAILED") || st.equals("CANCELLED")) return j;
                sleep(POLL_MS);
            }
        }

        Map<String, Instant> eventTimes(String op) {
            Map<String, Instant> m = new LinkedHashMap<>();
            String text = s.get(s.tokenA, "/v1/operations/" + op + "/events").text();
            for (String line : text.split("\n")) {
                if (!line.startsWith("data: ")) continue;
                try {
                    JsonNode e = JSON.readTree(line.substring(6));
                    m.putIfAbsent(e.get("type").asText(), Instant.parse(e.get("ts").asText()));
                } catch (IOException ignored) {
                    // not an event object
                }
            }
            return m;
        }
    }

    /** An API run: client wall time and the server-side phases (ms). */
    record ApiRun(double total, double queue, double prepare, double sandbox, double finish, double client, String image, long layerBytes) {
        static ApiRun of(Side side, JsonNode op, double total) {
            if (!op.get("status").asText().equals("SUCCESS")) throw new IllegalStateException("operation not SUCCESS: " + op);
            int exit = op.get("metadata").get("result").get("state").get("exit_code").asInt();
            if (exit != 0) throw new IllegalStateException("exit " + exit + ": " + op);
            Instant created = Instant.parse(op.get("created_at").asText());
            Instant started = Instant.parse(op.get("started_at").asText());
            Instant finished = Instant.parse(op.get("finished_at").asText());
            Map<String, Instant> ev = side.eventTimes(op.get("uuid").asText());
            Instant init = ev.getOrDefault("init", started), spawn = ev.get("spawn"), exited = ev.get("exit");
            String image = op.get("result").isNull() ? null : op.get("result").get("image").asText();
            long bytes = op.get("image_size").isNull() ? 0 : op.get("image_size").asLong();
            return new ApiRun(total, between(created, init), between(init, spawn), between(spawn, exited), between(exited, finished),
                    total - between(created, finished), image, bytes);
        }
    }

    // ------------------------------------------------------------------------------------------------

    public static void main(String[] args) throws Exception {
        String which = args.length > 0 ? args[0] : "both";
        List<String> runtimes = which.equals("both") ? List.of("runc", "runsc") : List.of(which);
        int n = envInt("BENCH_N", 15);
        Set<String> sections = new HashSet<>(Arrays.asList(System.getenv().getOrDefault("BENCH_SECTIONS", "latency,fanout,snapshot").split(",")));
        int concurrency = envInt("BENCH_CONCURRENCY", Math.max(2, Runtime.getRuntime().availableProcessors() * 2)); // default: the server's
        long tStart = System.nanoTime();

        Path work = Files.createTempDirectory("contree-execbench");
        byte[] tarball = TestImages.busyboxRootfs();
        Path tgz = work.resolve("busybox.tar.gz");
        Files.write(tgz, tarball);
        Path rootfs = Files.createDirectories(work.resolve("rootfs"));
        exec(work, List.of("tar", "-C", rootfs.toString(), "-xzf", tgz.toString()));
        exec(null, List.of("podman", "import", "-q", tgz.toString(), PODMAN_BASE));

        System.out.printf("ConTree exec bench: %s, %d cores, server concurrency %d, runsc platform ptrace, %s%n",
                runtimes, Runtime.getRuntime().availableProcessors(), concurrency, Instant.now());
        List<Side> sides = new ArrayList<>();
        try {
            for (String rt : runtimes) sides.add(new Side(rt, work, rootfs, tarball, concurrency));
            if (sections.contains("latency")) latency(sides, n);
            if (sections.contains("fanout")) fanout(sides, concurrency);
            if (sections.contains("snapshot")) snapshot(sides);
        } finally {
            for (Side s : sides) {
                try {
                    s.podmanCleanup();
                } catch (Exception e) {
                    System.err.println("podman cleanup: " + e.getMessage());
                }
                s.s.close();
            }
            try {
                exec(null, List.of("podman", "rmi", "-f", PODMAN_BASE));
            } catch (Exception e) {
                System.err.println("podman rmi: " + e.getMessage());
            }
            exec(null, List.of("rm", "-rf", work.toString()));
        }
        System.out.printf("%ntotal bench time %.0f s%n", ms(tStart) / 1000);
        System.exit(0);
    }

    // ---- 1. latency ----------------------------------------------------------------------------------

    static void latency(List<Side> sides, int n) throws Exception {
        System.out.printf("%n== 1. Latency of one step (ms; %d interleaved rounds after 2 warm-ups; API polled every %d ms) ==%n", n, POLL_MS);
        String[] kinds = {"raw", "rt", "rt-nolim", "api-true-disp", "api-true", "api-write", "podman-true", "podman-write"};
        Map<String, Map<String, List<Double>>> t = new LinkedHashMap<>();
        Map<String, Map<String, List<ApiRun>>> runs = new LinkedHashMap<>();
        Map<String, Map<String, List<double[]>>> pod = new LinkedHashMap<>();
        for (Side s : sides) {
            t.put(s.rt, new LinkedHashMap<>());
            runs.put(s.rt, new LinkedHashMap<>());
            pod.put(s.rt, new LinkedHashMap<>());
            for (String k : kinds) {
                t.get(s.rt).put(k, new ArrayList<>());
                runs.get(s.rt).put(k, new ArrayList<>());
                pod.get(s.rt).put(k, new ArrayList<>());
            }
        }
        record Task(Side side, String kind) {}
        Random rnd = new Random(42);
        for (int round = -2; round < n; round++) {
            List<Task> tasks = new ArrayList<>();
            for (Side s : sides) for (String k : kinds) tasks.add(new Task(s, k));
            Collections.shuffle(tasks, rnd);
            for (Task task : tasks) {
                Side s = task.side;
                double v;
                ApiRun r = null;
                double[] p = null;
                switch (task.kind) {
                    case "raw" -> v = s.raw();
                    case "rt" -> v = s.runtime(s.rtDefault);
                    case "rt-nolim" -> v = s.runtime(s.rtNoLimits);
                    case "api-true-disp" -> v = (r = s.api("true", true)).total;
                    case "api-true" -> v = (r = s.api("true", false)).total;
                    case "api-write" -> v = (r = s.api("echo x > /f", false)).total;
                    case "podman-true" -> v = (p = s.podmanStep("true"))[0];
                    case "podman-write" -> v = (p = s.podmanStep("echo x > /f"))[0];
                    default -> throw new IllegalStateException(task.kind);
                }
                if (round < 0) continue;
                t.get(s.rt).get(task.kind).add(v);
                if (r != null) runs.get(s.rt).get(task.kind).add(r);
                if (p != null) pod.get(s.rt).get(task.kind).add(p);
            }
            for (Side s : sides) s.podmanCleanup();
        }
        System.out.printf("%-6s %-26s %8s %8s%n", "rt", "step", "median", "p90");
        for (Side s : sides) {
            Map<String, List<Double>> m = t.get(s.rt);
            row(s.rt, "raw runtime `true`", m.get("raw"));
            row(s.rt, "Java runtime (server cfg)", m.get("rt"));
            row(s.rt, "Java runtime, no cgroup lim", m.get("rt-nolim"));
            row(s.rt, "API `true` disposable", m.get("api-true-disp"));
            row(s.rt, "API `true`", m.get("api-true"));
            row(s.rt, "API `echo x > /f` (commit)", m.get("api-write"));
            row(s.rt, "podman run+commit `true`", m.get("podman-true"));
            row(s.rt, "podman run+commit write", m.get("podman-write"));
        }
        System.out.printf("%nRatios (median ratio / p90 ratio; goal: API/raw <= 2, podman/API >= 2)%n");
        System.out.printf("%-6s %-40s %8s %8s %6s%n", "rt", "ratio", "median", "p90", "goal");
        for (Side s : sides) {
            Map<String, List<Double>> m = t.get(s.rt);
            ratio(s.rt, "API `true` disposable / raw", m.get("api-true-disp"), m.get("raw"), "<=2");
            ratio(s.rt, "API `true` / raw", m.get("api-true"), m.get("raw"), "<=2");
            ratio(s.rt, "Java runtime (server cfg) / raw", m.get("rt"), m.get("raw"), "");
            ratio(s.rt, "Java runtime, no cgroup limits / raw", m.get("rt-nolim"), m.get("raw"), "");
            ratio(s.rt, "API `true` disposable / Java runtime", m.get("api-true-disp"), m.get("rt"), "");
            ratio(s.rt, "podman run+commit `true` / API `true`", m.get("podman-true"), m.get("api-true"), ">=2");
            ratio(s.rt, "podman run+commit write / API write", m.get("podman-write"), m.get("api-write"), ">=2");
        }
        System.out.printf("%nWhere the API time goes (medians, ms): queue = created->init event, prepare = init->spawn (layer prepare,%n"
                + "overlay mount, file injection), sandbox = spawn->exit (runtime + contree-init + command), finish = exit->finished_at%n"
                + "(unmount, commit/discard, DB), client = HTTP + poll lag (wall - (finished_at - created_at)).%n");
        System.out.printf("%-6s %-22s %7s %7s %7s %7s %7s %7s%n", "rt", "step", "wall", "queue", "prepare", "sandbox", "finish", "client");
        for (Side s : sides) {
            for (String k : List.of("api-true-disp", "api-true", "api-write")) phases(s.rt, k, runs.get(s.rt).get(k));
        }
        System.out.printf("%npodman split (medians, ms): %-6s %8s %8s%n", "", "run", "commit");
        for (Side s : sides) {
            for (String k : List.of("podman-true", "podman-write")) {
                List<double[]> l = pod.get(s.rt).get(k);
                System.out.printf("%-6s %-22s %8.1f %8.1f%n", s.rt, k, median(col(l, 1)), median(col(l, 2)));
            }
        }
    }

    // ---- 2. fan-out ----------------------------------------------------------------------------------

    static void fanout(List<Side> sides, int concurrency) throws Exception {
        int reps = envInt("BENCH_FANOUT_REPS", 3);
        boolean podman100 = envInt("BENCH_PODMAN_100", 1) == 1;
        System.out.printf("%n== 2. Fan-out from one parent image: N children, each writes one file (wall ms; %d interleaved reps;%n"
                + "   API: all N POSTed at once, server runs %d at a time; podman: %d parallel workers doing run+commit) ==%n",
                reps, concurrency, concurrency);
        Map<String, List<Double>> t = new LinkedHashMap<>();
        Map<String, List<Double>> serverSide = new LinkedHashMap<>();
        for (int fan : new int[] {10, 100}) {
            for (int rep = -1; rep < reps; rep++) { // one warm-up rep
                if (fan == 100 && rep < 0) continue;
                for (Side s : sides) {
                    double[] a = apiFanout(s, fan);
                    if (rep >= 0) {
                        t.computeIfAbsent(s.rt + " API " + fan, k -> new ArrayList<>()).add(a[0]);
                        serverSide.computeIfAbsent(s.rt + " API " + fan, k -> new ArrayList<>()).add(a[1]);
                    }
                    boolean doPodman = fan == 10 || (podman100 && rep == 0);
                    if (doPodman) {
                        double p = podmanFanout(s, fan, concurrency);
                        if (rep >= 0) t.computeIfAbsent(s.rt + " podman " + fan, k -> new ArrayList<>()).add(p);
                    }
                }
            }
        }
        System.out.printf("%-6s %-8s %5s %9s %9s %9s %9s %12s%n", "rt", "who", "N", "median", "p90", "per-child", "srv-med", "podman/API");
        for (Side s : sides) {
            for (int fan : new int[] {10, 100}) {
                List<Double> a = t.get(s.rt + " API " + fan), p = t.get(s.rt + " podman " + fan);
                System.out.printf("%-6s %-8s %5d %9.0f %9.0f %9.1f %9.0f %12s%n", s.rt, "API", fan, median(a), p90(a), median(a) / fan,
                        median(serverSide.get(s.rt + " API " + fan)), p == null ? "-" : String.format(Locale.ROOT, "%.2fx", median(p) / median(a)));
                if (p != null) System.out.printf("%-6s %-8s %5d %9.0f %9.0f %9.1f %9s %12s%n", s.rt, "podman", fan, median(p), p90(p),
                        median(p) / fan, "", p.size() == 1 ? "(1 run)" : "");
            }
        }
    }

    /** Returns {client wall ms, server wall ms (last finished_at - first POST)}. Validates the children. */
    static double[] apiFanout(Side s, int fan) throws Exception {
        String tag = "f" + SEQ.incrementAndGet();
        Instant wall0 = Instant.now();
        long t0 = System.nanoTime();
        List<String> ops = new ArrayList<>();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<String>> fs = new ArrayList<>();
            for (int i = 0; i < fan; i++) {
                String body = "{\"image\":\"" + s.base + "\",\"command\":\"echo " + i + " > /child-" + tag + "\",\"shell\":true}";
                fs.add(pool.submit(() -> s.s.start(s.s.tokenA, "/v1/instances", body)));
            }
            for (Future<String> f : fs) ops.add(f.get());
        }
        Map<String, JsonNode> done = new LinkedHashMap<>();
        while (done.size() < fan) {
            for (String op : ops) {
                if (done.containsKey(op)) continue;
                JsonNode j = s.s.get(s.s.tokenA, "/v1/operations/" + op).json();
                String st = j.get("status").asText();
                if (st.equals("SUCCESS") || st.equals("FAILED") || st.equals("CANCELLED")) done.put(op, j);
            }
            if (done.size() < fan) sleep(10);
        }
        double wall = ms(t0);
        Set<String> images = new HashSet<>();
        Instant last = wall0;
        for (JsonNode j : done.values()) {
            if (!j.get("status").asText().equals("SUCCESS")) throw new IllegalStateException("fan-out child failed: " + j);
            String img = j.get("result").get("image").asText();
            if (img.equals(s.base)) throw new IllegalStateException("child kept the parent image: " + j);
            images.add(img);
            Instant f = Instant.parse(j.get("finished_at").asText());
            if (f.isAfter(last)) last = f;
        }
        if (images.size() != fan) throw new IllegalStateException("only " + images.size() + " distinct images from " + fan + " children");
        // Spot-check content: child i holds its own file.
        for (int i : new int[] {0, fan - 1}) {
            String img = done.get(ops.get(i)).get("result").get("image").asText();
            String text = s.s.get(s.s.tokenA, "/v1/inspect/" + img + "/download?path=/child-" + tag).text();
            if (!text.equals(i + "\n")) throw new IllegalStateException("child " + i + " holds " + text);
        }
        return new double[] {wall, between(wall0, last)};
    }

    static double podmanFanout(Side s, int fan, int parallel) throws Exception {
        long t0 = System.nanoTime();
        try (ExecutorService pool = Executors.newFixedThreadPool(parallel)) {
            List<Future<double[]>> fs = new ArrayList<>();
            for (int i = 0; i < fan; i++) {
                String script = "echo " + i + " > /child";
                fs.add(pool.submit(() -> s.podmanStep(script)));
            }
            for (Future<double[]> f : fs) f.get();
        }
        double wall = ms(t0);
        s.podmanCleanup();
        return wall;
    }

    // ---- 3. snapshot overhead ------------------------------------------------------------------------

    static void snapshot(List<Side> sides) throws Exception {
        int reps = envInt("BENCH_SNAP_REPS", 5);
        Map<String, String> loads = new LinkedHashMap<>();
        loads.put("0 B", "true");
        loads.put("100 MiB", "dd if=/dev/zero of=/big bs=1M count=100 2>/dev/null");
        // 10,000 files of one line each (4-5 bytes), written by one process.
        loads.put("10,000 files", "mkdir /many && seq 1 10000 | awk '{f=\"/many/f\" $1; print $1 > f; close(f)}' && [ $(ls /many | wc -l) = 10000 ]");
        System.out.printf("%n== 3. Snapshot overhead: non-disposable (commit) vs disposable (discard), ms, %d interleaved reps ==%n", reps);
        Map<String, List<ApiRun>> r = new LinkedHashMap<>();
        record Task(Side side, String load, boolean disposable) {}
        Random rnd = new Random(7);
        for (int rep = -1; rep < reps; rep++) {
            List<Task> tasks = new ArrayList<>();
            for (Side s : sides) for (String l : loads.keySet()) for (boolean d : new boolean[] {false, true}) tasks.add(new Task(s, l, d));
            Collections.shuffle(tasks, rnd);
            for (Task task : tasks) {
                ApiRun run = task.side.api(loads.get(task.load), task.disposable);
                if (rep >= 0) r.computeIfAbsent(task.side.rt + "|" + task.load + "|" + task.disposable, k -> new ArrayList<>()).add(run);
            }
        }
        System.out.printf("%-6s %-13s %10s %10s %8s %9s %11s %11s %10s%n", "rt", "written", "keep-med", "disp-med", "ratio",
                "keep-p90", "finish-keep", "finish-disp", "layer");
        for (Side s : sides) {
            for (String l : loads.keySet()) {
                List<ApiRun> k = r.get(s.rt + "|" + l + "|false"), d = r.get(s.rt + "|" + l + "|true");
                double km = median(k.stream().map(ApiRun::total).toList()), dm = median(d.stream().map(ApiRun::total).toList());
                long layer = k.getFirst().layerBytes();
                System.out.printf("%-6s %-13s %10.1f %10.1f %7.2fx %9.1f %11.1f %11.1f %10s%n", s.rt, l, km, dm, km / dm,
                        p90(k.stream().map(ApiRun::total).toList()),
                        median(k.stream().map(ApiRun::finish).toList()), median(d.stream().map(ApiRun::finish).toList()), human(layer));
            }
        }
        System.out.printf("%nPhases (medians, ms):%n%-6s %-22s %7s %7s %7s %7s %7s %7s%n", "rt", "step", "wall", "queue", "prepare", "sandbox", "finish", "client");
        for (Side s : sides) {
            for (String l : loads.keySet()) {
                phases(s.rt, l + " keep", r.get(s.rt + "|" + l + "|false"));
                phases(s.rt, l + " disp", r.get(s.rt + "|" + l + "|true"));
            }
        }
    }

    // ---- helpers -------------------------------------------------------------------------------------

    static void row(String rt, String name, List<Double> v) {
        System.out.printf("%-6s %-26s %8.1f %8.1f%n", rt, name, median(v), p90(v));
    }

    static void ratio(String rt, String name, List<Double> a, List<Double> b, String goal) {
        double m = median(a) / median(b), p = p90(a) / p90(b);
        if (goal.isEmpty()) {
            System.out.printf("%-6s %-40s %7.2fx %7.2fx%n", rt, name, m, p);
            return;
        }
        boolean ok = goal.startsWith("<=") ? m <= Double.parseDouble(goal.substring(2)) : m >= Double.parseDouble(goal.substring(2));
        System.out.printf("%-6s %-40s %7.2fx %7.2fx %6s%n", rt, name, m, p, (ok ? "ok " : "MISS ") + goal);
    }

    static void phases(String rt, String name, List<ApiRun> l) {
        System.out.printf("%-6s %-22s %7.1f %7.1f %7.1f %7.1f %7.1f %7.1f%n", rt, name,
                median(l.stream().map(ApiRun::total).toList()), median(l.stream().map(ApiRun::queue).toList()),
                median(l.stream().map(ApiRun::prepare).toList()), median(l.stream().map(ApiRun::sandbox).toList()),
                median(l.stream().map(ApiRun::finish).toList()), median(l.stream().map(ApiRun::client).toList()));
    }

    static List<Double> col(List<double[]> l, int i) {
        return l.stream().map(a -> a[i]).toList();
    }

    static double median(List<Double> v) {
        return quantile(v, 0.5);
    }

    static double p90(List<Double> v) {
        return quantile(v, 0.9);
    }

    /** Linear interpolation between closest ranks. */
    static double quantile(List<Double> v, double q) {
        if (v == null || v.isEmpty()) return Double.NaN;
        List<Double> c = new ArrayList<>(v);
        c.sort(Comparator.naturalOrder());
        double pos = q * (c.size() - 1);
        int lo = (int) Math.floor(pos), hi = (int) Math.ceil(pos);
        return c.get(lo) + (c.get(hi) - c.get(lo)) * (pos - lo);
    }

    static String human(long bytes) {
        if (bytes <= 0) return "0";
        if (bytes < 1 << 20) return String.format(Locale.ROOT, "%.0f KiB", bytes / 1024.0);
        return String.format(Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
    }

    static double between(Instant a, Instant b) {
        if (a == null || b == null) return Double.NaN;
        return Duration.between(a, b).toNanos() / 1e6;
    }

    static double ms(long t0) {
        return (System.nanoTime() - t0) / 1e6;
    }

    static int envInt(String name, int dflt) {
        String v = System.getenv(name);
        return v == null || v.isBlank() ? dflt : Integer.parseInt(v.trim());
    }

    static String quote(String s) {
        try {
            return JSON.writeValueAsString(s);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** Runs a command, returns its stdout; stderr is kept for the error message. */
    static String exec(Path dir, List<String> cmd) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(false);
        if (dir != null) pb.directory(dir.toFile());
        Path err = Files.createTempFile("bench-err", ".txt");
        pb.redirectError(err.toFile());
        Process p = pb.start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        boolean ok = p.waitFor(300, TimeUnit.SECONDS) && p.exitValue() == 0;
        String e = Files.readString(err);
        Files.deleteIfExists(err);
        if (!ok) throw new IllegalStateException("failed: " + String.join(" ", cmd) + "\n" + e);
        return new String(out, StandardCharsets.UTF_8);
    }
}
