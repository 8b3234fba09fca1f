package dev.contree.sandbox;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;
import dev.contree.cancel.CancelToken;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server's end of contree-init's protocol (version 2, see contree-init.c): frames to init's fd 0 (stdin
 * bytes with credit flow, stdin close, spawn, signal) and the demultiplexing of init's fd 1 (output of every
 * spid, credits, starts, results). One run, one channel; it is the run's {@link LiveSandbox}.
 *
 * <p>The stream from init is control data only if it is exactly what init writes: per spid an 'S' at most once
 * and only for a spid the server spawned, output and credits only for such spids, one 'R' per spid, the main
 * process's 'R' last and then the end. Anything else (a frame for a spid never spawned, a second result, bytes
 * after the last one, an unknown type, an over-long frame, a control frame without the run token or without
 * version=2) sets {@link #error} and the run is an infrastructure failure: a result that was not init's is never
 * believed.
 */
final class InitChannel implements LiveSandbox {
    /**
     * contree-init's command line: its first argument (how init talks to the server), then the timeout, identity,
     * cwd and the command. The OCI and the vm runtime start init with the same options.
     */
    static List<String> commandLine(String first, SandboxSpec spec) {
        List<String> a = new ArrayList<>();
        a.add(first);
        long t = spec.timeout() == null ? 0 : spec.timeout().toMillis();
        if (t > 0) { a.add("-t"); a.add(Long.toString(t)); }
        a.add("-u"); a.add(Integer.toString(spec.uid()));
        a.add("-g"); a.add(Integer.toString(spec.gid()));
        a.add("-c"); a.add(spec.cwd());
        a.add("-m");
        if (spec.lookupPath()) a.add("-p");
        a.add("--");
        a.addAll(spec.argv());
        return a;
    }

    private static final Logger log = LoggerFactory.getLogger(InitChannel.class);
    /** Un-credited stdin bytes the server lets init hold per spid. */
    static final int WINDOW = 1 << 20;
    /** Stdin data per 'I' frame. */
    static final int CHUNK = 64 * 1024;
    static final int MAX_SPAWN_PAYLOAD = 1 << 20;
    /** The prefix of each subprocess stream a {@link ProcessExit} keeps (all of it goes to the listener). */
    static final int SUBPROCESS_KEPT = 64 * 1024;
    private static final int MAX_FRAME = 1 << 20;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final OutputStream toInit;
    private final DataInputStream in;
    final SandboxListener listener;
    /** The main process's output. */
    final Capture out, err;
    private final long defaultCap;
    private final String token;
    private final byte[] tokenLine;
    private final Function<Map<String, String>, ResourceUsage> usage;
    private final String name;

    // What the demux learnt; read by the run once the demux is done.
    volatile Map<String, String> result;
    volatile int pid = -1;
    volatile String error;
    volatile boolean tampered;

    /** Guards the process table and every Proc's mutable fields; {@link #changed} signals credits and ends. */
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private final Map<Integer, Proc> live = new HashMap<>(); // the main process and subprocesses without a result
    private final Proc main;
    private int nextSpid = 2;
    private int liveSubs;
    private boolean mainEnded; // its result arrived, or the run is over: nothing new may start
    private boolean finished;

    /** Serialises frames on init's fd 0; {@link #frameBuf} is only used under it. */
    private final ReentrantLock writeLock = new ReentrantLock();
    private final byte[] frameBuf = new byte[9 + CHUNK];
    private Thread feeder;
    private volatile Runnable onTampered = () -> {};
    private volatile Runnable onMainEnded = () -> {};

    private static final class Proc {
        final int spid;
        final ProcessSpec spec; // null for the main process
        final Capture out, err;
        /** Holds the order of stdin writes; a Semaphore, so a spawn can hand its remainder to another thread. */
        final Semaphore order = new Semaphore(1, true);
        int pid = -1;
        boolean started, ended;
        long uncredited;
        boolean closeRequested; // no write may follow
        boolean closeSent;

        Proc(int spid, ProcessSpec spec, Capture out, Capture err) {
            this.spid = spid;
            this.spec = spec;
            this.out = out;
            this.err = err;
        }
    }

    /**
     * @param mainCap    the main process's output cap
     * @param defaultCap a subprocess's output cap when its spec asks for none
     * @param usage      a result record's rusage, the runtime's way
     */
    InitChannel(OutputStream toInit, InputStream fromInit, SandboxListener listener, long mainCap, long defaultCap,
                String token, Function<Map<String, String>, ResourceUsage> usage, String name) {
        this.toInit = toInit;
        this.in = new DataInputStream(fromInit);
        this.listener = listener;
        this.out = new Capture(mainCap);
        this.err = new Capture(mainCap);
        this.defaultCap = defaultCap;
        this.token = token;
        this.tokenLine = ("token=" + token + "\n").getBytes(StandardCharsets.US_ASCII);
        this.usage = usage;
        this.name = name;
        this.main = new Proc(MAIN, null, out, err);
        live.put(MAIN, main);
    }

    // ---------------------------------------------------------------- the run's side

    /**
     * Starts feeding init: the token, then the main process's stdin (bytes, then the streamed file) through 'I'
     * frames, then its 'C' unless {@code keepOpen}. Never blocks the caller.
     */
    void start(byte[] stdin, Path stdinFile, boolean keepOpen) {
        main.closeRequested = !keepOpen; // the request's stdin is all there is: later writes are refused
        main.order.acquireUninterruptibly();
        feeder = Thread.ofVirtual().name("sandbox-stdin-" + name).start(() -> {
            try {
                writeLock.lock();
                try {
                    toInit.write((token + "\n").getBytes(StandardCharsets.US_ASCII)); // read before any command exists
                } finally {
                    writeLock.unlock();
                }
                send(main, stdin, 0, stdin.length);
                if (stdinFile != null) {
                    try (InputStream f = Files.newInputStream(stdinFile)) { // streamed: never all in the heap
                        byte[] buf = new byte[CHUNK];
                        int n;
                        while ((n = f.read(buf)) > 0) send(main, buf, 0, n);
                    }
                }
                if (!keepOpen) sendClose(main);
            } catch (IOException | IllegalStateException ignored) {
                // the command closed its stdin or exited, or the sandbox is gone: not an error
            } finally {
                main.order.release();
            }
        });
    }

    /**
     * What to do once the main process's result has arrived (the last frame init writes): the vm runtime stops the
     * VM then, as nothing else ends the channel's stream.
     */
    void whenMainEnded(Runnable r) { onMainEnded = r; }

    /** What to do once the stream proves tampered with (nothing more from it can be believed): end the run. */
    void whenTampered(Runnable r) { onTampered = r; }

    /** Reads init's frames until the end of its output (run on the run's output thread). */
    void demux() {
        byte[] buf = new byte[65536];
        try (in) {
            while (true) {
                int type = in.read();
                if (type < 0) break;
                if (result != null) throw new Tampered("output after the result frame");
                int len = in.readInt();
                if (len < 0 || len > MAX_FRAME) throw new Tampered("bad frame length " + len);
                switch (type) {
                    case 'O', 'E' -> output(type == 'E', len, buf);
                    case 'A' -> {
                        if (len != 8) throw new Tampered("bad credit frame");
                        credit(in.readInt(), in.readInt());
                    }
                    case 'S' -> {
                        if (len > 256) throw new Tampered("unexpected start frame");
                        started(parse(control(len)));
                    }
                    case 'R' -> {
                        if (len > 8192) throw new Tampered("result frame too long: " + len);
                        Map<String, String> m = parse(control(len));
                        if (!"2".equals(m.get("version"))) throw new Tampered("result frame without version=2");
                        ended(m);
                    }
                    default -> throw new Tampered("unknown frame type " + type);
                }
            }
        } catch (Tampered e) {
            tampered = true;
            error = e.getMessage();
            try { onTampered.run(); } catch (RuntimeException ex) { log.warn("tamper hook failed", ex); }
        } catch (IOException e) {
            error = e.toString();
        }
    }

    /**
     * The run is over (init's output ended or was given up on): every spawned spid without a result gets one now,
     * every waiting writer is released, nothing can be started any more.
     */
    void finish(boolean cancelled) {
        List<Proc> left = new ArrayList<>();
        lock.lock();
        try {
            finished = true;
            mainEnded = true;
            for (Proc p : live.values())
                if (p.spid != MAIN && !p.ended) {
                    p.ended = true;
                    left.add(p);
                }
            live.clear();
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        if (feeder != null) feeder.interrupt();
        left.sort((a, b) -> Integer.compare(a.spid, b.spid));
        for (Proc p : left) {
            String why = cancelled ? "the sandbox was cancelled"
                    : !p.started ? "the sandbox's main process ended before this subprocess could start"
                    : "the sandbox ended before contree-init reported this subprocess";
            boolean killed = cancelled && p.started;
            exit(new ProcessExit(p.spid, p.pid, -1, killed ? 9 : -1, false, false, ResourceUsage.UNKNOWN, p.out.bytes(),
                    p.out.truncated(), p.out.total, p.err.bytes(), p.err.truncated(), p.err.total, why));
        }
    }

    // ---------------------------------------------------------------- LiveSandbox

    @Override
    public int spawn(ProcessSpec spec, byte[] stdin, boolean closeStdin) throws IOException {
        byte[] payload = spawnPayload(spec);
        if (stdin == null) stdin = new byte[0];
        long cap = spec.outputCap() > 0 ? spec.outputCap() : defaultCap;
        Proc p;
        // Under the write lock, so spids reach init in the order they are given out; the state lock only briefly
        // inside it (a write may block, and the demux needs the state lock to let init go on).
        writeLock.lock();
        try {
            lock.lock();
            try {
                if (mainEnded) throw new IllegalStateException("the sandbox's main process has ended");
                if (liveSubs >= MAX_SUBPROCESSES)
                    throw new IllegalStateException(MAX_SUBPROCESSES + " subprocesses are alive in this sandbox");
                p = new Proc(nextSpid++, spec, new Capture(cap), new Capture(cap));
                p.closeRequested = closeStdin;
                p.order.acquireUninterruptibly(); // free: nobody knows this spid yet
                liveSubs++;
                live.put(p.spid, p); // before init can answer for it
            } finally {
                lock.unlock();
            }
            putInt(payload, 0, p.spid);
            try {
                writeFrame('X', payload, payload.length);
            } catch (IOException e) {
                lock.lock();
                try { // init never got it (its end of the pipe is gone): not spawned, no exit to report
                    live.remove(p.spid);
                    liveSubs--;
                    changed.signalAll();
                } finally {
                    lock.unlock();
                }
                throw e;
            }
        } finally {
            writeLock.unlock();
        }
        int first = Math.min(stdin.length, WINDOW); // a fresh window takes this much without waiting
        boolean handedOver = false;
        try {
            send(p, stdin, 0, first);
            if (first < stdin.length) {
                byte[] rest = stdin;
                Proc q = p;
                Thread.ofVirtual().name("sandbox-stdin-" + name + "-" + p.spid).start(() -> {
                    try {
                        send(q, rest, first, rest.length - first);
                        if (closeStdin) sendClose(q);
                    } catch (IOException | IllegalStateException ignored) {
                        // it exited or closed its stdin: what it did not read is gone, as with a pipe
                    } finally {
                        q.order.release();
                    }
                });
                handedOver = true;
            } else if (closeStdin) {
                sendClose(p);
            }
        } catch (IllegalStateException | IOException ignored) {
            // it already ended, or the sandbox is going: its exit says so
        } finally {
            if (!handedOver) p.order.release();
        }
        return p.spid;
    }

    @Override
    public void writeStdin(int spid, byte[] data, boolean close) throws IOException {
        Proc p = proc(spid);
        lock.lock();
        try {
            if (p.ended) throw new IllegalStateException("process " + spid + " has ended");
            if (p.closeRequested) throw new IllegalStateException("the stdin of process " + spid + " is closed");
            if (close) p.closeRequested = true;
        } finally {
            lock.unlock();
        }
        try {
            p.order.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while waiting to write stdin");
        }
        try {
            lock.lock();
            try {
                if (p.closeSent) throw new IllegalStateException("the stdin of process " + spid + " is closed");
            } finally {
                lock.unlock();
            }
            if (data != null) send(p, data, 0, data.length);
            if (close) sendClose(p);
        } finally {
            p.order.release();
        }
    }

    @Override
    public void signal(int spid, int signo) throws IOException {
        if (signo < 1 || signo > 64) throw new IllegalArgumentException("bad signal number " + signo);
        Proc p = proc(spid);
        lock.lock();
        try {
            if (p.ended || finished) return;
        } finally {
            lock.unlock();
        }
        byte[] f = new byte[8];
        putInt(f, 0, spid);
        putInt(f, 4, signo);
        writeLock.lock();
        try {
            writeFrame('K', f, 8);
        } finally {
            writeLock.unlock();
        }
    }

    /** The spid's process; a spid that was given out but has ended is a Proc marked ended. */
    private Proc proc(int spid) {
        lock.lock();
        try {
            Proc p = live.get(spid);
            if (p != null) return p;
            if (spid == MAIN || (spid >= 2 && spid < nextSpid)) {
                Proc gone = new Proc(spid, null, null, null);
                gone.ended = true;
                return gone;
            }
            throw new NoSuchElementException("no process " + spid + " in this sandbox");
        } finally {
            lock.unlock();
        }
    }

    // ---------------------------------------------------------------- writing to init

    /** Sends data as 'I' frames, waiting for credit so that init holds at most {@link #WINDOW} of it. */
    private void send(Proc p, byte[] data, int off, int len) throws IOException {
        while (len > 0) {
            int n;
            lock.lock();
            try {
                while (true) {
                    if (p.ended || finished) throw new IllegalStateException("process " + p.spid + " has ended");
                    long room = WINDOW - p.uncredited;
                    if (room > 0) {
                        n = (int) Math.min(Math.min(room, CHUNK), len);
                        p.uncredited += n;
                        break;
                    }
                    changed.await();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while waiting for stdin credit");
            } finally {
                lock.unlock();
            }
            writeLock.lock();
            try {
                putInt(frameBuf, 5, p.spid);
                System.arraycopy(data, off, frameBuf, 9, n);
                writeFrameInPlace('I', frameBuf, n + 4);
            } finally {
                writeLock.unlock();
            }
            off += n;
            len -= n;
        }
    }

    private void sendClose(Proc p) throws IOException {
        byte[] f = new byte[4];
        putInt(f, 0, p.spid);
        writeLock.lock();
        try {
            writeFrame('C', f, 4);
        } finally {
            writeLock.unlock();
        }
        lock.lock();
        try {
            p.closeSent = true;
        } finally {
            lock.unlock();
        }
    }

    /** One frame, one write (under {@link #writeLock}). */
    private void writeFrame(char type, byte[] payload, int len) throws IOException {
        byte[] f = new byte[5 + len];
        System.arraycopy(payload, 0, f, 5, len);
        f[0] = (byte) type;
        putInt(f, 1, len);
        toInit.write(f);
    }

    /** The same, with the payload already at offset 5 of {@code f}. */
    private void writeFrameInPlace(char type, byte[] f, int len) throws IOException {
        f[0] = (byte) type;
        putInt(f, 1, len);
        toInit.write(f, 0, 5 + len);
    }

    /** 'X' payload with room for the spid at 0: uid, gid, timeout_ms, lookup_path, cwd, argc, argv, env. */
    static byte[] spawnPayload(ProcessSpec s) {
        long timeoutMs = s.timeout() == null || s.timeout().isZero() ? 0 : Math.max(1, s.timeout().toMillis());
        List<String> parts = new ArrayList<>(List.of(Integer.toString(s.uid()), Integer.toString(s.gid()),
                Long.toString(timeoutMs), s.lookupPath() ? "1" : "0", s.cwd(), Integer.toString(s.argv().size())));
        parts.addAll(s.argv());
        s.env().forEach((k, v) -> parts.add(k + "=" + v));
        long size = 4;
        for (String x : parts) size += x.getBytes(StandardCharsets.UTF_8).length + 1L;
        if (size > MAX_SPAWN_PAYLOAD)
            throw new IllegalArgumentException("command, arguments and environment exceed 1 MiB (" + size + " bytes)");
        byte[] b = new byte[(int) size];
        int at = 4;
        for (String x : parts) {
            byte[] e = x.getBytes(StandardCharsets.UTF_8);
            System.arraycopy(e, 0, b, at, e.length);
            at += e.length + 1; // the NUL is already there
        }
        return b;
    }

    private static void putInt(byte[] b, int at, int v) {
        b[at] = (byte) (v >>> 24);
        b[at + 1] = (byte) (v >>> 16);
        b[at + 2] = (byte) (v >>> 8);
        b[at + 3] = (byte) v;
    }

    // ---------------------------------------------------------------- reading from init

    private void output(boolean stderr, int len, byte[] buf) throws IOException {
        if (len < 4) throw new Tampered("bad output frame");
        int spid = in.readInt();
        len -= 4;
        Proc p;
        lock.lock();
        try {
            p = live.get(spid);
        } finally {
            lock.unlock();
        }
        if (p == null || (spid != MAIN && !p.started)) throw new Tampered("output for process " + spid + ", which is not running");
        Capture c = stderr ? p.err : p.out;
        int keep = c.accept(len);
        int kept = 0;
        while (len > 0) {
            int n = in.read(buf, 0, Math.min(buf.length, len));
            if (n < 0) throw new EOFException();
            int k = Math.min(n, keep - kept);
            if (k > 0) {
                // A subprocess's output reaches its events through the listener; its ProcessExit keeps only a prefix:
                // 64 of them holding 2 × a 10 MiB cap each would let one instance pin over a GiB of the heap.
                int held = spid == MAIN ? k : (int) Math.max(0, Math.min(k, SUBPROCESS_KEPT - c.kept.size()));
                if (held > 0) c.keep(buf, 0, held);
                try {
                    if (spid != MAIN) listener.onSubprocessOutput(spid, stderr, buf, 0, k);
                    else if (stderr) listener.onStderr(buf, 0, k);
                    else listener.onStdout(buf, 0, k);
                } catch (RuntimeException e) {
                    log.warn("listener failed", e);
                }
                kept += k;
            }
            len -= n;
        }
    }

    private void credit(int spid, int count) throws Tampered {
        lock.lock();
        try {
            if (spid < 1 || spid >= nextSpid) throw new Tampered("credit for process " + spid + ", which was never started");
            Proc p = live.get(spid);
            if (p == null) return; // in flight when it ended
            // Credits without a token could be forged where init's fd 1 is reachable: never below zero; init caps
            // what it holds (4 MiB per spid) whatever the server sends.
            p.uncredited = Math.max(0, p.uncredited - (count & 0xffffffffL));
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    private void started(Map<String, String> m) throws Tampered {
        int spid = intOf(m, "spid", -1);
        int p = intOf(m, "pid", -1);
        if (spid == MAIN) {
            if (pid != -1 || main.started) throw new Tampered("unexpected start frame");
            lock.lock();
            try {
                main.started = true;
                main.pid = p;
            } finally {
                lock.unlock();
            }
            pid = p;
            try { listener.onStart(p); } catch (RuntimeException e) { log.warn("listener failed", e); }
            try { listener.onLive(this); } catch (RuntimeException e) { log.warn("listener failed", e); }
            return;
        }
        Proc sub;
        lock.lock();
        try {
            sub = live.get(spid);
            if (sub == null || sub.spid == MAIN || sub.started)
                throw new Tampered("unexpected start frame for process " + spid);
            sub.started = true;
            sub.pid = p;
        } finally {
            lock.unlock();
        }
        try { listener.onSubprocessStart(spid, p, sub.spec); } catch (RuntimeException e) { log.warn("listener failed", e); }
    }

    private void ended(Map<String, String> m) throws Tampered {
        int spid = intOf(m, "spid", -1);
        if (spid == MAIN) {
            if (!main.started) throw new Tampered("result before the start frame");
            lock.lock();
            try {
                mainEnded = true;
                main.ended = true;
                live.remove(MAIN);
                changed.signalAll();
            } finally {
                lock.unlock();
            }
            result = m;
            try { onMainEnded.run(); } catch (RuntimeException ex) { log.warn("main-ended hook failed", ex); }
            return;
        }
        Proc p;
        lock.lock();
        try {
            p = live.get(spid);
            if (p == null || p.spid == MAIN || p.ended) throw new Tampered("unexpected result for process " + spid);
            p.ended = true;
            live.remove(spid);
            liveSubs--;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        String err = m.get("error");
        exit(new ProcessExit(spid, intOf(m, "pid", p.pid), intOf(m, "exit_code", -1), intOf(m, "signal", -1),
                intOf(m, "timed_out", 0) == 1, intOf(m, "core_dump", 0) == 1,
                m.containsKey("utime_us") ? usage.apply(m) : ResourceUsage.UNKNOWN,
                p.out.bytes(), p.out.truncated(), p.out.total, p.err.bytes(), p.err.truncated(), p.err.total,
                err == null || err.isEmpty() ? null : err));
    }

    private void exit(ProcessExit e) {
        try { listener.onSubprocessExit(e); } catch (RuntimeException ex) { log.warn("listener failed", ex); }
    }

    /**
     * The run's result once the demux is done: the main process's as contree-init reported it, or, without a
     * report to believe, a cancellation, a tampered channel, or the runtime's own reason why there is none.
     *
     * @param noReport the runtime's failure reason when the run ended without a report and was neither cancelled
     *                 nor tampered with; given the channel's error (null if the stream just ended)
     */
    SandboxResult finalResult(CancelToken cancel, double elapsedHost, Function<String, String> noReport) {
        out.finish(listener, "stdout");
        err.finish(listener, "stderr");
        Map<String, String> r = error == null ? result : null; // a damaged stream's result is not init's
        boolean cancelled = cancel.isCancelled();
        String infraError = null;
        int exit = -1, signal = -1, pid = this.pid;
        boolean timedOut = false, core = false;
        String execError = null;
        ResourceUsage usage = ResourceUsage.UNKNOWN.withElapsed(elapsedHost);
        if (r != null) {
            exit = intOf(r, "exit_code", -1);
            signal = intOf(r, "signal", -1);
            timedOut = intOf(r, "timed_out", 0) == 1;
            core = intOf(r, "core_dump", 0) == 1;
            pid = intOf(r, "pid", pid);
            execError = r.get("error");
            usage = this.usage.apply(r);
        } else if (cancelled) {
            signal = 9;
        } else if (tampered) {
            // Not echoing the runtime's stderr or the console: the sandbox can write to them the same way.
            infraError = "the sandbox tampered with contree-init's report channel (" + error + "); its result is not believed";
        } else {
            infraError = noReport.apply(error);
        }
        if (cancelled) { exit = -1; signal = 9; }
        return new SandboxResult(exit, signal, timedOut, core, pid, usage, out.bytes(), out.truncated(), out.total,
                err.bytes(), err.truncated(), err.total, cancelled, execError, infraError);
    }

    /** The stream is not what init writes: something in the sandbox wrote to init's output. */
    static final class Tampered extends IOException {
        Tampered(String msg) { super(msg); }
    }

    /** A control frame's payload after its token line; a frame without this run's token is not init's. */
    private byte[] control(int len) throws IOException {
        byte[] b = new byte[len];
        in.readFully(b); // a truncated control frame is an error, not a shorter record
        if (len < tokenLine.length || !MessageDigest.isEqual(Arrays.copyOf(b, tokenLine.length), tokenLine))
            throw new Tampered("control frame without the run token");
        return Arrays.copyOfRange(b, tokenLine.length, len);
    }

    private static Map<String, String> parse(byte[] b) {
        Map<String, String> m = new HashMap<>();
        for (String line : new String(b, StandardCharsets.UTF_8).split("\n")) {
            int i = line.indexOf('=');
            if (i > 0) m.put(line.substring(0, i), line.substring(i + 1));
        }
        return m;
    }

    static int intOf(Map<String, String> r, String k, int d) {
        try { return Integer.parseInt(r.getOrDefault(k, "").trim()); } catch (NumberFormatException e) { return d; }
    }

    static long longOf(Map<String, String> r, String k, long d) {
        try { return Long.parseLong(r.getOrDefault(k, "").trim()); } catch (NumberFormatException e) { return d; }
    }

    /** 128 random bits, hex: proves a control frame came from this run's init (see contree-init.c). */
    static String newToken() {
        byte[] b = new byte[16];
        RANDOM.nextBytes(b);
        return HexFormat.of().formatHex(b);
    }
}
