package dev.contree.linux;

import java.io.IOException;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A child this process did not start: an orphan re-parented to us because we are the child subreaper (a
 * container's init once the runtime that created it has exited). Its exit is a pidfd served by the
 * {@link Poller}: no thread waits for it, and {@link #onExit()} completes on the poller thread with the status
 * from waitid(2), which also reaps it. Signals go through the pidfd, so they never reach a recycled pid. While
 * adopted, the {@link Reaper}'s sweep leaves it alone.
 */
public final class AdoptedChild {
    private static final Logger log = LoggerFactory.getLogger(AdoptedChild.class);

    private final int pid;
    private int pidfd; // -1 once reaped; guarded by this
    private final CompletableFuture<Linux.ChildStatus> exit = new CompletableFuture<>();

    private AdoptedChild(int pid, int pidfd) {
        this.pid = pid;
        this.pidfd = pidfd;
    }

    /**
     * Takes over waiting for {@code pid}, which must be our child (alive or a zombie); anything else (no such
     * process, or another's child) is an IOException.
     */
    static AdoptedChild adopt(int pid) throws IOException {
        if (pid <= 1) throw new IOException("not a child of ours: pid " + pid);
        Reaper.own(pid); // from here on the sweep keeps off it
        int fd = -1;
        try {
            fd = Linux.pidfdOpen(pid);
            try {
                Linux.waitid(Linux.P_PIDFD, fd, Linux.WNOHANG | Linux.WNOWAIT); // ECHILD: someone else's
            } catch (Linux.ErrnoException e) {
                if (e.errno() == Linux.ECHILD) throw new IOException("not a child of ours: pid " + pid);
                throw e;
            }
            AdoptedChild c = new AdoptedChild(pid, fd);
            Poller.shared().onReady(fd, Poller.IN, c::reap);
            return c;
        } catch (IOException | RuntimeException e) {
            if (fd >= 0) Linux.close(fd);
            Reaper.disown(pid);
            throw e;
        }
    }

    public int pid() { return pid; }

    public boolean isAlive() { return !exit.isDone(); }

    /** Completes once the child has exited and been reaped. */
    public CompletableFuture<Linux.ChildStatus> onExit() { return exit; }

    /** Sends {@code sig}; a no-op once it has exited. */
    public synchronized void signal(int sig) {
        if (pidfd < 0) return;
        try {
            Linux.pidfdSendSignal(pidfd, sig);
        } catch (IOException e) {
            log.warn("signal {} to pid {}: {}", sig, pid, e.getMessage());
        }
    }

    /** On the poller thread when the pidfd is readable: reaps the child and completes the exit. */
    private void reap() {
        Linux.ChildStatus s;
        synchronized (this) {
            if (pidfd < 0) return;
            try {
                s = Linux.waitid(Linux.P_PIDFD, pidfd, Linux.WNOHANG);
            } catch (IOException e) {
                log.warn("waitid for pid {}: {}", pid, e.getMessage());
                s = new Linux.ChildStatus(pid, true, Linux.SIGKILL, false); // cannot happen: it is ours and unreaped
            }
            if (s == null) { // a spurious wake-up: wait again
                try {
                    Poller.shared().onReady(pidfd, Poller.IN, this::reap);
                } catch (IOException | RuntimeException e) {
                    log.warn("cannot watch pid {}: {}", pid, e.toString());
                }
                return;
            }
            Poller.shared().forget(pidfd);
            Linux.close(pidfd);
            pidfd = -1;
        }
        Reaper.disown(pid);
        exit.complete(s);
    }
}
