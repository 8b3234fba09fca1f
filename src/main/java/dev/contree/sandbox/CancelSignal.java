package dev.contree.sandbox;

/** Cancellation of a run. {@link CancelToken} is the standard implementation. */
public interface CancelSignal {
    CancelSignal NEVER = new CancelSignal() {
        @Override public boolean isCancelled() { return false; }
        @Override public void onCancel(Runnable r) {}
    };

    boolean isCancelled();

    /** Registers a callback run once on cancellation (immediately if already cancelled). */
    void onCancel(Runnable r);
}
