package dev.contree.security;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestImages;
import dev.contree.TestServer;
import dev.contree.imports.LayoutRegistry;
import dev.contree.registry.Compression;
import dev.contree.registry.OciLayoutBuilder;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.zip.GZIPOutputStream;

import static dev.contree.security.SecurityTestSupport.q;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * One tenant against the others and against the server's limits, through the real API on a real runtime: the
 * client cannot raise a server limit, an import cannot unpack past its cap, an account cannot store past its bound,
 * and neither long runs nor stalled imports of one account keep another's run PENDING. Subclasses pick the runtime.
 */
abstract class TenantLimitsTestBase {
    static final long MAX_IMPORT = 16L << 20;
    static final long MAX_ACCOUNT = 32L << 20;
    static final AtomicInteger ACCOUNTS = new AtomicInteger();
    @AutoClose static TestServer s;
    static byte[] busybox;

    static void startServer(String runtime) throws Exception {
        // 4 slots, 3 per account; a 16 MiB import cap and a 32 MiB account bound.
        s = TestServer.inTempDir("tenants-" + runtime, c -> c.withRuntime(runtime, "ptrace").withLimits(1L << 30, 256L << 20, 4)
                .withStorageLimits(MAX_IMPORT, MAX_ACCOUNT));
        busybox = TestImages.busyboxRootfs();
    }

    static String newAccount() {
        return s.server.services().tokens().issue("tenant-" + ACCOUNTS.incrementAndGet(), "test", null).secret();
    }

    static String importRootfs(String token, byte[] tarball) {
        String file = s.upload(token, tarball).json().get("uuid").asText();
        return s.start(token, "/v1/images/import", "{\"registry\":{\"url\":\"rootfs+file://" + file + "\"}}");
    }

    static Set<String> layerIds() throws IOException {
        return new HashSet<>(s.server.services().layers().layerIds());
    }

    static byte[] gzipTar(int files, int fileSize) throws IOException {
        ByteArrayOutputStream bout = new ByteArrayOutputStream();
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(new GZIPOutputStream(bout))) {
            tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
            byte[] zeros = new byte[1 << 20];
            for (int i = 0; i < files; i++) {
                TarArchiveEntry e = new TarArchiveEntry("f" + i);
                e.setSize(fileSize);
                tar.putArchiveEntry(e);
                for (long left = fileSize; left > 0; left -= zeros.length) tar.write(zeros, 0, (int) Math.min(left, zeros.length));
                tar.closeArchiveEntry();
            }
        }
        return bout.toByteArray();
    }

    static String status(String token, String op) {
        return s.get(token, "/v1/operations/" + op).json().get("status").asText();
    }

    // ------------------------------------------------------------------------------------------------ client limits

    /** max_layer_bytes of 2^62 would lift the disk cap: 400, and so is one byte over the server's maximum. */
    @Test
    void aClientCannotRaiseTheLayerCap() throws Exception {
        String token = newAccount();
        JsonNode op = s.await(token, importRootfs(token, busybox), Duration.ofSeconds(60));
        String image = op.get("result").get("image").asText();
        long max = s.get(token, "/v1/whoami").json().get("limits").get("instance_max_layer_bytes").asLong();
        assertThat(max).isEqualTo(12L << 30);
        for (long bad : new long[] {1L << 62, max + 1}) {
            var r = s.json(token, "POST", "/v1/instances", "{\"image\":\"" + image + "\",\"command\":\"true\","
                    + "\"resources_limits\":{\"max_layer_bytes\":" + bad + "}}");
            assertThat(r.status()).as(r.text()).isEqualTo(400);
            assertThat(r.json().get("status").asInt()).isEqualTo(400);
            assertThat(r.json().get("error").asText()).contains("max_layer_bytes");
        }
        var ok = s.json(token, "POST", "/v1/instances", "{\"image\":\"" + image + "\",\"command\":\"true\",\"disposable\":true,"
                + "\"resources_limits\":{\"max_layer_bytes\":" + max + "}}");
        assertThat(ok.status()).as(ok.text()).isEqualTo(202);
        s.await(token, ok.json().get("uuid").asText(), Duration.ofSeconds(60));
    }

    // ------------------------------------------------------------------------------------------------ import cap

    /** 64 MiB of zeros gzip to ~64 KiB: the unpack stops at the 16 MiB cap, FAILED, nothing kept. */
    @Test
    void aGzipBombStopsAtTheImportCap() throws Exception {
        String token = newAccount();
        byte[] bomb = gzipTar(1, 64 << 20);
        assertThat(bomb.length).isLessThan(1 << 20);
        Set<String> before = layerIds();
        JsonNode op = s.await(token, importRootfs(token, bomb), Duration.ofSeconds(60));
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("FAILED");
        assertThat(op.get("error").asText()).contains("import limit").contains("--max-import-bytes");
        s.server.services().layers().awaitBackgroundWork();
        assertThat(layerIds()).isEqualTo(before);
    }

    /** 40,000 empty files are no data, but 512 bytes each of entry overhead: 20 MB > the 16 MiB cap. */
    @Test
    void manyEmptyFilesHitTheImportCap() throws Exception {
        String token = newAccount();
        JsonNode op = s.await(token, importRootfs(token, gzipTar(40_000, 0)), Duration.ofSeconds(120));
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("FAILED");
        assertThat(op.get("error").asText()).contains("import limit");
        // Under the cap the same kind of image imports fine.
        JsonNode small = s.await(token, importRootfs(token, gzipTar(1_000, 0)), Duration.ofSeconds(60));
        assertThat(small.get("status").asText()).as(small.toString()).isEqualTo("SUCCESS");
    }

    // ------------------------------------------------------------------------------------------------ account bound

    /** Past its bound an account cannot upload, import or keep a run's result; disposable runs still work. */
    @Test
    void anAccountAtItsStorageBoundCanStoreNothingMore() throws Exception {
        String token = newAccount();
        String image = s.await(token, importRootfs(token, busybox), Duration.ofSeconds(60)).get("result").get("image").asText();
        byte[] big = new byte[(int) MAX_ACCOUNT];
        new Random(3).nextBytes(big);
        assertThat(s.upload(token, big).status()).isEqualTo(201); // under the bound before it: accepted
        var upload = s.upload(token, "more".getBytes());
        assertThat(upload.status()).as(upload.text()).isEqualTo(403);
        assertThat(upload.json().get("error").asText()).contains("storage limit");
        var run = s.json(token, "POST", "/v1/instances", "{\"image\":\"" + image + "\",\"command\":\"true\"}");
        assertThat(run.status()).as(run.text()).isEqualTo(403);
        assertThat(run.json().get("error").asText()).contains("storage limit");
        var imp = s.json(token, "POST", "/v1/images/import", "{\"registry\":{\"url\":\"docker://127.0.0.1:1/x:y\"}}");
        assertThat(imp.status()).as(imp.text()).isEqualTo(403);
        var disposable = s.json(token, "POST", "/v1/instances", "{\"image\":\"" + image + "\",\"command\":\"echo ok\",\"shell\":true,\"disposable\":true}");
        assertThat(disposable.status()).as(disposable.text()).isEqualTo(202);
        JsonNode done = s.await(token, disposable.json().get("uuid").asText(), Duration.ofSeconds(60));
        assertThat(SecurityTestSupport.stream(done, "stdout")).isEqualTo("ok\n");
        // Another account is not affected.
        String other = newAccount();
        assertThat(s.upload(other, "fine".getBytes()).status()).isEqualTo(201);
    }

    /** A run that writes more than the account has left is stopped at what is left (or its result dropped). */
    @Test
    void aRunCannotWritePastTheAccountBound() throws Exception {
        String token = newAccount();
        String image = s.await(token, importRootfs(token, busybox), Duration.ofSeconds(60)).get("result").get("image").asText();
        byte[] filler = new byte[20 << 20];
        new Random(4).nextBytes(filler);
        assertThat(s.upload(token, filler).status()).isEqualTo(201);
        JsonNode op = s.await(token, s.start(token, "/v1/instances", "{\"image\":\"" + image + "\",\"command\":"
                + q("yes 0123456789abcdef > /fill") + ",\"shell\":true,\"timeout\":15}"), Duration.ofSeconds(120));
        System.out.println(getClass().getSimpleName() + ": run past the bound: " + op.get("status") + " image_size=" + op.get("image_size")
                + " error=" + op.get("error"));
        if (op.get("status").asText().equals("SUCCESS")) {
            // yes(1) ignores its write errors and runs to the timeout; what it kept is what the account had left.
            assertThat(op.get("image_size").asLong()).as(op.toString()).isPositive().isLessThanOrEqualTo(MAX_ACCOUNT - (20L << 20) + (1 << 20));
        } else {
            assertThat(op.get("error").asText()).as(op.toString()).contains("storage limit");
        }
    }

    // ------------------------------------------------------------------------------------------------ fairness

    /**
     * The hog fills every slot it may with 60 s sleeps; another account's run starts within 10 s all the same. (The
     * reserve binds once a second account holds a token, so the victim's token exists before the hog starts.)
     */
    @Test
    void longRunsOfOneAccountDoNotStarveAnother() throws Exception {
        String victim = newAccount();
        String hog = newAccount();
        Thread.sleep(1100); // the scheduler re-reads the tenant count at most once a second
        String image = s.await(hog, importRootfs(hog, busybox), Duration.ofSeconds(60)).get("result").get("image").asText();
        List<String> hogs = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            hogs.add(s.start(hog, "/v1/instances", "{\"image\":\"" + image + "\",\"command\":\"sleep 60\",\"shell\":true,"
                    + "\"disposable\":true,\"timeout\":120}"));
        }
        try {
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (hogs.stream().filter(o -> status(hog, o).equals("EXECUTING")).count() < 3) {
                assertThat(System.nanoTime()).isLessThan(deadline);
                Thread.sleep(100);
            }
            String vImage = s.await(victim, importRootfs(victim, busybox), Duration.ofSeconds(20)).get("result").get("image").asText();
            long t0 = System.nanoTime();
            JsonNode op = s.await(victim, s.start(victim, "/v1/instances", "{\"image\":\"" + vImage + "\",\"command\":\"true\","
                    + "\"disposable\":true}"), Duration.ofSeconds(10));
            assertThat(op.get("status").asText()).isEqualTo("SUCCESS");
            System.out.println(getClass().getSimpleName() + ": victim's run done " + (System.nanoTime() - t0) / 1_000_000
                    + " ms after submit while the hog holds its slots");
            assertThat(hogs.stream().filter(o -> status(hog, o).equals("EXECUTING")).count()).as("the hog is still running").isEqualTo(3);
        } finally {
            for (String o : hogs) s.delete(hog, "/v1/operations/" + o);
        }
    }

    /**
     * Imports from drip-feeding registries (a manifest at 20 B/s, a blob at 2 KB/s), timed out after 2 s or
     * cancelled: each ends within seconds of its deadline and frees its slot, so the same account's run then
     * starts at once.
     */
    @Test
    void stalledImportsReleaseTheirSlotsAtTheirTimeout() throws Exception {
        Path layout = s.tempDir.resolve("drip-layout-" + ACCOUNTS.incrementAndGet());
        new OciLayoutBuilder().layer(Compression.GZIP, OciLayoutBuilder.busyboxRootfs()).writeLayout(layout, "t");
        String token = newAccount();
        String image = s.await(token, importRootfs(token, busybox), Duration.ofSeconds(60)).get("result").get("image").asText();
        try (LayoutRegistry slowManifest = new LayoutRegistry(layout); LayoutRegistry slowBlob = new LayoutRegistry(layout)) {
            slowManifest.throttle(20);
            slowBlob.throttle(2_000);
            List<String> imports = new ArrayList<>();
            long t0 = System.nanoTime();
            for (LayoutRegistry r : List.of(slowManifest, slowBlob, slowManifest)) {
                imports.add(s.start(token, "/v1/images/import", "{\"registry\":{\"url\":\"docker://" + r.hostPort() + "/drip:t\"},\"timeout\":2}"));
            }
            String cancelled = s.start(token, "/v1/images/import", "{\"registry\":{\"url\":\"docker://" + slowBlob.hostPort() + "/drip:t\"},\"timeout\":600}");
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (!status(token, cancelled).equals("EXECUTING")) { // queued until a timed-out import frees its slot
                assertThat(System.nanoTime()).isLessThan(deadline);
                Thread.sleep(50);
            }
            Thread.sleep(500);
            assertThat(s.delete(token, "/v1/operations/" + cancelled).status()).isEqualTo(202);
            for (String op : imports) {
                JsonNode done = s.await(token, op, Duration.ofSeconds(15));
                assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("FAILED");
                assertThat(done.get("error").asText()).contains("timed out");
            }
            long importsDone = (System.nanoTime() - t0) / 1_000_000;
            JsonNode run = s.await(token, s.start(token, "/v1/instances", "{\"image\":\"" + image + "\",\"command\":\"true\","
                    + "\"disposable\":true}"), Duration.ofSeconds(10));
            assertThat(run.get("status").asText()).isEqualTo("SUCCESS");
            assertThat(status(token, cancelled)).isEqualTo("CANCELLED");
            System.out.println(getClass().getSimpleName() + ": 3 stalled imports (timeout 2 s) ended within " + importsDone
                    + " ms; the run after them took " + Math.round(run.get("duration").asDouble() * 1000) + " ms");
        }
    }
}
