package dev.contree.cancel;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;

/**
 * Set once when work is cancelled; the work polls it or registers callbacks that unblock it (kill a container,
 * close a socket). The scheduler trips it, and the same token travels down into imports, the registry client and
 * the sandbox runtime.
 *
 * <p>It lives in a package of its own because every layer needs it and none may own it: {@code registry} and
 * {@code sandbox} are leaves that must not depend on {@code operations} (which depends on images and the store),
 * and {@code operations} must not depend on a sandbox or registry type. This package depends on nothing of ours.
 */
public final class CancelToken {
    private static final Logger LOG = LoggerFactory.getLogger(CancelToken.class);

    /** Why work was cancelled; callers decide on the reason (a timeout fails an import, a client's cancel does not). */
    public enum Reason {
        /** A client asked ({@code DELETE /v1/operations/{uuid}}). */
        CLIENT_REQUEST("cancelled by request"),
        /** The work ran past its own time limit. */
        TIMEOUT("timed out"),
        /** The server is stopping. */
        SERVER_SHUTDOWN("server shutting down");

        private final String message;

        Reason(String message) {
            this.message = message;
        }

        /** The text shown when a canceller gives none. */
        public String message() {
            return message;
        }
    }

    /** The reason and its text, published together. */
    private record Cause(Reason reason, String message) {}

    private final List<Runnable> callbacks = new ArrayList<>();
    private volatile Cause cause;

    /** A token nobody else holds, so it is never cancelled: for callers that do not cancel. */
    public static CancelToken none() {
        return new CancelToken();
    }

    public boolean isCancelled() {
        return cause != null;
    }

    /** Why it was cancelled; null while it is not. */
    public Reason reason() {
        Cause c = cause;
        return c == null ? null : c.reason();
    }

    /** The text the canceller gave (or the reason's own); null while not cancelled. */
    public String message() {
        Cause c = cause;
        return c == null ? null : c.message();
    }

    /** Runs {@code r} now if already cancelled, else once when cancelled. */
    public void onCancel(Runnable r) {
        synchronized (callbacks) {
            if (cause == null) {
                callbacks.add(r);
                return;
            }
        }
        r.run();
    }

    /** Cancels with the reason's own text. */
    public void cancel(Reason reason) {
        cancel(reason, reason.message());
    }

    /**
     * Cancels and runs the callbacks; only the first cancel counts. A failing callback does not keep the
     * others from running: each one may be what unblocks the work.
     */
    public void cancel(Reason reason, String message) {
        if (reason == null || message == null) throw new IllegalArgumentException("a cancel needs a reason and a message");
        List<Runnable> toRun;
        synchronized (callbacks) {
            if (cause != null) return;
            cause = new Cause(reason, message);
            toRun = List.copyOf(callbacks);
            callbacks.clear();
        }
        for (Runnable r : toRun) {
            try {
                r.run();
            } catch (RuntimeException e) {
                LOG.warn("a cancel callback failed", e);
            }
        }
    }
}
