package dev.contree.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.TestDirs;
import dev.contree.TestImages;
import dev.contree.TestPostgres;
import dev.contree.TestProcesses;
import dev.contree.TestS3;
import dev.contree.TestServerProcess;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The cluster as an operator runs it: three server processes (one {@code api}, two {@code worker}s, each with its own
 * data dir and btrfs pool, runc) on one real PostgreSQL (TestPostgres) and one bucket of a real S3-protocol server
 * (S3Proxy on loopback), talking to each other through nothing else. Everything goes through the api node's HTTP API
 * with the default account's token; which worker ran what is read off the workers' pools (a layer a worker committed
 * or fetched is a directory under {@code layers/layers/} of its data dir). A worker dies by SIGKILL, as a machine would.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ClusterProcessTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String TOKEN = "ct_cluster_process_test";
    private static final int RUNS = 40;
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    static Path dir;
    static TestPostgres pg;
    static TestS3 s3;
    static String database, bucket;
    static TestServerProcess api, w1, w2;
    static String base;
    static final List<String> children = new ArrayList<>();

    @BeforeAll
    static void start() throws Exception {
        dir = Files.createTempDirectory("cluster-process");
        pg = TestPostgres.start();
        s3 = TestS3.start();
        database = pg.createDatabase();
        bucket = s3.newBucket();
        api = node("api", "api");
        w1 = node("worker-1", "worker");
        w2 = node("worker-2", "worker");
    }

    static TestServerProcess node(String name, String role) throws IOException, InterruptedException {
        List<String> args = List.of("--role", role, "--database", database, "--object-store", bucket, "--lease-timeout", "3",
                "--worker-id", name);
        Map<String, String> env = Map.of("AWS_ACCESS_KEY_ID", TestS3.IDENTITY, "AWS_SECRET_ACCESS_KEY", TestS3.SECRET);
        return new TestServerProcess(dir.resolve(name), TOKEN, "runc", args, env, dir.resolve(name + ".log"));
    }

    @AfterAll
    static void stop() throws Exception {
        for (TestServerProcess p : new TestServerProcess[] {api, w1, w2}) if (p != null) p.close();
        if (s3 != null) s3.close();
        if (pg != null) pg.close();
        if (dir != null) TestDirs.removeWithMounts(dir);
    }

    // ------------------------------------------------------------------ scenarios, in order

    /**
     * An upload through the api node is imported on a worker; 40 executions submitted to the api node run on both
     * workers, each keeping a child with a file of its own.
     */
    @Test
    @Order(1)
    void executionsSubmittedToTheApiNodeRunOnBothWorkers() throws Exception {
        String rootfs = api.call("POST", "/v1/files", TestImages.busyboxRootfs()).get("uuid").asText();
        JsonNode imported = api.await(api.call("POST", "/v1/images/import",
                ("{\"registry\":{\"url\":\"rootfs+file://" + rootfs + "\"},\"tag\":\"cluster-base\"}").getBytes()).get("uuid").asText(),
                Duration.ofSeconds(120));
        assertThat(imported.get("status").asText()).as(imported.toString()).isEqualTo("SUCCESS");
        base = imported.get("result").get("image").asText();

        Set<String> before1 = layers(w1), before2 = layers(w2);
        List<String> ops = new ArrayList<>();
        for (int i = 0; i < RUNS; i++) ops.add(spawn(base, "echo run-" + i + " > /f; sleep 0.2", false, Map.of()));
        for (String op : ops) {
            JsonNode done = api.await(op, Duration.ofSeconds(300));
            assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
            children.add(done.get("result").get("image").asText());
        }
        Set<String> new1 = minus(layers(w1), before1), new2 = minus(layers(w2), before2);
        System.out.println("40 executions: worker-1 gained " + new1.size() + " layers, worker-2 " + new2.size());
        // Every child is a layer of its own, committed on the worker that ran it (plus at most the base, fetched).
        assertThat(new1.size() + new2.size()).isGreaterThanOrEqualTo(RUNS);
        assertThat(new1.size()).as("worker-1 ran some").isGreaterThanOrEqualTo(2);
        assertThat(new2.size()).as("worker-2 ran some").isGreaterThanOrEqualTo(2);
        assertThat(layers(api)).as("the api node runs nothing, so it committed nothing").isEmpty();
    }

    /**
     * Every child runs again, on whichever worker claims it: about half land on the worker that did not commit the
     * parent, which then fetches the parent's layer and reads its file.
     */
    @Test
    @Order(2)
    void childrenRunOnTheOtherWorkerReadTheirParentsFiles() throws Exception {
        Set<String> before1 = layers(w1), before2 = layers(w2);
        List<String> ops = new ArrayList<>();
        for (String child : children) ops.add(spawn(child, "cat /f", true, Map.of()));
        for (int i = 0; i < ops.size(); i++) {
            JsonNode done = api.await(ops.get(i), Duration.ofSeconds(300));
            assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
            assertThat(stdout(done)).isEqualTo("run-" + i + "\n");
        }
        // The runs were disposable: whatever a worker gained is a layer the other one committed, fetched to read it.
        Set<String> fetched1 = minus(layers(w1), before1), fetched2 = minus(layers(w2), before2);
        System.out.println("re-runs: worker-1 fetched " + fetched1.size() + " layers, worker-2 " + fetched2.size());
        assertThat(fetched1.size() + fetched2.size()).as("some children ran where their parent was not").isPositive();
    }

    /** The api node inspects every child, fetching the layers into its cache: the bytes each run wrote. */
    @Test
    @Order(3)
    void theApiNodeInspectsEveryResult() throws Exception {
        for (int i = 0; i < children.size(); i++)
            assertThat(download(api, children.get(i), "/f")).isEqualTo(("run-" + i + "\n").getBytes(StandardCharsets.UTF_8));
        JsonNode listing = api.call("GET", "/v1/inspect/" + children.getFirst() + "/list?path=/", null);
        assertThat(listing.toString()).contains("\"f\"", "bin");
        assertThat(layers(api)).as("fetched into the api node's cache").isNotEmpty();
    }

    /** A file uploaded through the api node is injected in an execution on a worker, byte for byte. */
    @Test
    @Order(4)
    void aFileUploadedThroughTheApiNodeIsInjectedOnAWorker() throws Exception {
        byte[] bytes = new byte[200_000];
        new Random(14).nextBytes(bytes);
        String file = api.call("POST", "/v1/files", bytes).get("uuid").asText();
        String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        JsonNode done = api.await(spawn(base, "sha256sum /in/data.bin", true, Map.of("/in/data.bin", file)), Duration.ofSeconds(120));
        assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
        assertThat(stdout(done)).startsWith(sha + " ");
    }

    /**
     * SIGKILL of the worker running a long execution: that execution ends FAILED once its lease lapses, work submitted
     * after the kill runs on the survivor, and every committed image still reads back byte for byte.
     */
    @Test
    @Order(5)
    void aKilledWorkersRunFailsWithinItsLeaseAndTheOtherWorkerCarriesOn() throws Exception {
        String op = spawn(base, "sleep 120", true, Map.of());
        TestServerProcess victim = null;
        for (int i = 0; i < 300 && victim == null; i++) {
            for (TestServerProcess w : new TestServerProcess[] {w1, w2})
                if (TestProcesses.descendants(w.process.pid()).stream().anyMatch(p -> p.argv0().equals("sleep"))) victim = w;
            if (victim == null) Thread.sleep(100);
        }
        assertThat(victim).as("a worker runs the sleep").isNotNull();
        TestServerProcess survivor = victim == w1 ? w2 : w1;
        String victimName = victim == w1 ? "worker-1" : "worker-2";
        victim.crash();
        long killedAt = System.nanoTime();
        List<String> after = new ArrayList<>();
        for (int i = 0; i < 4; i++) after.add(spawn(children.get(i), "cat /f", true, Map.of()));

        JsonNode failed = api.await(op, Duration.ofSeconds(60));
        double seconds = (System.nanoTime() - killedAt) / 1e9;
        System.out.println("killed " + victimName + ": its run ended " + failed.get("status").asText() + " after " + seconds + " s");
        assertThat(failed.get("status").asText()).as(failed.toString()).isEqualTo("FAILED");
        assertThat(failed.get("error").asText()).contains(victimName, "stopped");
        for (int i = 0; i < after.size(); i++) {
            JsonNode done = api.await(after.get(i), Duration.ofSeconds(120));
            assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
            assertThat(stdout(done)).isEqualTo("run-" + i + "\n");
        }
        for (int i = 0; i < children.size(); i++)
            assertThat(download(survivor, children.get(i), "/f")).isEqualTo(("run-" + i + "\n").getBytes(StandardCharsets.UTF_8));
        // The dead worker's sandbox outlived it (nothing reaps on SIGKILL); its restart finds and removes it.
        if (victim == w1) w1 = node(victimName, "worker");
        else w2 = node(victimName, "worker");
        assertThat(Files.readString(dir.resolve(victimName + ".log"))).contains("removed 1 sandbox(es) left by a previous run");
    }

    /** The api node killed and started again: every operation and image is still there and reads back. */
    @Test
    @Order(6)
    void anApiNodeRestartLosesNothing() throws Exception {
        JsonNode before = api.call("GET", "/v1/images?limit=1000", null);
        api.crash();
        api = node("api", "api");
        JsonNode after = api.call("GET", "/v1/images?limit=1000", null);
        assertThat(uuids(after)).containsAll(uuids(before)).containsAll(children).contains(base);
        assertThat(download(api, children.getLast(), "/f")).isEqualTo(("run-" + (RUNS - 1) + "\n").getBytes(StandardCharsets.UTF_8));
        JsonNode done = api.await(spawn(children.getFirst(), "cat /f", true, Map.of()), Duration.ofSeconds(120));
        assertThat(stdout(done)).isEqualTo("run-0\n");
    }

    // ------------------------------------------------------------------ helpers

    static String spawn(String image, String script, boolean disposable, Map<String, String> files) throws Exception {
        ObjectNode body = JSON.createObjectNode().put("image", image).put("command", script).put("shell", true)
                .put("disposable", disposable).put("timeout", 300);
        if (!files.isEmpty()) {
            ObjectNode f = body.putObject("files");
            files.forEach((path, uuid) -> f.putObject(path).put("uuid", uuid));
        }
        return api.call("POST", "/v1/instances", body.toString().getBytes(StandardCharsets.UTF_8)).get("uuid").asText();
    }

    static String stdout(JsonNode op) {
        JsonNode st = op.get("metadata").get("result").get("stdout");
        return st.get("encoding").asText().equals("base64")
                ? new String(java.util.Base64.getDecoder().decode(st.get("value").asText()), StandardCharsets.UTF_8)
                : st.get("value").asText();
    }

    static byte[] download(TestServerProcess node, String image, String path) throws Exception {
        HttpResponse<byte[]> r = HTTP.send(HttpRequest.newBuilder(URI.create(node.url("/v1/inspect/" + image + "/download?path=" + path)))
                .header("Authorization", "Bearer " + TOKEN).build(), HttpResponse.BodyHandlers.ofByteArray());
        assertThat(r.statusCode()).as(new String(r.body(), StandardCharsets.UTF_8)).isEqualTo(200);
        return r.body();
    }

    /** The layers in a node's pool now. */
    static Set<String> layers(TestServerProcess node) throws IOException {
        Path d = node == api ? dir.resolve("api") : node == w1 ? dir.resolve("worker-1") : dir.resolve("worker-2");
        Path layers = d.resolve("layers").resolve("layers");
        if (!Files.isDirectory(layers)) return Set.of();
        try (Stream<Path> s = Files.list(layers)) {
            return new HashSet<>(s.map(p -> p.getFileName().toString()).filter(n -> !n.startsWith(".")).toList());
        }
    }

    static Set<String> minus(Set<String> a, Set<String> b) {
        Set<String> out = new HashSet<>(a);
        out.removeAll(b);
        return out;
    }

    static List<String> uuids(JsonNode images) {
        List<String> out = new ArrayList<>();
        images.get("images").forEach(i -> out.add(i.get("uuid").asText()));
        return out;
    }
}
