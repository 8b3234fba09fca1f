package dev.contree.imports;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import dev.contree.registry.RegistryClient;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A loopback OCI distribution registry (the pull side: {@code /v2/}, manifests by tag or digest, blobs) serving an
 * OCI image layout directory as {@code <any repo>:<tag>}, with no skopeo or registry process. Blobs can be overridden
 * (other bytes, or none: 404), and {@code bytesPerSecond} drip-feeds every response body, to play hostile registries.
 */
public final class LayoutRegistry implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern MANIFEST = Pattern.compile("/v2/(.+)/manifests/([^/]+)");
    private static final Pattern BLOB = Pattern.compile("/v2/(.+)/blobs/(sha256:[0-9a-f]{64})");

    private final HttpServer http;
    private final Path layout;
    /** digest → bytes to serve instead; an empty array means "404". */
    public final Map<String, byte[]> overrides = new ConcurrentHashMap<>();
    public final AtomicInteger blobRequests = new AtomicInteger();
    private volatile long bytesPerSecond = Long.MAX_VALUE;

    public LayoutRegistry(Path layout) throws IOException {
        this.layout = layout;
        http = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 64);
        http.setExecutor(java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor());
        http.createContext("/", ex -> {
            try (ex) {
                String path = ex.getRequestURI().getPath();
                byte[] body = null;
                String type = "application/octet-stream";
                Matcher m;
                if (path.equals("/v2/") || path.equals("/v2")) {
                    body = "{}".getBytes(StandardCharsets.UTF_8);
                    type = "application/json";
                } else if ((m = MANIFEST.matcher(path)).matches()) {
                    String digest = m.group(2).startsWith("sha256:") ? m.group(2) : byTag(m.group(2));
                    body = digest == null ? null : blob(digest);
                    type = RegistryClient.OCI_MANIFEST;
                } else if ((m = BLOB.matcher(path)).matches()) {
                    blobRequests.incrementAndGet();
                    byte[] o = overrides.get(m.group(2));
                    body = o != null ? (o.length == 0 ? null : o) : blob(m.group(2));
                }
                if (body == null) {
                    ex.sendResponseHeaders(404, -1);
                    return;
                }
                ex.getResponseHeaders().add("Content-Type", type);
                ex.sendResponseHeaders(200, body.length);
                drip(body, ex.getResponseBody());
            } catch (IOException e) {
                // the client went away (a cancelled import)
            }
        });
        http.start();
    }

    public void throttle(long bytesPerSecond) {
        this.bytesPerSecond = bytesPerSecond;
    }

    public String hostPort() {
        return "127.0.0.1:" + http.getAddress().getPort();
    }

    private String byTag(String tag) throws IOException {
        JsonNode index = JSON.readTree(layout.resolve("index.json").toFile());
        for (JsonNode d : index.path("manifests")) {
            if (tag.equals(d.path("annotations").path("org.opencontainers.image.ref.name").asText(null))) return d.path("digest").asText();
        }
        return null;
    }

    private byte[] blob(String digest) throws IOException {
        Path p = layout.resolve("blobs/sha256/" + digest.substring(7));
        return Files.exists(p) ? Files.readAllBytes(p) : null;
    }

    private void drip(byte[] body, OutputStream out) throws IOException {
        long rate = bytesPerSecond;
        if (rate == Long.MAX_VALUE) {
            out.write(body);
            return;
        }
        int chunk = (int) Math.max(1, Math.min(16 * 1024, rate / 10));
        for (int off = 0; off < body.length; off += chunk) {
            out.write(body, off, Math.min(chunk, body.length - off));
            out.flush();
            try {
                Thread.sleep(Math.max(1, chunk * 1000L / rate));
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    @Override
    public void close() {
        http.stop(0);
    }
}
