package dev.contree.imports;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;

/**
 * Import timing for {@code bench/import.sh}: on a fresh server (new data dir), imports {@code ref} once (cold store,
 * cold JIT) and again (warm: every layer present); then on a second fresh server in the same JVM once more (cold
 * store, warm JIT, like a long-running server). Prints {@code coldjvm}, {@code cold} and {@code warm} seconds (POST to SUCCESS, polled
 * every 5 ms). Usage: {@code ImportBench <ref> <workdir>}.
 */
public final class ImportBench {
    public static void main(String[] args) throws Exception {
        String ref = args[0];
        double coldJvm, warm, cold;
        Path work = Files.createTempDirectory(Path.of(args[1]), "server");
        try (TestServer s = new TestServer(work, c -> c.withRuntime("runc", "ptrace"))) {
            coldJvm = time(s, ref);
            warm = time(s, ref);
        } finally {
            delete(work);
        }
        // A long-running server has a warm JIT: a second fresh server (empty layer store) in the same JVM.
        Path work2 = Files.createTempDirectory(Path.of(args[1]), "server");
        try (TestServer s = new TestServer(work2, c -> c.withRuntime("runc", "ptrace"))) {
            cold = time(s, ref);
        } finally {
            delete(work2);
        }
        System.out.printf("coldjvm %.3f%ncold %.3f%nwarm %.3f%n", coldJvm, cold, warm);
    }

    private static void delete(Path dir) throws java.io.IOException {
        try (var walk = Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
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
