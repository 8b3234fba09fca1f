package dev.contree.bench;

import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.PrintWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * The API client of {@code bench/density.sh}, run as its own JVM so that the server's load does not slow the
 * measuring side's threads: every {@code interval} ms it times {@code GET /v1/whoami}, {@code GET
 * /v1/operations/{id}} (of its own latest spawn) and {@code POST /v1/instances} (a disposable {@code true}),
 * one after the other, and appends {@code epochMillis route millis status} lines to {@code out} until
 * {@code stop} exists. A request that fails or takes over 10 s is recorded with status 0 and the time spent.
 *
 * <p>Args: {@code baseUrl token image out stop intervalMs}.
 */
public final class ApiProbe {
    private static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] args) throws Exception {
        String base = args[0], token = args[1], image = args[2];
        Path out = Path.of(args[3]), stop = Path.of(args[4]);
        long interval = Long.parseLong(args[5]);
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();
        String spawn = "{\"image\":\"" + image + "\",\"command\":\"true\",\"disposable\":true,\"timeout\":60}";
        String lastOp = null;
        try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(out), true)) {
            while (!Files.exists(stop)) {
                long t = System.currentTimeMillis();
                time(w, http, token, "whoami", base + "/v1/whoami", null);
                if (lastOp != null) time(w, http, token, "get-operation", base + "/v1/operations/" + lastOp, null);
                String body = time(w, http, token, "spawn", base + "/v1/instances", spawn);
                if (body != null) lastOp = JSON.readTree(body).get("uuid").asText();
                long rest = interval - (System.currentTimeMillis() - t);
                if (rest > 0) Thread.sleep(rest);
            }
        }
    }

    /** One timed request; returns the body on a 2xx answer, else null. */
    static String time(PrintWriter w, HttpClient http, String token, String route, String url, String post) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).header("Authorization", "Bearer " + token);
        if (post != null) b.header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(post));
        long t0 = System.nanoTime();
        long at = System.currentTimeMillis();
        int status = 0;
        String body = null;
        try {
            HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
            status = r.statusCode();
            if (status / 100 == 2) body = r.body();
        } catch (Exception e) {
            // recorded as status 0
        }
        w.printf("%d %s %.3f %d%n", at, route, (System.nanoTime() - t0) / 1e6, status);
        return body;
    }
}
