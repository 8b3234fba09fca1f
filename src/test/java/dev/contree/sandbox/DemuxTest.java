package dev.contree.sandbox;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/** contree-init's frame stream (protocol v2): only exactly what init writes is believed as a result. */
class DemuxTest {
    static final String TOKEN = "0123456789abcdef0123456789abcdef";
    static final String RESULT = "token=" + TOKEN + "\nversion=2\nspid=1\npid=6\nexit_code=7\nsignal=-1\n";
    static final String START = "token=" + TOKEN + "\nspid=1\npid=6\n";

    static void frame(ByteArrayOutputStream b, char type, String payload) {
        frame(b, type, payload.getBytes(StandardCharsets.UTF_8));
    }

    static void frame(ByteArrayOutputStream b, char type, byte[] p) {
        b.write(type);
        b.write(p.length >>> 24); b.write(p.length >>> 16); b.write(p.length >>> 8); b.write(p.length);
        b.writeBytes(p);
    }

    /** An 'O'/'E'/'A' frame: spid, then the bytes. */
    static void spidFrame(ByteArrayOutputStream b, char type, int spid, byte[] data) {
        byte[] p = new byte[4 + data.length];
        p[0] = (byte) (spid >>> 24); p[1] = (byte) (spid >>> 16); p[2] = (byte) (spid >>> 8); p[3] = (byte) spid;
        System.arraycopy(data, 0, p, 4, data.length);
        frame(b, type, p);
    }

    static void out(ByteArrayOutputStream b, char type, int spid, String s) {
        spidFrame(b, type, spid, s.getBytes(StandardCharsets.UTF_8));
    }

    static InitChannel channel(byte[] stream, SandboxListener l) {
        return new InitChannel(OutputStream.nullOutputStream(), new ByteArrayInputStream(stream), l, 1 << 20, 1 << 20,
                TOKEN, m -> ResourceUsage.UNKNOWN, "test");
    }

    static InitChannel demux(ByteArrayOutputStream b) {
        var d = channel(b.toByteArray(), SandboxListener.NONE);
        d.demux();
        return d;
    }

    @Test
    void initsOwnStreamIsBelieved() {
        var b = new ByteArrayOutputStream();
        frame(b, 'S', START);
        out(b, 'O', 1, "hello\n");
        out(b, 'E', 1, "oops\n");
        frame(b, 'R', RESULT);
        var d = demux(b);
        assertThat(d.error).isNull();
        assertThat(d.result).containsEntry("exit_code", "7");
        assertThat(d.pid).isEqualTo(6);
        assertThat(new String(d.out.bytes(), StandardCharsets.UTF_8)).isEqualTo("hello\n");
        assertThat(new String(d.err.bytes(), StandardCharsets.UTF_8)).isEqualTo("oops\n");
    }

    @Test
    void aSecondResultIsAnError() {
        var b = new ByteArrayOutputStream();
        frame(b, 'S', START);
        frame(b, 'R', RESULT.replace("exit_code=7", "exit_code=123"));
        frame(b, 'R', RESULT);
        assertThat(demux(b).error).contains("after the result");
    }

    /** What a command that can write to init's stdout (gVisor's /proc/1/fd/1) could send: no token, no result. */
    @Test
    void framesWithoutTheRunTokenAreNotInits() {
        var forged = new ByteArrayOutputStream();
        frame(forged, 'R', "version=2\nspid=1\nexit_code=123\nutime_us=31536000000000\n");
        var d = demux(forged);
        assertThat(d.error).contains("run token");
        assertThat(d.result).isNull();

        var wrong = new ByteArrayOutputStream();
        frame(wrong, 'R', RESULT.replace(TOKEN, "f".repeat(32)));
        assertThat(demux(wrong).error).contains("run token");

        // A forged header that swallows init's own result into its payload: the payload does not start with the token.
        var swallow = new ByteArrayOutputStream();
        var real = new ByteArrayOutputStream();
        frame(real, 'R', RESULT);
        String prefix = "exit_code=123\n";
        swallow.write('R');
        int len = prefix.length() + real.size();
        swallow.write(len >>> 24); swallow.write(len >>> 16); swallow.write(len >>> 8); swallow.write(len);
        swallow.writeBytes(prefix.getBytes(StandardCharsets.UTF_8));
        swallow.writeBytes(real.toByteArray());
        var ds = demux(swallow);
        assertThat(ds.error).contains("run token");
        assertThat(ds.result).isNull();

        var forgedStart = new ByteArrayOutputStream();
        frame(forgedStart, 'S', "spid=1\npid=1\n");
        assertThat(demux(forgedStart).error).contains("run token");
    }

    @Test
    void outputAfterTheResultIsAnError() {
        var b = new ByteArrayOutputStream();
        frame(b, 'S', START);
        frame(b, 'R', RESULT);
        out(b, 'O', 1, "late");
        assertThat(demux(b).error).contains("after the result");
        var b2 = new ByteArrayOutputStream();
        frame(b2, 'S', START);
        frame(b2, 'R', RESULT);
        b2.write('x'); // a single stray byte
        assertThat(demux(b2).error).isNotNull();
    }

    @Test
    void oddFramesAreErrors() {
        var unknown = new ByteArrayOutputStream();
        frame(unknown, 'X', "whatever");
        frame(unknown, 'R', RESULT);
        assertThat(demux(unknown).error).contains("unknown frame type");

        var twoStarts = new ByteArrayOutputStream();
        frame(twoStarts, 'S', START);
        frame(twoStarts, 'S', START.replace("pid=6", "pid=7"));
        assertThat(demux(twoStarts).error).contains("start frame");

        var noVersion = new ByteArrayOutputStream();
        frame(noVersion, 'S', START);
        frame(noVersion, 'R', "token=" + TOKEN + "\nspid=1\nexit_code=123\n");
        assertThat(demux(noVersion).error).contains("version");

        var oldVersion = new ByteArrayOutputStream();
        frame(oldVersion, 'S', START);
        frame(oldVersion, 'R', RESULT.replace("version=2", "version=1"));
        assertThat(demux(oldVersion).error).contains("version");

        var truncated = new ByteArrayOutputStream();
        frame(truncated, 'S', START);
        frame(truncated, 'R', RESULT);
        byte[] cut = java.util.Arrays.copyOf(truncated.toByteArray(), truncated.size() - 3);
        var d = channel(cut, SandboxListener.NONE);
        d.demux();
        assertThat(d.error).isNotNull();
        assertThat(d.result).isNull();

        var huge = new ByteArrayOutputStream();
        huge.write('R'); huge.write(0x7f); huge.write(0); huge.write(0); huge.write(0);
        assertThat(demux(huge).error).contains("frame length");
    }

    /** Frames for spids the server never spawned are not init's (forged 'O'/'A' frames carry no token). */
    @Test
    void framesForSpidsNeverSpawnedAreErrors() {
        var output = new ByteArrayOutputStream();
        frame(output, 'S', START);
        out(output, 'O', 2, "FORGED-STDOUT\n");
        assertThat(demux(output).error).contains("process 2");

        // hostile.c's forged 'O' frame has no spid: its first bytes read as one
        var v1Style = new ByteArrayOutputStream();
        frame(v1Style, 'S', START);
        frame(v1Style, 'O', "FORGED-STDOUT\n");
        var dv = demux(v1Style);
        assertThat(dv.tampered).isTrue();
        assertThat(dv.out.bytes()).isEmpty();

        var credit = new ByteArrayOutputStream();
        frame(credit, 'S', START);
        spidFrame(credit, 'A', 9, new byte[] {0, 0, 1, 0});
        assertThat(demux(credit).error).contains("never started");

        var start = new ByteArrayOutputStream();
        frame(start, 'S', START);
        frame(start, 'S', "token=" + TOKEN + "\nspid=2\npid=9\n");
        assertThat(demux(start).error).contains("start frame");

        var result = new ByteArrayOutputStream();
        frame(result, 'S', START);
        frame(result, 'R', RESULT.replace("spid=1", "spid=3"));
        assertThat(demux(result).error).contains("process 3");

        var noStart = new ByteArrayOutputStream();
        frame(noStart, 'R', RESULT);
        assertThat(demux(noStart).error).contains("before the start");
    }

    /** A subprocess's frames, in the order init writes them, reach the listener attributed to its spid. */
    @Test
    void subprocessFramesAreAttributed() throws Exception {
        var piped = new java.io.PipedOutputStream();
        var in = new java.io.PipedInputStream(piped, 1 << 20);
        List<String> seen = new ArrayList<>();
        List<ProcessExit> exits = new ArrayList<>();
        var live = new java.util.concurrent.CompletableFuture<LiveSandbox>();
        SandboxListener l = new SandboxListener() {
            @Override public void onLive(LiveSandbox s) { live.complete(s); }
            @Override public void onSubprocessStart(int spid, int pid, ProcessSpec spec) { seen.add("start " + spid + " " + pid); }
            @Override public void onSubprocessOutput(int spid, boolean stderr, byte[] b, int off, int len) {
                seen.add((stderr ? "err " : "out ") + spid + " " + new String(b, off, len, StandardCharsets.UTF_8));
            }
            @Override public void onSubprocessExit(ProcessExit e) { exits.add(e); }
        };
        var d = new InitChannel(OutputStream.nullOutputStream(), in, l, 1 << 20, 4, TOKEN, m -> ResourceUsage.UNKNOWN, "t");
        Thread t = Thread.ofVirtual().start(d::demux);
        var b = new ByteArrayOutputStream();
        frame(b, 'S', START);
        piped.write(b.toByteArray());
        LiveSandbox s = live.get(5, java.util.concurrent.TimeUnit.SECONDS);
        assertThat(s.spawn(ProcessSpec.shell("x", Map.of()), null, true)).isEqualTo(2);
        assertThat(s.spawn(ProcessSpec.shell("y", Map.of()), null, true)).isEqualTo(3);
        b.reset();
        frame(b, 'S', "token=" + TOKEN + "\nspid=2\npid=10\n");
        out(b, 'O', 2, "abcdef"); // cap 4
        out(b, 'E', 2, "e");
        frame(b, 'R', "token=" + TOKEN + "\nversion=2\nspid=3\npid=-1\nexit_code=-1\nsignal=-1\nerror=spid in use\n");
        frame(b, 'R', "token=" + TOKEN + "\nversion=2\nspid=2\npid=10\nexit_code=0\nsignal=-1\nutime_us=5\n");
        frame(b, 'R', RESULT);
        piped.write(b.toByteArray());
        piped.close();
        t.join(5000);
        assertThat(d.error).isNull();
        assertThat(seen).containsExactly("start 2 10", "out 2 abcd", "err 2 e");
        assertThat(exits).extracting(ProcessExit::spid).containsExactly(3, 2);
        assertThat(exits.get(0).error()).isEqualTo("spid in use");
        assertThat(exits.get(0).pid()).isEqualTo(-1);
        ProcessExit e2 = exits.get(1);
        assertThat(e2.exitCode()).isZero();
        assertThat(e2.error()).isNull();
        assertThat(e2.stdoutText()).isEqualTo("abcd");
        assertThat(e2.stdoutTruncated()).isTrue();
        assertThat(e2.stdoutTotal()).isEqualTo(6);
        d.finish(false);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> s.spawn(ProcessSpec.shell("z", Map.of()), null, true))
                .isInstanceOf(IllegalStateException.class);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> s.writeStdin(9, new byte[1], false))
                .isInstanceOf(java.util.NoSuchElementException.class);
    }
}
