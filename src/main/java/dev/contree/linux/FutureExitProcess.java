package dev.contree.linux;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A {@link Process} whose exit is a future completed by whoever observes it (the poller, a pidfd, an adopted child):
 * waiting parks a virtual thread instead of blocking in {@code waitpid}.
 */
public abstract class FutureExitProcess extends Process {
    /** The exit status; only ever completed normally. */
    protected final CompletableFuture<Integer> exit = new CompletableFuture<>();

    @Override public boolean isAlive() { return !exit.isDone(); }

    @Override
    public int exitValue() {
        Integer c = exit.getNow(null);
        if (c == null) throw new IllegalThreadStateException("process has not exited");
        return c;
    }

    @Override
    public int waitFor() throws InterruptedException {
        try {
            return exit.get();
        } catch (ExecutionException e) {
            throw new AssertionError(e);
        }
    }

    @Override
    public boolean waitFor(long timeout, TimeUnit unit) throws InterruptedException {
        if (exit.isDone()) return true;
        if (timeout <= 0) return false;
        try {
            exit.get(timeout, unit);
            return true;
        } catch (TimeoutException e) {
            return false;
        } catch (ExecutionException e) {
            throw new AssertionError(e);
        }
    }

    @Override
    public CompletableFuture<Process> onExit() {
        return exit.thenApply(c -> this);
    }
}
