package dev.contree.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.TestDirs;
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
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Load on loopback against a server in its own JVM: pollers hammer the read routes while workers keep
 * the execution slots busy. Bounded in time and count; reports per-route latency percentiles, errors,
 * and the server's resident memory before, right after, and after a settle period.
 */
public final class LoadBench {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String TOKEN = "load-bench-token";

    record Sample(String route, long nanos, boolean ok) {}

    public static void main(String[] args) throws Exception {
        int seconds = Integer.parseInt(args[0]);
        int pollers = Integer.parseInt(args[1]);
        String runtime = args[2];
        long intervalMs = args.length > 3 ? Long.parseLong(args[3]) : 1000;
        Path dir = Files.createTempDirectory("load-bench");
        int port;
        try (ServerSocket probe = new ServerSocket(0)) {
            port = probe.getLocalPort();
        }
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process server = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-Xmx1g", "-cp", System.getProperty("java.class.path"),
                "dev.contree.Main", "serve", "--data", dir.resolve("data").toString(), "--listen", "127.0.0.1:" + port,
                "--token", TOKEN, "--runtime", runtime).redirectErrorStream(true).redirectOutput(dir.resolve("server.log").toFile()).start();
        String base = "http://127.0.0.1:" + port;
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
        try {
            waitUp(http, base, server);
            JsonNode whoami = call(http, base, "GET", "/v1/whoami", null);
            int slots = whoami.get("limits").get("instance_max_concurrency").asInt();
            String file = call(http, base, "POST", "/v1/files", TestImages.busyboxRootfs()).get("uuid").asText();
            String imp = call(http, base, "POST", "/v1/images/import", ("{\"registry\":{\"url\":\"rootfs+file://" + file + "\"},\"tag\":\"load\"}").getBytes()).get("uuid").asText();
            String image = await(http, base, imp).get("result").get("image").asText();
            // Warm up, then measure the baseline RSS.
            for (int i = 0; i < 5; i++) await(http, base, call(http, base, "POST", "/v1/instances", spawn(image, i)).get("uuid").asText());
            long rssBefore = rssKiB(server.pid());

            for (int round = 1; round <= 2; round++) {
                System.out.printf("%n== round %d of 2 (the second shows whether memory keeps growing) ==%n", round);
                Map<String, List<Sample>> samples = new ConcurrentHashMap<>();
                AtomicLong executions = new AtomicLong();
                List<String> recentOps = Collections.synchronizedList(new ArrayList<>());
                long deadline = System.nanoTime() + Duration.ofSeconds(seconds).toNanos();
                CountDownLatch done = new CountDownLatch(pollers + slots);
                for (int w = 0; w < slots; w++) {
                    int worker = w;
                    Thread.ofVirtual().start(() -> {
                        try {
                            for (int i = 0; System.nanoTime() < deadline; i++) {
                                byte[] body = spawn(image, worker * 100000 + i);
                                JsonNode op = timed(samples, "POST /v1/instances", () -> call(http, base, "POST", "/v1/instances", body));
                                if (op == null) continue;
                                String uuid = op.get("uuid").asText();
                                recentOps.add(uuid);
                                JsonNode result = await(http, base, uuid);
                                if (result.get("status").asText().equals("SUCCESS")) executions.incrementAndGet();
                                else record(samples, "execution outcome", 0, false);
                            }
                        } catch (Exception e) {
                            record(samples, "worker crash", 0, false);
                        } finally {
                            done.countDown();
                        }
                    });
                }
                String[] routes = {"/v1/operations?limit=20", "/v1/images?limit=20", "/v1/whoami", "/v1/inspect/" + image + "/list?path=/bin",
                        "/v1/inspect/" + image + "/download?path=/etc/passwd", "OP"};
                for (int p = 0; p < pollers; p++) {
                    int poller = p;
                    Thread.ofVirtual().start(() -> {
                        try {
                            for (int i = 0; System.nanoTime() < deadline; i++) {
                                String route = routes[(poller + i) % routes.length];
                                String path = route;
                                if (route.equals("OP")) {
                                    if (recentOps.isEmpty()) continue;
                                    path = "/v1/operations/" + recentOps.get(recentOps.size() - 1);
                                    route = "GET /v1/operations/{id}";
                                } else {
                                    route = "GET " + route.replace(image, "{image}");
                                }
                                String finalPath = path;
                                timed(samples, route, () -> call(http, base, "GET", finalPath, null));
                                Thread.sleep(intervalMs); // a polling client (the MCP server polls every second), not a flood
                            }
                        } catch (InterruptedException ignored) {
                            // end
                        } finally {
                            done.countDown();
                        }
                    });
                }
                done.await();
                long rssAfter = rssKiB(server.pid());
                Thread.sleep(5000);
                System.gc();
                long rssSettled = rssKiB(server.pid());

                System.out.printf("load: %d s, %d pollers, %d execution slots, runtime %s%n", seconds, pollers, slots, runtime);
                System.out.printf("executions completed: %d (%.1f/s)%n", executions.get(), executions.get() / (double) seconds);
                System.out.printf("%-45s %8s %8s %9s %9s %7s%n", "route", "count", "rps", "p50 ms", "p99 ms", "errors");
                long totalErrors = 0;
                for (var e : new TreeMap<>(samples).entrySet()) {
                    List<Long> ok = e.getValue().stream().filter(Sample::ok).map(Sample::nanos).sorted().toList();
                    long errors = e.getValue().stream().filter(s -> !s.ok()).count();
                    totalErrors += errors;
                    System.out.printf("%-45s %8d %8.1f %9.2f %9.2f %7d%n", e.getKey(), e.getValue().size(), e.getValue().size() / (double) seconds,
                            pct(ok, 0.50), pct(ok, 0.99), errors);
                }
                System.out.printf("errors: %d%n", totalErrors);
                System.out.printf("server RSS: before %d MiB, right after %d MiB, after 5 s settle %d MiB%n", rssBefore / 1024, rssAfter / 1024, rssSettled / 1024);
            }
        } finally {
            server.destroy();
            server.waitFor();
            TestDirs.removeWithMounts(dir);
        }
    }

    static byte[] spawn(String image, int i) {
        return ("{\"image\":\"" + image + "\",\"command\":\"echo " + i + " > /f; cat /f\",\"shell\":true,\"disposable\":" + (i % 2 == 0) + "}").getBytes();
    }

    interface Call {
        JsonNode run() throws Exception;
    }

    static JsonNode timed(Map<String, List<Sample>> samples, String route, Call call) {
        long t0 = System.nanoTime();
        try {
            JsonNode r = call.run();
            record(samples, route, System.nanoTime() - t0, true);
            return r;
        } catch (Exception e) {
            record(samples, route, System.nanoTime() - t0, false);
            return null;
        }
    }

    static void record(Map<String, List<Sample>> samples, String route, long nanos, boolean ok) {
        samples.computeIfAbsent(route, k -> Collections.synchronizedList(new ArrayList<>())).add(new Sample(route, nanos, ok));
    }

    static double pct(List<Long> sorted, double p) {
        if (sorted.isEmpty()) return Double.NaN;
        return sorted.get(Math.min(sorted.size() - 1, (int) Math.floor(p * sorted.size()))) / 1e6;
    }

    static JsonNode call(HttpClient http, String base, String method, String path, byte[] body) throws IOException, InterruptedException {
        var b = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(30)).header("Authorization", "Bearer " + TOKEN)
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(body));
        HttpResponse<byte[]> r = http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
        if (r.statusCode() >= 400) throw new IOException(method + " " + path + " -> " + r.statusCode());
        if (path.contains("/download")) return JSON.createObjectNode();
        return r.body().length == 0 ? JSON.createObjectNode() : JSON.readTree(r.body());
    }

    static JsonNode await(HttpClient http, String base, String op) throws Exception {
        while (true) {
            JsonNode o = call(http, base, "GET", "/v1/operations/" + op, null);
            if (o.get("status").asText().matches("SUCCESS|FAILED|CANCELLED")) return o;
            Thread.sleep(20);
        }
    }

    static void waitUp(HttpClient http, String base, Process server) throws Exception {
        for (int i = 0; i < 600; i++) {
            try {
                call(http, base, "GET", "/v1/whoami", null);
                return;
            } catch (IOException e) {
                if (!server.isAlive()) throw new IOException("server died", e);
                Thread.sleep(100);
            }
        }
        throw new IOException("server did not start");
    }

    static long rssKiB(long pid) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
            if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("\\D+", ""));
        }
        return -1;
    }
}
