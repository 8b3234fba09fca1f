package dev.contree.network;

import dev.contree.linux.SpawnedProcess;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Short host commands (nft, mostly) with their output; never on a per-packet path. */
final class Exec {
    private Exec() {}

    record Result(int exitCode, String output) {
        boolean ok() { return exitCode == 0; }
    }

    private static final Path WORKING_DIR = Path.of("/");

    /** Runs {@code argv} with {@code input} on its stdin; -1 when it did not end within {@code timeout} (then killed). */
    static Result run(List<String> argv, String input, Duration timeout) throws IOException {
        Process p = SpawnedProcess.start(argv, WORKING_DIR, SpawnedProcess.Stderr.TO_STDOUT);
        try (OutputStream in = p.getOutputStream()) {
            if (input != null) in.write(input.getBytes(StandardCharsets.UTF_8));
        } catch (IOException e) {
            // it exited without reading: its output says why
        }
        byte[] out;
        try (InputStream o = p.getInputStream()) {
            out = o.readNBytes(1 << 20);
            o.transferTo(java.io.OutputStream.nullOutputStream()); // never leave it blocked on a full pipe
        }
        try {
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                return new Result(-1, new String(out, StandardCharsets.UTF_8));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
            throw new IOException("interrupted while running " + argv.getFirst(), e);
        }
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8).strip());
    }

    /** Like {@link #run} but a failure is an IOException carrying the command's output. */
    static String check(List<String> argv, String input, Duration timeout) throws IOException {
        Result r = run(argv, input, timeout);
        if (!r.ok()) throw new IOException(String.join(" ", argv) + " failed (" + r.exitCode() + "): " + r.output());
        return r.output();
    }
}
