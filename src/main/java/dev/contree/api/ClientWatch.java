package dev.contree.api;

import io.javalin.http.Context;
import org.eclipse.jetty.ee10.servlet.ServletContextRequest;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Notices a client that closed its connection while its request is still computing. Jetty does not read a
 * connection while a bodiless request is handled, so it never learns of the close (its failure listeners
 * stay silent, measured) and work that writes nothing until it is done (list, grep, diff) would run to its
 * limits for nobody. Every {@link #PERIOD_MS} ms this reads the watched connections without blocking:
 * end-of-stream or a reset means the client is gone. A client that pipelined its next request gets that
 * byte consumed: the request is then answered with {@code Connection: close}, so the client resends the rest
 * on a new connection (what HTTP/1.1 asks of pipelining clients when a connection closes).
 *
 * <p>Watching must stop before the first byte of the answer goes out ({@link Watched#stop}): once a client has
 * its answer it may send the next request on the same connection, and a probe would eat that request's first
 * byte. A stop waits for a probe in flight, so after it returns nothing reads the connection again.
 */
final class ClientWatch {
    static final long PERIOD_MS = 200;
    /** One per JVM: a single daemon thread, however many servers (tests) run. */
    static final ClientWatch SHARED = new ClientWatch();
    private final Set<Watched> watched = ConcurrentHashMap.newKeySet();
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "contree-client-watch");
        t.setDaemon(true);
        return t;
    });

    private ClientWatch() {
        timer.scheduleWithFixedDelay(this::probeAll, PERIOD_MS, PERIOD_MS, TimeUnit.MILLISECONDS);
    }

    /** One watched request; stop it before the response goes out (close stops it too). */
    final class Watched implements AutoCloseable {
        private final SocketChannel channel;
        private final Runnable onGone;
        private boolean consumed, stopped; // guarded by this: a probe reads only while not stopped

        private Watched(SocketChannel channel, Runnable onGone) {
            this.channel = channel;
            this.onGone = onGone;
        }

        /**
         * Stops watching, waiting for a probe in flight; returns whether a byte of a pipelined request was read
         * (then the answer must carry {@code Connection: close}).
         */
        synchronized boolean stop() {
            stopped = true;
            watched.remove(this);
            return consumed;
        }

        /** Reads one byte if still watched: 0 nothing yet, 1 a pipelined byte, -1 the client is gone. */
        private synchronized int probe(ByteBuffer one) {
            if (stopped) return 0;
            int r;
            try {
                one.clear();
                r = channel.read(one);
            } catch (IOException e) {
                r = -1; // reset or closed
            }
            if (r != 0) {
                stopped = true;
                watched.remove(this);
                consumed = r > 0;
            }
            return r;
        }

        @Override public void close() { stop(); }
    }

    /** Watches the connection of {@code ctx}; null when it is not a plain non-blocking socket (nothing to probe). */
    Watched watch(Context ctx, Runnable onGone) {
        try {
            Object transport = ServletContextRequest.getServletContextRequest(ctx.req())
                    .getConnectionMetaData().getConnection().getEndPoint().getTransport();
            if (!(transport instanceof SocketChannel ch) || ch.isBlocking()) return null;
            Watched w = new Watched(ch, onGone);
            watched.add(w);
            return w;
        } catch (RuntimeException e) {
            return null; // not served by Jetty's servlet layer: the request's budget still bounds the work
        }
    }

    private void probeAll() {
        ByteBuffer one = ByteBuffer.allocate(1);
        for (Watched w : watched) {
            if (w.probe(one) < 0) w.onGone.run();
        }
    }
}
