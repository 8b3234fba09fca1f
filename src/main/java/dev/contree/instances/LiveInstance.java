package dev.contree.instances;

import dev.contree.operations.RequestRejected;
import dev.contree.operations.RequestRejected.Reason;
import dev.contree.sandbox.LiveSandbox;
import dev.contree.sandbox.ProcessSpec;

import java.io.IOException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A running execution as its subprocess calls see it: the sandbox's control once init runs, the identity,
 * directory and environment new processes inherit, and which spids exist and which ended.
 */
final class LiveInstance {
    /** Processes one instance may start over its life: every spid has events, and the log must stay bounded. */
    static final int MAX_SUBPROCESSES = 4096;

    /** What a subprocess inherits from its instance (the main process's resolved identity, cwd and env). */
    record Inherited(int uid, int gid, String cwd, Map<String, String> env, boolean keepStdinOpen) {}

    private final String accountId;
    private final CountDownLatch ready = new CountDownLatch(1);
    private volatile Inherited inherited;
    private volatile LiveSandbox sandbox;
    private volatile boolean ended;
    /** Spawned spid → its request; never removed, bounded by MAX_SUBPROCESSES. */
    private final Map<Integer, SubprocessRequest> spawned = new ConcurrentHashMap<>();
    private final Map<Integer, Boolean> exited = new ConcurrentHashMap<>();
    private volatile boolean mainStdinClosed;

    LiveInstance(String accountId) {
        this.accountId = accountId;
    }

    String accountId() { return accountId; }

    /** The run is prepared: what its subprocesses inherit. */
    void planned(Inherited inherited) {
        this.inherited = inherited;
        this.mainStdinClosed = !inherited.keepStdinOpen();
    }

    /** init is up: subprocesses may start. */
    void live(LiveSandbox sandbox) {
        this.sandbox = sandbox;
        ready.countDown();
    }

    /** The main process ended (or the run is over): nothing more may start. */
    void end() {
        ended = true;
        ready.countDown();
    }

    boolean knows(int spid) {
        return spid == LiveSandbox.MAIN || spawned.containsKey(spid);
    }

    void exited(int spid) {
        exited.put(spid, Boolean.TRUE);
    }

    /** Spawned processes with no exit reported (the sandbox died under them). */
    java.util.List<Integer> unexited() {
        return spawned.keySet().stream().filter(spid -> !exited.containsKey(spid)).sorted().toList();
    }

    /** Waits (bounded) for init to come up: a client that saw the main process's spawn event may call at once. */
    private LiveSandbox awaitSandbox(Duration wait) throws RequestRejected {
        try {
            if (!ready.await(wait.toMillis(), TimeUnit.MILLISECONDS))
                throw new RequestRejected(Reason.NOT_YET, "the instance is still starting: retry in a moment", 1);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RequestRejected(Reason.UNAVAILABLE, "interrupted while waiting for the instance to start");
        }
        if (ended || sandbox == null) throw finished();
        return sandbox;
    }

    private static RequestRejected finished() {
        return new RequestRejected(Reason.CONFLICT, "the instance's main process has ended: nothing more can run in it");
    }

    int spawn(SubprocessRequest request, Duration wait) throws RequestRejected {
        LiveSandbox live = awaitSandbox(wait);
        Inherited base = inherited;
        if (spawned.size() >= MAX_SUBPROCESSES)
            throw new RequestRejected(Reason.TOO_MANY, "this instance already started " + MAX_SUBPROCESSES
                    + " subprocesses, the most one instance may: start a new instance", 0);
        Map<String, String> env = new LinkedHashMap<>(base.env());
        request.env().forEach((k, v) -> { if (v == null) env.remove(k); else env.put(k, v); });
        int uid = request.userGiven() ? request.uid() : base.uid();
        int gid = request.userGiven() ? request.gid() : base.gid();
        String cwd = request.cwd().isEmpty() ? base.cwd() : request.cwd();
        long cap = Math.max(1, request.truncateOutputAt()); // as for the main process
        ProcessSpec spec = new ProcessSpec(request.argv(), !request.shell(), env, cwd, uid, gid,
                request.timeoutSeconds() > 0 ? Duration.ofSeconds(request.timeoutSeconds()) : null, cap);
        try {
            int spid = live.spawn(spec, request.stdin(), request.closeStdin());
            spawned.put(spid, request); // before the client can name it: it learns the spid from this call
            return spid;
        } catch (IllegalStateException e) {
            if (ended) throw finished();
            throw new RequestRejected(Reason.TOO_MANY, e.getMessage(), 1);
        } catch (IllegalArgumentException e) {
            throw new RequestRejected(Reason.INVALID, e.getMessage());
        } catch (IOException e) {
            throw new RequestRejected(Reason.CONFLICT, "the instance is not accepting processes: " + e.getMessage());
        }
    }

    void writeStdin(int spid, byte[] data, boolean close, Duration wait) throws RequestRejected {
        LiveSandbox live = awaitSandbox(wait);
        known(spid);
        if (exited.containsKey(spid)) throw new RequestRejected(Reason.CONFLICT, "subprocess " + spid + " has exited");
        if (spid == LiveSandbox.MAIN && mainStdinClosed)
            throw new RequestRejected(Reason.CONFLICT, "the main process's stdin is closed (spawn the instance with"
                    + " \"stdin\": {\"close\": false} to write to it later)");
        try {
            live.writeStdin(spid, data, close);
            if (close && spid == LiveSandbox.MAIN) mainStdinClosed = true;
        } catch (IllegalStateException e) {
            throw new RequestRejected(Reason.CONFLICT, "stdin of subprocess " + spid + " is closed: " + e.getMessage());
        } catch (NoSuchElementException e) {
            throw new RequestRejected(Reason.NOT_FOUND, "no subprocess " + spid + " in this instance");
        } catch (IOException e) {
            throw new RequestRejected(Reason.CONFLICT, "the instance is not accepting input: " + e.getMessage());
        }
    }

    void signal(int spid, int signo, Duration wait) throws RequestRejected {
        LiveSandbox live = awaitSandbox(wait);
        known(spid);
        if (exited.containsKey(spid)) throw new RequestRejected(Reason.CONFLICT, "subprocess " + spid + " has exited");
        try {
            live.signal(spid, signo);
        } catch (NoSuchElementException e) {
            throw new RequestRejected(Reason.NOT_FOUND, "no subprocess " + spid + " in this instance");
        } catch (IOException e) {
            throw new RequestRejected(Reason.CONFLICT, "the instance is not accepting signals: " + e.getMessage());
        }
    }

    private void known(int spid) throws RequestRejected {
        if (!knows(spid)) throw new RequestRejected(Reason.NOT_FOUND, "no subprocess " + spid + " in this instance");
    }
}
