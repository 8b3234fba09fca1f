package dev.contree.imports;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;

/** A loopback TCP proxy that passes requests through and throttles responses to {@code bytesPerSecond}. */
public final class ThrottlingProxy implements AutoCloseable {
    private final ServerSocket server;
    private final int targetPort;
    private final long bytesPerSecond;

    public ThrottlingProxy(int targetPort, long bytesPerSecond) throws IOException {
        this.targetPort = targetPort;
        this.bytesPerSecond = bytesPerSecond;
        server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread.ofVirtual().start(this::accept);
    }

    int port() {
        return server.getLocalPort();
    }

    public String hostPort() {
        return "127.0.0.1:" + port();
    }

    private void accept() {
        while (!server.isClosed()) {
            try {
                Socket client = server.accept();
                Socket upstream = new Socket(InetAddress.getLoopbackAddress(), targetPort);
                Thread.ofVirtual().start(() -> pump(client, upstream, Long.MAX_VALUE));
                Thread.ofVirtual().start(() -> pump(upstream, client, bytesPerSecond));
            } catch (IOException e) {
                return;
            }
        }
    }

    private static void pump(Socket from, Socket to, long rate) {
        byte[] buf = new byte[16 * 1024];
        long start = System.nanoTime();
        long sent = 0;
        try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
            int n;
            while ((n = in.read(buf, 0, rate == Long.MAX_VALUE ? buf.length : (int) Math.min(buf.length, Math.max(1, rate / 20)))) > 0) {
                out.write(buf, 0, n);
                out.flush();
                sent += n;
                if (rate != Long.MAX_VALUE) {
                    long due = start + sent * 1_000_000_000L / rate;
                    long wait = due - System.nanoTime();
                    if (wait > 0) Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                }
            }
        } catch (IOException | InterruptedException ignored) {
            // connection closed
        } finally {
            try {
                from.close();
                to.close();
            } catch (IOException ignored) {
                // closing
            }
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
    }
}
