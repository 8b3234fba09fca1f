package dev.contree.registry;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/** A scriptable loopback HTTP server for protocol edge cases a real registry will not produce. */
final class FakeRegistry implements AutoCloseable {
    interface Handler {
        void handle(HttpExchange ex) throws IOException;
    }

    record Seen(String path, Headers headers) {}

    final HttpServer server;
    final Map<String, Handler> routes = new ConcurrentHashMap<>();
    final List<Seen> seen = new CopyOnWriteArrayList<>();

    FakeRegistry(String bindHost) throws IOException {
        server = HttpServer.create(new InetSocketAddress(bindHost, 0), 16);
        server.createContext("/", ex -> {
            try (ex) {
                seen.add(new Seen(ex.getRequestURI().getPath(), ex.getRequestHeaders()));
                Handler h = routes.get(ex.getRequestURI().getPath());
                if (h == null) {
                    send(ex, 404, "application/json", "{\"errors\":[{\"code\":\"NAME_UNKNOWN\",\"message\":\"repository name not known to registry\"}]}");
                } else {
                    h.handle(ex);
                }
            }
        });
        server.start();
    }

    FakeRegistry() throws IOException {
        this("127.0.0.1");
    }

    int port() {
        return server.getAddress().getPort();
    }

    String hostPort() {
        return "127.0.0.1:" + port();
    }

    FakeRegistry route(String path, Handler h) {
        routes.put(path, h);
        return this;
    }

    static void send(HttpExchange ex, int status, String contentType, String body) throws IOException {
        send(ex, status, contentType, body.getBytes(StandardCharsets.UTF_8));
    }

    static void send(HttpExchange ex, int status, String contentType, byte[] body) throws IOException {
        if (contentType != null) ex.getResponseHeaders().add("Content-Type", contentType);
        ex.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        if (body.length > 0) ex.getResponseBody().write(body);
    }

    static Handler redirect(String location) {
        return ex -> {
            ex.getResponseHeaders().add("Location", location);
            ex.sendResponseHeaders(307, -1);
        };
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
