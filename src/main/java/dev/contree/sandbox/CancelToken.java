package dev.contree.sandbox;

import java.util.ArrayList;
import java.util.List;

/** A cancel signal that someone can trip. */
public final class CancelToken implements CancelSignal {
    private final List<Runnable> callbacks = new ArrayList<>();
    private boolean cancelled;

    public void cancel() {
        List<Runnable> toRun;
        synchronized (this) {
            if (cancelled) return;
            cancelled = true;
            toRun = List.copyOf(callbacks);
            callbacks.clear();
        }
        for (Runnable r : toRun) {
            try { r.run(); } catch (RuntimeException ignored) { }
        }
    }

    @Override public synchronized boolean isCancelled() { return cancelled; }

    @Override public void onCancel(Runnable r) {
        synchronized (this) {
            if (!cancelled) { callbacks.add(r); return; }
        }
        r.run();
    }
}
