package dev.contree.operations;

import java.util.ArrayList;
import java.util.List;

/** Set when an operation is cancelled (by a client, a timeout or shutdown); jobs poll it or register callbacks. */
public final class CancelToken {
    private final List<Runnable> callbacks = new ArrayList<>();
    private volatile String reason;

    public boolean isCancelled() {
        return reason != null;
    }

    public String reason() {
        return reason;
    }

    /** Runs {@code r} now if already cancelled, else once cancelled. */
    public void onCancel(Runnable r) {
        synchronized (callbacks) {
            if (reason == null) {
                callbacks.add(r);
                return;
            }
        }
        r.run();
    }

    public void cancel(String why) {
        List<Runnable> toRun;
        synchronized (callbacks) {
            if (reason != null) return;
            reason = why;
            toRun = new ArrayList<>(callbacks);
            callbacks.clear();
        }
        toRun.forEach(Runnable::run);
    }
}
