package dev.contree;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A ConTree server in its own JVM, started with the test classpath, so a test can kill -9 it (a crash: no shutdown
 * hook, no cleanup) or run several servers side by side. Its output goes to {@code log}.
 */
public final class TestServerProcess implements AutoCloseable {
    public final Process process;
    public final int port;
    public final String token;

    /** Starts {@code serve --data dataDir --runtime runtime [extraArgs…]} and waits until it answers whoami. */
    public TestServerProcess(Path dataDir, String token, String runtime, List<String> extraArgs, Path log)
            throws IOException, InterruptedException {
        this(dataDir, token, runtime, extraArgs, java.util.Map.of(), log);
    }

    /** As above, with {@code env} added to the process's environment (credentials, for instance). */
    public TestServerProcess(Path dataDir, String token, String runtime, List<String> extraArgs, java.util.Map<String, String> env,
                             Path log) throws IOException, InterruptedException {
        this.token = token;
        try (ServerSocket probe = new ServerSocket(0)) {
            port = probe.getLocalPort();
        }
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "-cp",
                System.getProperty("java.class.path"), "dev.contree.Main", "serve", "--data", dataDir.toString(),
                "--listen", "127.0.0.1:" + port, "--token", token, "--runtime", runtime));
        cmd.addAll(extraArgs);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
        pb.environment().putAll(env);
        process = pb.start();
        HttpClient http = HttpClient.newHttpClient();
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (true) {
            try {
                var r = http.send(HttpRequest.newBuilder(URI.create(url("/v1/whoami")))
                        .header("Authorization", "Bearer " + token).build(), HttpResponse.BodyHandlers.discarding());
                if (r.statusCode() == 200) return;
            } catch (IOException ignored) {
                // not up yet
            }
            if (!process.isAlive()) throw new IOException("server exited with " + process.exitValue() + "; see " + log);
            if (System.nanoTime() > deadline) {
                crash();
                throw new IOException("server did not come up; see " + log);
            }
            Thread.sleep(100);
        }
    }

    private static final com.fasterxml.jackson.databind.ObjectMapper JSON = new com.fasterxml.jackson.databind.ObjectMapper();
    private final HttpClient client = HttpClient.newHttpClient();

    /** One authorised call that must answer 2xx; its JSON body, or null when empty. */
    public com.fasterxml.jackson.databind.JsonNode call(String method, String path, byte[] body) throws IOException, InterruptedException {
        var b = HttpRequest.newBuilder(URI.create(url(path))).header("Authorization", "Bearer " + token)
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(body));
        HttpResponse<byte[]> r = client.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
        if (r.statusCode() / 100 != 2)
            throw new AssertionError(method + " " + path + " answered " + r.statusCode() + ": " + new String(r.body()));
        return r.body().length == 0 ? null : JSON.readTree(r.body());
    }

    /** Polls an operation until it has finished (at most {@code limit}); its final record. */
    public com.fasterxml.jackson.databind.JsonNode await(String operation, Duration limit) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + limit.toNanos();
        while (System.nanoTime() < deadline) {
            var o = call("GET", "/v1/operations/" + operation, null);
            if (o.get("status").asText().matches("SUCCESS|FAILED|CANCELLED")) return o;
            Thread.sleep(100);
        }
        throw new AssertionError("operation " + operation + " did not finish within " + limit);
    }

    public String url(String path) {
        return "http://127.0.0.1:" + port + path;
    }

    /** SIGKILL: no shutdown hook, no cleanup — a crash. */
    public void crash() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor();
    }

    /** SIGTERM, a graceful stop; SIGKILL if it takes longer than 30 s. */
    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(30, TimeUnit.SECONDS)) crash();
    }
}
