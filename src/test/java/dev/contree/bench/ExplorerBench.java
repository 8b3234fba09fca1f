package dev.contree.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.TestServer;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The tree explorer in a browser over a tree of ~2,000 images, run by {@code bench/explorer.sh}: a chain of
 * {@code BENCH_CHAIN} (200) executions, each step with {@code BENCH_BRANCHES} (9) leaf branches (exit 0, exit 1, and one
 * in nine timed out), all real runc executions through the API (the chain in order, the branches
 * {@code BENCH_PARALLEL} (8) at a time beside it). Then {@code ui/test/bench.mjs} measures, in headless chromium, the time
 * from sign-in to the first drawn tree, loading and drawing all of it, re-rendering it, and frame times while panning.
 */
public final class ExplorerBench {
    private static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] args) throws Exception {
        int chain = Integer.parseInt(System.getenv().getOrDefault("BENCH_CHAIN", "200"));
        int branches = Integer.parseInt(System.getenv().getOrDefault("BENCH_BRANCHES", "9"));
        int parallel = Integer.parseInt(System.getenv().getOrDefault("BENCH_PARALLEL", "8"));
        try (TestServer s = TestServer.inTempDir("explorer-bench", c -> c.withRuntime("runc", "ptrace"))) {
            long t0 = System.nanoTime();
            String root = s.importBusybox("bench-base");
            List<Future<?>> pending = new ArrayList<>();
            int made = 1;
            try (ExecutorService pool = Executors.newFixedThreadPool(parallel, Thread.ofVirtual().factory())) {
                String parent = root;
                for (int i = 0; i < chain; i++) {
                    String step = parent;
                    for (int j = 0; j < branches; j++) {
                        int b = j;
                        int n = i;
                        pending.add(pool.submit(() -> run(s, step, b == branches - 1
                                ? "echo t" + n + " > /t; sleep 5" : "echo b" + n + "." + b + " > /b; exit " + (b % 2), b == branches - 1 ? 1 : 30)));
                    }
                    parent = run(s, parent, "echo step " + i + " > /step; echo " + i, 30);
                    made++;
                }
                for (Future<?> f : pending) f.get();
                made += pending.size();
            }
            double createSeconds = (System.nanoTime() - t0) / 1e9;
            System.out.printf("created %d images (chain %d, %d branches each) in %.1f s (%.1f images/s)%n", made, chain, branches,
                    createSeconds, made / createSeconds);
            for (int round = 0; round < 3; round++) {
                ProcessBuilder pb = new ProcessBuilder("timeout", "600", "node", "test/bench.mjs").directory(Path.of("ui").toFile());
                pb.environment().putAll(Map.of("BASE_URL", s.url(""), "TOKEN", s.tokenA,
                        "SCREENSHOT", Path.of("target/explorer-bench.png").toAbsolutePath().toString()));
                pb.redirectError(ProcessBuilder.Redirect.INHERIT);
                Process p = pb.start();
                String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
                p.waitFor();
                System.out.println("round " + (round + 1) + ": " + out);
            }
        }
    }

    /** One execution from {@code image}; returns its result image (the input image if it wrote nothing). */
    static String run(TestServer s, String image, String command, int timeout) throws Exception {
        String body = JSON.writeValueAsString(Map.of("image", image, "command", command, "shell", true, "timeout", timeout));
        for (int attempt = 0; ; attempt++) {
            var r = s.json(s.tokenA, "POST", "/v1/instances", body);
            if (r.status() == 429 && attempt < 100) {
                Thread.sleep(200);
                continue;
            }
            if (r.status() != 202) throw new IllegalStateException("spawn: " + r.status() + " " + r.text());
            JsonNode op = s.await(s.tokenA, r.json().get("uuid").asText(), Duration.ofSeconds(120));
            return op.path("result_image_uuid").asText(image);
        }
    }
}
