package dev.contree.fuzz;

import dev.contree.TestDirs;
import dev.contree.TestServer;
import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/** Slowloris-ish clients (headers or a body trickling in a byte at a time) must not block anyone else. */
class SlowClientTest {
    static final int SLOW_CLIENTS = 40;

    @Test
    void slowClientsDoNotBlockOthers() throws Exception {
        Path dir = Files.createTempDirectory("contree-slow");
        try (TestServer s = new TestServer(dir, c -> c.withRuntime("runc", "ptrace"))) {
            int port = s.server.port();
            s.get(s.tokenB, "/v1/whoami"); // warm-up: the first request pays for class loading
            AtomicInteger answered = new AtomicInteger();
            List<Thread> slow = new ArrayList<>();
            List<Socket> sockets = new ArrayList<>();
            for (int i = 0; i < SLOW_CLIENTS; i++) {
                Socket sock = new Socket();
                sock.connect(new InetSocketAddress("127.0.0.1", port), 5000);
                sock.setSoTimeout(30_000);
                sockets.add(sock);
                boolean body = i % 4 == 3;
                String request = body
                        ? "POST /v1/files HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " + s.tokenA + "\r\nContent-Length: 12\r\n\r\nslow uploads"
                        : "GET /v1/whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " + s.tokenA + "\r\nX-Slow: " + "z".repeat(8) + "\r\n\r\n";
                slow.add(Thread.ofVirtual().start(() -> {
                    try {
                        OutputStream out = sock.getOutputStream();
                        byte[] bytes = request.getBytes(StandardCharsets.US_ASCII);
                        // The headers (or the body) trickle in: the last bytes only after ~4 s.
                        int fast = body ? bytes.length - 12 : bytes.length - 20;
                        out.write(bytes, 0, fast);
                        out.flush();
                        for (int k = fast; k < bytes.length; k++) {
                            Thread.sleep(200);
                            out.write(bytes[k]);
                            out.flush();
                        }
                        InputStream in = sock.getInputStream();
                        String status = new String(in.readNBytes(12), StandardCharsets.US_ASCII);
                        if (status.startsWith("HTTP/1.1 20")) answered.incrementAndGet();
                    } catch (Exception e) {
                        // counted as unanswered
                    }
                }));
            }
            Thread.sleep(300);
            // Meanwhile, ordinary clients are served promptly, over and over.
            for (int k = 0; k < 10; k++) {
                long t0 = System.nanoTime();
                assertThat(s.get(s.tokenB, "/v1/whoami").status()).isEqualTo(200);
                long t1 = System.nanoTime();
                assertThat(s.upload(s.tokenB, ("fast " + k).getBytes(StandardCharsets.UTF_8)).status()).isEqualTo(201);
                long t2 = System.nanoTime();
                assertThat(s.get(s.tokenB, "/v1/files").status()).isEqualTo(200);
                long t3 = System.nanoTime();
                System.out.printf("slow-client round %d: whoami %d ms, upload %d ms, list %d ms%n", k, (t1 - t0) / 1_000_000, (t2 - t1) / 1_000_000, (t3 - t2) / 1_000_000);
                // Generous bounds for a shared 2-core machine; a blocked server would take the slow clients' ~4 s or hang.
                assertThat((t3 - t0) / 1_000_000).as("three requests while %d slow clients trickle", SLOW_CLIENTS).isLessThan(3000);
                if (k < 4) assertThat(answered.get()).as("the slow clients are still unfinished").isZero();
                Thread.sleep(200);
            }
            for (Thread t : slow) t.join(30_000);
            // The slow clients were not dropped either: they get their answers once they finish.
            assertThat(answered.get()).isEqualTo(SLOW_CLIENTS);
            for (Socket sock : sockets) sock.close();
        } finally {
            TestDirs.removeWithMounts(dir);
        }
    }

    /**
     * A flood of idle connections (no request, no authentication) past the server's connection limit holds at most
     * that many descriptors in the server; once they go, the server answers and runs sandboxes as before.
     */
    @Test
    void connectionFloodsAreCappedBelowTheDescriptorLimit() throws Exception {
        Path dir = Files.createTempDirectory("contree-flood");
        int limit = 300; // the default is a quarter of the descriptor limit (5,000 here): too slow a flood for a test
        System.setProperty("contree.connectionLimit", String.valueOf(limit));
        TestServer started;
        try {
            started = new TestServer(dir, c -> c.withRuntime("runc", "ptrace"));
        } finally {
            System.clearProperty("contree.connectionLimit");
        }
        try (TestServer s = started) {
            int port = s.server.port();
            s.get(s.tokenA, "/v1/whoami");
            long before = openFds();
            List<Socket> flood = new ArrayList<>();
            try {
                for (int i = 0; i < 2 * limit; i++) {
                    Socket sock = new Socket();
                    try {
                        sock.connect(new InetSocketAddress("127.0.0.1", port), 3500); // a SYN the full backlog dropped is resent after 1 s
                    } catch (java.net.SocketTimeoutException full) {
                        sock.close(); // the server stopped accepting and the kernel's backlog is full: the cap holds
                        break;
                    }
                    flood.add(sock);
                }
                assertThat(flood.size()).as("connections until the server stopped accepting").isGreaterThanOrEqualTo(limit);
                Thread.sleep(1000);
                // This JVM holds both ends: ours (limit + 200) plus what the server accepted, at most the limit.
                long serverSide = openFds() - before - flood.size();
                assertThat(serverSide).as("descriptors the server took for %d connections", flood.size())
                        .isLessThanOrEqualTo(limit + 64);
            } finally {
                for (Socket sock : flood) sock.close();
            }
            Thread.sleep(500);
            assertThat(s.get(s.tokenA, "/v1/whoami").status()).isEqualTo(200);
        } finally {
            TestDirs.removeWithMounts(dir);
        }
    }

    private static long openFds() throws java.io.IOException {
        try (var l = Files.list(Path.of("/proc/self/fd"))) {
            return l.count();
        }
    }
}
