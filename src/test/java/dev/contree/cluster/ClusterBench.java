package dev.contree.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestDirs;
import dev.contree.TestPostgres;
import dev.contree.TestServer;
import dev.contree.operations.ClusterSettings;
import dev.contree.registry.Compression;
import dev.contree.registry.OciLayoutBuilder;
import dev.contree.registry.TestRegistry;
import dev.contree.server.ServerConfig;
import dev.contree.store.postgres.PostgresUrl;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.UnaryOperator;

/**
 * Executions per second through one api node with one worker, then with two (bench/cluster.sh): a real PostgreSQL,
 * registry and runc sandboxes, all nodes in one JVM as in {@link ClusterTest}. Each worker gets a busybox image of its
 * own (imports land where they land; more are imported until every worker holds one), and CLUSTER_N disposable
 * {@code true} runs spread over those images are submitted by CLUSTER_CLIENTS concurrent clients. Prints one line
 * per worker count and the ratio.
 */
public final class ClusterBench {
    public static void main(String[] args) throws Exception {
        int n = Integer.parseInt(System.getenv().getOrDefault("CLUSTER_N", "120"));
        int clients = Integer.parseInt(System.getenv().getOrDefault("CLUSTER_CLIENTS", "8"));
        Path dir = Files.createTempDirectory("contree-cluster-bench");
        Map<Integer, Double> rates = new HashMap<>();
        try (TestPostgres pg = TestPostgres.start(); TestRegistry reg = TestRegistry.start(dir.resolve("registry"))) {
            for (int workers : new int[]{1, 2}) {
                String url = pg.createDatabase();
                UnaryOperator<ServerConfig> api = node(url, ClusterSettings.Role.API, "api");
                List<TestServer> nodes = new ArrayList<>();
                Path round = dir.resolve("w" + workers);
                try {
                    TestServer a = new TestServer(round.resolve("api"), api);
                    nodes.add(a);
                    List<String> ids = new ArrayList<>();
                    for (int w = 0; w < workers; w++) {
                        String id = "worker-" + w;
                        nodes.add(new TestServer(round.resolve(id), node(url, ClusterSettings.Role.WORKER, id)));
                        ids.add(id);
                    }
                    Map<String, String> imageOn = new HashMap<>();
                    for (int i = 0; imageOn.size() < workers && i < 20; i++) {
                        String name = "bench-" + workers + "-" + i;
                        OciLayoutBuilder.Tar tar = OciLayoutBuilder.busyboxRootfs().file("etc/image-name", name + "\n");
                        Path layout = dir.resolve("layouts").resolve(name);
                        new OciLayoutBuilder().layer(Compression.GZIP, tar).writeLayout(layout, "t");
                        reg.push(layout, "t", name, "v1", false);
                        String op = a.start(a.tokenA, "/v1/images/import", "{\"registry\":{\"url\":\"docker://" + reg.hostPort() + "/" + name + ":v1\"}}");
                        String image = a.await(a.tokenA, op, Duration.ofSeconds(120)).get("result").get("image").asText();
                        for (TestServer w : nodes.subList(1, nodes.size())) {
                            var img = w.server.services().images().get(a.accountA, image).orElseThrow();
                            if (img.layers().stream().allMatch(w.server.services().layers()::exists)) imageOn.putIfAbsent(w.server.workerId(), image);
                        }
                    }
                    if (imageOn.size() < workers) throw new IllegalStateException("imports did not reach every worker: " + imageOn);
                    List<String> images = new ArrayList<>(imageOn.values());
                    // Warm-up: one run per image.
                    for (String image : images) run(a, image);
                    long t0 = System.nanoTime();
                    try (ExecutorService pool = Executors.newFixedThreadPool(clients)) {
                        List<Future<?>> done = new ArrayList<>();
                        for (int i = 0; i < n; i++) {
                            String image = images.get(i % images.size());
                            done.add(pool.submit(() -> run(a, image)));
                        }
                        for (Future<?> f : done) f.get();
                    }
                    double seconds = (System.nanoTime() - t0) / 1e9;
                    rates.put(workers, n / seconds);
                    System.out.printf("cluster bench: %d worker(s), %d runs from %d clients through the api node: %.1f s, %.2f executions/s%n",
                            workers, n, clients, seconds, n / seconds);
                } finally {
                    for (int i = nodes.size() - 1; i >= 0; i--) nodes.get(i).close();
                    TestDirs.removeWithMounts(round);
                }
            }
        } finally {
            TestDirs.removeWithMounts(dir);
        }
        System.out.printf("cluster bench: two workers / one worker = %.2f×%n", rates.get(2) / rates.get(1));
    }

    static UnaryOperator<ServerConfig> node(String url, ClusterSettings.Role role, String id) {
        return c -> c.withRuntime("runc", "ptrace").withDatabase(PostgresUrl.parse(url, null))
                .withCluster(new ClusterSettings(role, Duration.ofSeconds(30), id));
    }

    private static void run(TestServer a, String image) {
        String op = a.start(a.tokenA, "/v1/instances", "{\"image\":\"" + image + "\",\"command\":\"true\",\"disposable\":true}");
        JsonNode done = a.await(a.tokenA, op, Duration.ofSeconds(300));
        if (!done.get("status").asText().equals("SUCCESS")) throw new IllegalStateException("run failed: " + done);
    }
}
