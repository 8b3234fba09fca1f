package dev.contree.inspect;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Hostile inspect requests over real HTTP: caps answer their documented 4xx, whoami stays fast while they run,
 * and an abandoned request stops costing CPU. Layers are real btrfs subvolumes; the big files are sparse.
 */
class InspectLimitsTest {
    static final long GiB = 1L << 30;
    @TempDir static Path dir;
    static TestServer s;
    static String a1, a2, a3, a4, b1;

    @BeforeAll
    static void start() throws Exception {
        // Smaller limits so the hostile trees stay quick to build; the mechanism is the same at the defaults.
        System.setProperty("contree.inspect.dir.max.entries", "20000");
        System.setProperty("contree.inspect.list.max.entries", "1000");
        System.setProperty("contree.inspect.diff.max.changes", "1000");
        System.setProperty("contree.inspect.threads", "4");
        System.setProperty("contree.inspect.per.account", "2");
        try {
            s = new TestServer(dir);
        } finally {
            for (String p : List.of("dir.max.entries", "list.max.entries", "diff.max.changes", "threads", "per.account"))
                System.clearProperty("contree.inspect." + p);
        }
        a1 = s.importRootfs(s.tokenA, InspectApiTest.awkwardRootfs(), "a1");
        a2 = s.importRootfs(s.tokenA, rootfsWith("second"), "a2");
        b1 = s.importRootfs(s.tokenB, rootfsWith("third"), "b1");
        a3 = s.importRootfs(s.tokenA, rootfsWith("fourth"), "a3");
        a4 = s.importRootfs(s.tokenA, rootfsWith("fifth!"), "a4");
        FileTime t = FileTime.fromMillis(1_700_000_000_000L);
        HostLayers.edit(s, s.tokenA, a1, diff -> {
            Path big = Files.createDirectories(diff.resolve("big"));
            sparse(big.resolve("sparse16g"), 16 * GiB, 'a', t);
            sparse(big.resolve("sparse4g"), 4 * GiB, 'a', t);
            text(big.resolve("text"), 150 << 20);
            Path many = Files.createDirectories(diff.resolve("many"));
            for (int i = 0; i < 30_000; i++) Files.createFile(many.resolve("f" + i));
            Path mid = Files.createDirectories(diff.resolve("aaa-mid"));
            for (int i = 0; i < 1500; i++) Files.createFile(mid.resolve(String.format("m%05d", i)));
        });
        HostLayers.edit(s, s.tokenA, a2, diff -> sparse(Files.createDirectories(diff.resolve("big")).resolve("sparse16g"), 16 * GiB, 'b', t));
        HostLayers.edit(s, s.tokenA, a3, diff -> sparse(Files.createDirectories(diff.resolve("big")).resolve("sparse16g"), 16 * GiB, 'a', t));
        HostLayers.edit(s, s.tokenA, a4, diff -> sparse(Files.createDirectories(diff.resolve("big")).resolve("sparse16g"), 16 * GiB, 'a', t));
        HostLayers.edit(s, s.tokenB, b1, diff -> text(diff.resolve("text"), 150 << 20));
    }

    @AfterAll
    static void stop() {
        s.close();
    }

    static byte[] rootfsWith(String marker) throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (var tar = new org.apache.commons.compress.archivers.tar.TarArchiveOutputStream(buf)) {
            InspectApiTest.dir(tar, "etc/", 0755, 0, 0);
            InspectApiTest.file(tar, "etc/marker", marker, 0644, 0, 0);
        }
        return buf.toByteArray();
    }

    /** A sparse file: a 4 KiB block of {@code fill} at 0 and at size/2, holes elsewhere. */
    static void sparse(Path p, long size, char fill, FileTime mtime) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(size);
            byte[] block = String.valueOf(fill).repeat(4096).getBytes(StandardCharsets.US_ASCII);
            f.seek(0);
            f.write(block);
            f.seek(size / 2);
            f.write(block);
        }
        Files.setLastModifiedTime(p, mtime);
    }

    static void text(Path p, long bytes) throws IOException {
        byte[] line = "the quick brown fox jumps over the lazy dog 0123456789\n".getBytes(StandardCharsets.US_ASCII);
        byte[] chunk = new byte[line.length * 20_000];
        for (int i = 0; i < 20_000; i++) System.arraycopy(line, 0, chunk, i * line.length, line.length);
        try (OutputStream out = Files.newOutputStream(p)) {
            for (long n = 0; n < bytes; n += chunk.length) out.write(chunk);
        }
    }

    static void assertError(TestServer.Reply r, int status, String... words) {
        assertThat(r.status()).as(r.text()).isEqualTo(status);
        JsonNode j = r.json();
        assertThat(j.get("status").asInt()).isEqualTo(status);
        for (String w : words) assertThat(j.get("error").asText()).contains(w);
    }

    @Test
    void capsAnswerTheirDocumented4xx() {
        long t0 = System.nanoTime();
        // a directory past the per-directory limit: 413 naming it, without reading the rest
        assertError(s.get(s.tokenA, "/v1/inspect/" + a1 + "/list?path=/many"), 413, "more than 20000 entries");
        // a directory past one answer: 413 naming limit/offset; pages work
        assertError(s.get(s.tokenA, "/v1/inspect/" + a1 + "/list?path=/aaa-mid"), 413, "1000", "limit", "offset");
        JsonNode p1 = s.get(s.tokenA, "/v1/inspect/" + a1 + "/list?path=/aaa-mid&limit=1000").json();
        assertThat(p1.get("files")).hasSize(1000);
        assertThat(p1.get("total").asInt()).isEqualTo(1500);
        assertThat(p1.get("next_offset").asInt()).isEqualTo(1000);
        JsonNode p2 = s.get(s.tokenA, "/v1/inspect/" + a1 + "/list?path=/aaa-mid&limit=1000&offset=1000").json();
        assertThat(p2.get("files")).hasSize(500);
        assertThat(p2.get("files").get(0).get("path").asText()).isEqualTo("m01000");
        assertThat(p2.get("next_offset").isNull()).isTrue();
        assertError(s.get(s.tokenA, "/v1/inspect/" + a1 + "/list?path=/aaa-mid&limit=1001"), 400, "limit must be between 1 and 1000");
        // an archive past the byte cap: 413 before the first byte, gzip or not (the 16 GiB are never read)
        assertError(s.send(s.tokenA, "GET", "/v1/inspect/" + a1 + "/archive?path=/big",
                java.net.http.HttpRequest.BodyPublishers.noBody(), "Accept-Encoding", "gzip"), 413, "bytes of file data in an archive");
        assertError(s.get(s.tokenA, "/v1/inspect/" + a1 + "/archive?path=/"), 413, String.valueOf(InspectLimits.DEFAULTS.archiveMaxBytes()));
        // a download past its cap
        assertError(s.get(s.tokenA, "/v1/inspect/" + a1 + "/download?path=/big/sparse16g"), 413, "download");
        // grep: a max_total above the server's bound is clamped to it, never raised
        assertThat(s.get(s.tokenA, "/v1/inspect/" + a1 + "/grep?pattern=x&max_total=2000000000").status()).isEqualTo(200);
        // a diff with more changed paths than the cap (a1 adds /aaa-mid, 1500 files, walked first)
        assertError(s.get(s.tokenA, "/v1/inspect/" + a2 + "/diff/" + a1), 413, "1000 changed paths");
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(20));
    }

    @Test
    void diffOfSixteenGiBSparseFilesReadsOnlyTheirData() {
        // a2/a3/a4 each hold /big/sparse16g with the same size and mtime on different inodes: content decides,
        // and only the 8 KiB of data blocks are read (holes are skipped with SEEK_DATA/SEEK_HOLE).
        long t0 = System.nanoTime();
        JsonNode differ = s.get(s.tokenA, "/v1/inspect/" + a2 + "/diff/" + a3).json();
        long ms1 = (System.nanoTime() - t0) / 1_000_000;
        assertThat(differ.get("modified").findValuesAsText("path")).contains("/big/sparse16g");
        t0 = System.nanoTime();
        JsonNode same = s.get(s.tokenA, "/v1/inspect/" + a3 + "/diff/" + a4).json();
        long ms2 = (System.nanoTime() - t0) / 1_000_000;
        assertThat(same.get("modified").findValuesAsText("path")).doesNotContain("/big/sparse16g").contains("/etc/marker");
        System.out.println("diff of 16 GiB sparse files: " + ms1 + " ms (differ), " + ms2 + " ms (equal)");
        assertThat(ms1 + ms2).isLessThan(2000);
    }

    @Test
    void whoamiStaysFastWhileHostileInspectRequestsRunAndAThirdPerAccountIsRefused() throws Exception {
        ExecutorService clients = Executors.newFixedThreadPool(6);
        List<Future<Integer>> load = new ArrayList<>();
        try {
            // two gzip archives of a 4 GiB sparse file (deflating zeros: CPU-bound) for account A ...
            for (int i = 0; i < 2; i++)
                load.add(clients.submit(() -> s.send(s.tokenA, "GET", "/v1/inspect/" + a1 + "/archive?path=/big/sparse4g",
                        java.net.http.HttpRequest.BodyPublishers.noBody(), "Accept-Encoding", "gzip").status()));
            // ... and two greps over 150 MB of text for account B
            for (int i = 0; i < 2; i++)
                load.add(clients.submit(() -> s.get(s.tokenB, "/v1/inspect/" + b1 + "/grep?pattern=f.x%20j&path=/text&max_total=100000").status()));
            Thread.sleep(700);
            // account A's third concurrent inspect request is refused before doing anything
            TestServer.Reply third = s.get(s.tokenA, "/v1/inspect/" + a1 + "/list?path=/etc");
            assertError(third, 429, "too many inspect requests");
            assertThat(third.header("Retry-After")).isEqualTo("1");
            long worst = 0;
            for (int i = 0; i < 10; i++) {
                long t0 = System.nanoTime();
                assertThat(s.get(s.tokenA, "/v1/whoami").status()).isEqualTo(200);
                worst = Math.max(worst, (System.nanoTime() - t0) / 1_000_000);
                Thread.sleep(100);
            }
            System.out.println("whoami worst latency under hostile inspect load: " + worst + " ms");
            assertThat(worst).isLessThan(2000);
            for (Future<Integer> f : load) assertThat(f.get(120, TimeUnit.SECONDS)).isEqualTo(200);
        } finally {
            clients.shutdownNow();
        }
    }

    @Test
    void abandonedRequestsStopConsumingCpu() throws Exception {
        // The full gzip archive of 4 GiB of zeros costs seconds of CPU; a client that leaves after 64 KiB must not.
        long full = cpuOfInspectThreads();
        abandon("/v1/inspect/" + a1 + "/archive?path=/big/sparse4g", true);
        Thread.sleep(1500);
        long settled = cpuOfInspectThreads();
        Thread.sleep(1000);
        long later = cpuOfInspectThreads();
        System.out.println("abandoned gzip archive: " + (settled - full) / 1_000_000 + " ms CPU until settled, then "
                + (later - settled) / 1_000_000 + " ms in 1 s");
        assertThat((later - settled) / 1_000_000).isLessThan(50);
        // grep writes nothing until done: the connection failing must cancel it. Reference: the same grep run
        // to the end (a pattern no line matches, so all 150 MB are scanned).
        String grep = "/v1/inspect/" + b1 + "/grep?pattern=(quick%7Clazy)%20%5Cd%7B20%7D&path=/text";
        long r0 = cpuOfInspectThreads();
        JsonNode done = s.get(s.tokenB, grep).json();
        long fullGrep = cpuOfInspectThreads() - r0;
        assertThat(done.get("truncated").asBoolean()).isFalse();
        long g0 = cpuOfInspectThreads();
        abandon(grep, false);
        Thread.sleep(1500);
        long g1 = cpuOfInspectThreads();
        Thread.sleep(1000);
        long g2 = cpuOfInspectThreads();
        System.out.println("grep over 150 MB: " + fullGrep / 1_000_000 + " ms CPU in full; abandoned after 300 ms: "
                + (g1 - g0) / 1_000_000 + " ms until settled, then " + (g2 - g1) / 1_000_000 + " ms in 1 s");
        assertThat((g2 - g1) / 1_000_000).isLessThan(50);
        assertThat(g1 - g0).isLessThan(fullGrep / 2);
    }

    /** Sends a GET on a raw socket, reads a little of the answer (or none), and closes the connection. */
    private static void abandon(String path, boolean gzip) throws IOException {
        String token = path.contains(b1) ? s.tokenB : s.tokenA;
        int port = java.net.URI.create(s.url("/")).getPort();
        try (Socket sock = new Socket("127.0.0.1", port)) {
            OutputStream out = sock.getOutputStream();
            out.write(("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token + "\r\n"
                    + (gzip ? "Accept-Encoding: gzip\r\n" : "") + "\r\n").getBytes(StandardCharsets.US_ASCII));
            out.flush();
            if (gzip) {
                InputStream in = sock.getInputStream();
                in.readNBytes(64 * 1024);
            } else {
                try {
                    Thread.sleep(300);
                } catch (InterruptedException e) {
                    throw new IOException(e);
                }
            }
        }
    }

    /** CPU time of the server's inspect threads so far (they are in this JVM). */
    static long cpuOfInspectThreads() {
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        long sum = 0;
        for (var info : mx.getThreadInfo(mx.getAllThreadIds())) {
            if (info == null || !info.getThreadName().startsWith("inspect-")) continue;
            long t = mx.getThreadCpuTime(info.getThreadId());
            if (t > 0) sum += t;
        }
        return sum;
    }
}
