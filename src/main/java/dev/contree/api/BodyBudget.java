package dev.contree.api;

import io.javalin.http.Context;
import jakarta.servlet.ServletRequestEvent;
import jakarta.servlet.ServletRequestListener;

import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * One budget for the request bodies the server holds in memory at once. A JSON body is parsed whole (stdin travels
 * base64 inside it), so each request may hold up to the JSON limit, and a few clients sending maximal bodies at the
 * same time would exhaust the heap (measured before: an OutOfMemoryError). A body reserves its declared length (the
 * JSON limit when it is chunked) before it is read, waits briefly when the budget is spent and is otherwise refused
 * with 429; the reservation ends with the request, however it ends (a servlet request listener, not an after-handler
 * that an exception would skip). Uploads to {@code /v1/files} stream to disk and reserve nothing.
 */
final class BodyBudget implements ServletRequestListener {
    private static final String ATTRIBUTE = "contree.bodyBudgetKiB";
    private static final long WAIT_MS = 2000;
    private final Semaphore kib;
    private final int totalKiB;

    BodyBudget(long totalBytes) {
        this.totalKiB = (int) Math.min(Integer.MAX_VALUE, Math.max(1, totalBytes >> 10));
        this.kib = new Semaphore(totalKiB, true);
    }

    /** Reserves {@code bytes} for {@code ctx}'s body; throws 429 when the server holds too many bodies already. */
    void reserve(Context ctx, long bytes) throws InterruptedException {
        int want = (int) Math.min(totalKiB, (bytes + 1023) >> 10);
        if (want <= 0) return;
        if (!kib.tryAcquire(want, WAIT_MS, TimeUnit.MILLISECONDS)) {
            ctx.header("Retry-After", "1");
            throw new ApiException(429, "the server is reading too many large request bodies at once; retry shortly");
        }
        ctx.req().setAttribute(ATTRIBUTE, want);
    }

    /** Bytes of bodies reserved right now (for tests and metrics). */
    long reservedBytes() {
        return (long) (totalKiB - kib.availablePermits()) << 10;
    }

    @Override
    public void requestDestroyed(ServletRequestEvent event) {
        Object held = event.getServletRequest().getAttribute(ATTRIBUTE);
        if (held instanceof Integer k) {
            event.getServletRequest().removeAttribute(ATTRIBUTE);
            kib.release(k);
        }
    }
}
