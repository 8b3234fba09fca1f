package dev.contree.sandbox;

import dev.contree.linux.AdoptedChild;
import dev.contree.linux.Linux;
import dev.contree.linux.Reaper;
import dev.contree.linux.SpawnedProcess;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A container started with {@code <runtime> run --detach --pid-file P}, seen as one process: the three pipes of
 * the launcher (which hands them to the container's init and exits once the container runs), and the exit of
 * the container's init, which the server adopts as the child subreaper ({@link Reaper}). So a sleeping sandbox
 * has no runtime process beside it: its host processes are its init and the command (under runsc the sentry,
 * gofer and stubs).
 *
 * <p>Exit: the launcher's status when it fails (the container never ran), else init's, with the JDK's
 * convention (128 + signal when killed). runsc's pid file names the sandbox process (the sentry), whose status
 * is the container's. The runtime's other detached processes in the container's cgroup that are our children
 * (runsc's gofer) are adopted too, only to be reaped at once when they exit: {@code runsc delete} waits until
 * the gofer is gone, and a zombie still counts as there.
 */
final class DetachedContainer extends dev.contree.linux.FutureExitProcess {
    private static final Logger log = LoggerFactory.getLogger(DetachedContainer.class);
    /** Reported when the launcher succeeded but left no init to wait for (cannot normally happen). */
    static final int NO_INIT = 255;

    private final SpawnedProcess launcher;
    private final Path pidFile;
    private final Path cgroupProcs;
    private volatile AdoptedChild init;
    private volatile int killSignal; // 0 until destroy/destroyForcibly
    private volatile boolean initExited;

    private DetachedContainer(SpawnedProcess launcher, Path pidFile, Path cgroupProcs) {
        this.launcher = launcher;
        this.pidFile = pidFile;
        this.cgroupProcs = cgroupProcs;
    }

    /**
     * Starts the launcher {@code argv} (which must write the init's pid to {@code pidFile}) in {@code dir}.
     * {@code cgroupProcs}: the container's cgroup.procs, whose processes that are our children once the launcher
     * has exited are adopted and reaped (null: only the init).
     */
    static DetachedContainer start(List<String> argv, Path dir, Path pidFile, Path cgroupProcs) throws IOException {
        Reaper.becomeSubreaper();
        SpawnedProcess launcher = SpawnedProcess.start(argv, dir, SpawnedProcess.Stderr.PIPE);
        DetachedContainer c = new DetachedContainer(launcher, pidFile, cgroupProcs);
        // Runs on the poller thread as the launcher is reaped: a few small reads and syscalls, no blocking.
        launcher.onExit().whenComplete((p, t) -> c.launched());
        return c;
    }

    private void launched() {
        try {
            int code = launcher.exitValue();
            int pid = readPid();
            AdoptedChild i = null;
            if (pid > 0) {
                try {
                    i = Reaper.adopt(pid);
                } catch (IOException e) {
                    log.warn("cannot wait for the container's init (pid {}): {}", pid, e.getMessage());
                }
            }
            adoptOthers(pid);
            if (i != null) {
                init = i;
                int sig = killSignal;
                if (code != 0) i.signal(Linux.SIGKILL); // the runtime failed: never leave its container running
                else if (sig != 0) i.signal(sig);
            }
            if (code != 0 || i == null) {
                if (code == 0) log.warn("{} left no init to wait for (pid file {})", launcher, pidFile);
                exit.complete(code != 0 ? code : NO_INIT);
                return;
            }
            i.onExit().whenComplete((s, t) -> {
                initExited = t == null;
                exit.complete(t == null ? s.exitValue() : 128 + Linux.SIGKILL);
            });
        } catch (RuntimeException e) {
            log.warn("detached container", e);
            exit.complete(NO_INIT);
        }
    }

    private int readPid() {
        try {
            String s = Files.readString(pidFile, StandardCharsets.US_ASCII).strip();
            return s.isEmpty() ? -1 : Integer.parseInt(s);
        } catch (NoSuchFileException e) {
            return -1;
        } catch (IOException | NumberFormatException e) {
            log.warn("pid file {}: {}", pidFile, e.toString());
            return -1;
        }
    }

    /** The runtime's other processes in the container's cgroup that are now our children, adopted to be reaped. */
    private void adoptOthers(int initPid) {
        if (cgroupProcs == null) return;
        List<Integer> pids = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(cgroupProcs, StandardCharsets.US_ASCII)) {
                line = line.strip();
                if (!line.isEmpty()) pids.add(Integer.parseInt(line));
            }
        } catch (IOException | NumberFormatException e) {
            return; // no cgroup (the runtime failed early): the sweep reaps whatever is left
        }
        for (int pid : pids) {
            if (pid == initPid) continue;
            try {
                Reaper.adopt(pid); // reaped on exit, status unused
            } catch (IOException notOurs) {
                // the sentry's own children (ptrace stubs), or gone meanwhile
            }
        }
    }

    /** Whether the exit is init's, reaped by us: the container has stopped and its processes are gone. */
    boolean initExited() { return initExited; }

    @Override public OutputStream getOutputStream() { return launcher.getOutputStream(); }
    @Override public InputStream getInputStream() { return launcher.getInputStream(); }
    @Override public InputStream getErrorStream() { return launcher.getErrorStream(); }
    @Override public boolean supportsNormalTermination() { return true; }

    @Override
    public long pid() {
        AdoptedChild i = init;
        return i != null ? i.pid() : launcher.pid();
    }

    @Override public void destroy() { kill(Linux.SIGTERM); }

    @Override
    public Process destroyForcibly() {
        kill(Linux.SIGKILL);
        return this;
    }

    /** To init once adopted; before that to the launcher (and to init as soon as it is adopted). */
    private void kill(int sig) {
        killSignal = sig;
        AdoptedChild i = init;
        if (i != null) i.signal(sig);
        else launcher.destroyForcibly();
    }

    @Override
    public String toString() {
        return "DetachedContainer[launcher " + launcher.pid() + ", init " + (init == null ? "?" : init.pid()) + "]";
    }
}
