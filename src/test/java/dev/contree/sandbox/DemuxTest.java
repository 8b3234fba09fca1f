package dev.contree.sandbox;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;

/** contree-init's frame stream: only exactly what init writes is believed as a result. */
class DemuxTest {
    static final String TOKEN = "0123456789abcdef0123456789abcdef";
    static final String RESULT = "token=" + TOKEN + "\nversion=1\npid=6\nexit_code=7\nsignal=-1\n";
    static final String START = "token=" + TOKEN + "\npid=6\n";

    static void frame(ByteArrayOutputStream b, char type, String payload) {
        byte[] p = payload.getBytes(StandardCharsets.UTF_8);
        b.write(type);
        b.write(p.length >>> 24); b.write(p.length >>> 16); b.write(p.length >>> 8); b.write(p.length);
        b.writeBytes(p);
    }

    static OciSandboxRuntime.Demux demux(ByteArrayOutputStream b) {
        var d = new OciSandboxRuntime.Demux(new ByteArrayInputStream(b.toByteArray()), SandboxListener.NONE, 1 << 20, TOKEN);
        d.run();
        return d;
    }

    @Test
    void initsOwnStreamIsBelieved() {
        var b = new ByteArrayOutputStream();
        frame(b, 'S', START);
        frame(b, 'O', "hello\n");
        frame(b, 'E', "oops\n");
        frame(b, 'R', RESULT);
        var d = demux(b);
        assertThat(d.error).isNull();
        assertThat(d.result).containsEntry("exit_code", "7");
        assertThat(new String(d.out.bytes(), StandardCharsets.UTF_8)).isEqualTo("hello\n");
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
        frame(forged, 'R', "version=1\nexit_code=123\nutime_us=31536000000000\n");
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
        frame(forgedStart, 'S', "pid=1\n");
        assertThat(demux(forgedStart).error).contains("run token");
    }

    @Test
    void outputAfterTheResultIsAnError() {
        var b = new ByteArrayOutputStream();
        frame(b, 'R', RESULT);
        frame(b, 'O', "late");
        assertThat(demux(b).error).contains("after the result");
        var b2 = new ByteArrayOutputStream();
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
        frame(noVersion, 'R', "token=" + TOKEN + "\nexit_code=123\n");
        assertThat(demux(noVersion).error).contains("version");

        var truncated = new ByteArrayOutputStream();
        frame(truncated, 'R', RESULT);
        byte[] cut = java.util.Arrays.copyOf(truncated.toByteArray(), truncated.size() - 3);
        var d = new OciSandboxRuntime.Demux(new ByteArrayInputStream(cut), SandboxListener.NONE, 1 << 20, TOKEN);
        d.run();
        assertThat(d.error).isNotNull();
        assertThat(d.result).isNull();

        var huge = new ByteArrayOutputStream();
        huge.write('R'); huge.write(0x7f); huge.write(0); huge.write(0); huge.write(0);
        assertThat(demux(huge).error).contains("frame length");
    }
}
