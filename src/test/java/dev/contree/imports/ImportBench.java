package dev.contree.imports;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;

/**
 * Import timing for {@code bench/import.sh}: on a fresh server (new data dir), imports {@code ref} once (cold) and
 * again (warm, every layer already present), printing {@code cold <s>} and {@code warm <s>} (POST to SUCCESS, polled
 * every 5 ms). Usage: {@code ImportBench <ref> <workdir>}.
 */
public final class ImportBench {
    public static void main(String[] args) throws Exception {
        String ref = args[0];
        Path work = Files.createTempDirectory(Path.of(args[1]), "server");
        try (TestServer s = new TestServer(work, c -> c.withRuntime("runc", "ptrace"))) {
            double cold = time(s, ref);
            double warm = time(s, ref);
            System.out.printf("cold %.3f%nwarm %.3f%n", cold, warm);
        } finally {
            try (var walk = Files.walk(work)) {
                walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    private static double time(TestServer s, String ref) throws InterruptedException {
        long t0 = System.nanoTime();
        String op = s.start(s.tokenA, "/v1/images/import", "{\"registry\":{\"url\":\"" + ref + "\"},\"tag\":\"bench:latest\"}");
        while (true) {
            JsonNode o = s.get(s.tokenA, "/v1/operations/" + op).json();
            String st = o.get("status").asText();
            if (st.equals("SUCCESS")) return (System.nanoTime() - t0) / 1e9;
            if (st.equals("FAILED") || st.equals("CANCELLED")) throw new IllegalStateException("import " + st + ": " + o.get("error"));
            Thread.sleep(5);
        }
    }
}
