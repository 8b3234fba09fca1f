package dev.contree.sandbox;

import java.io.ByteArrayOutputStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Bounded capture of one stream: first {@code cap} bytes kept, the rest counted. Used by one reader thread. */
final class Capture {
    private static final Logger log = LoggerFactory.getLogger(Capture.class);
    private final long cap;
    final ByteArrayOutputStream kept = new ByteArrayOutputStream();
    volatile long total;

    Capture(long cap) { this.cap = cap; }

    /** Returns how many of the given bytes are kept (a prefix). */
    int accept(int len) {
        long room = Math.max(0, cap - total);
        total += len;
        return (int) Math.min(room, len);
    }

    boolean truncated() { return total > cap; }

    byte[] bytes() {
        synchronized (kept) { return kept.toByteArray(); }
    }

    void keep(byte[] b, int off, int len) {
        synchronized (kept) { kept.write(b, off, len); }
    }

    void finish(SandboxListener l, String stream) {
        if (truncated()) {
            try { l.onOutputTruncated(stream, kept.size(), total - kept.size()); }
            catch (RuntimeException e) { log.warn("listener failed", e); }
        }
    }
}
