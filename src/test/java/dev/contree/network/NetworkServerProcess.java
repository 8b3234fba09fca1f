package dev.contree.network;

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

/** A ConTree server with {@code --network on} in its own JVM, so a test can kill -9 it. */
final class NetworkServerProcess implements AutoCloseable {
    final Process process;
    final int port;
    final String token;

    NetworkServerProcess(Path dataDir, String token, String runtime, List<String> networkArgs, Path log) throws IOException, InterruptedException {
        this.token = token;
        try (ServerSocket probe = new ServerSocket(0)) {
            port = probe.getLocalPort();
        }
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                "dev.contree.Main", "serve", "--data", dataDir.toString(), "--listen", "127.0.0.1:" + port, "--token", token,
                "--runtime", runtime, "--network", "on"));
        cmd.addAll(networkArgs);
        process = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        HttpClient http = HttpClient.newHttpClient();
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (true) {
            try {
                var r = http.send(HttpRequest.newBuilder(URI.create(url("/v1/whoami"))).header("Authorization", "Bearer " + token).build(),
                        HttpResponse.BodyHandlers.discarding());
                if (r.statusCode() == 200) return;
            } catch (IOException ignored) {
                // not up yet
            }
            if (!process.isAlive()) throw new IOException("server exited with " + process.exitValue() + "; see " + log);
            if (System.nanoTime() > deadline) throw new IOException("server did not come up; see " + log);
            Thread.sleep(100);
        }
    }

    String url(String path) {
        return "http://127.0.0.1:" + port + path;
    }

    /** SIGKILL: no shutdown hook, no cleanup. */
    void crash() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor();
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)) crash();
    }
}
