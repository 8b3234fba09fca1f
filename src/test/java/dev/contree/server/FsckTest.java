package dev.contree.server;

import dev.contree.TestDirs;
import dev.contree.TestImages;
import dev.contree.TestServer;
import dev.contree.operations.OperationKind;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.sql.Connection;
import java.sql.DriverManager;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;

class FsckTest {
    Path dir;

    @AfterEach
    void cleanup() throws Exception {
        TestDirs.removeWithMounts(dir);
    }

    record Result(int code, String output) {}

    static Result fsck(Path data, boolean repair) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(out, true, StandardCharsets.UTF_8);
        int code = Fsck.exec(data, repair, ps, ps);
        return new Result(code, out.toString(StandardCharsets.UTF_8));
    }

    @Test
    void missingDataDirIsUnusableAndNotCreated() throws Exception {
        dir = Files.createTempDirectory("fsck");
        Path data = dir.resolve("data");
        for (boolean repair : new boolean[]{false, true}) {
            Result r = fsck(data, repair);
            assertThat(r.code()).isEqualTo(Fsck.UNUSABLE);
            assertThat(r.output()).contains("does not exist");
            assertThat(data).doesNotExist();
        }
    }

    @Test
    void emptyDataDirIsUnusableAndStaysEmpty() throws Exception {
        dir = Files.createTempDirectory("fsck");
        for (boolean repair : new boolean[]{false, true}) {
            Result r = fsck(dir, repair);
            assertThat(r.code()).isEqualTo(Fsck.UNUSABLE);
            assertThat(r.output()).contains("not a ConTree data dir");
            try (var list = Files.list(dir)) {
                assertThat(list.toList()).isEmpty();
            }
        }
    }

    @Test
    void refusesAnotherSchemaVersionWithoutTouchingTheDatabase() throws Exception {
        dir = Files.createTempDirectory("fsck");
        Path data = dir.resolve("data");
        new TestServer(data, c -> c.withLayerPoolBytes(512L << 20)).close();
        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + data.resolve("contree.db"))) {
            c.createStatement().executeUpdate("DELETE FROM schema_version WHERE version = (SELECT MAX(version) FROM schema_version)");
        }
        String db = sha256(data.resolve("contree.db"));
        Result r = fsck(data, false);
        assertThat(r.code()).isEqualTo(Fsck.UNUSABLE);
        assertThat(r.output()).contains("schema version " + (dev.contree.store.sqlite.SqliteStore.schemaVersion() - 1) + ", expected "
                + dev.contree.store.sqlite.SqliteStore.schemaVersion());
        assertThat(sha256(data.resolve("contree.db"))).isEqualTo(db);
        assertThat(data.resolve("contree.db-wal")).doesNotExist();
        assertThat(data.resolve("contree.db-shm")).doesNotExist();
    }

    @Test
    void checkChangesNothingAndRepairFixesEverything() throws Exception {
        dir = Files.createTempDirectory("fsck");
        Path data = dir.resolve("data");
        String base, child, blobSha, orphan, executing;
        try (TestServer s = new TestServer(data, c -> c.withRuntime("runc", "ptrace").withLayerPoolBytes(512L << 20))) {
            base = s.importRootfs(s.tokenA, TestImages.busyboxRootfs(), "bb");
            String run = s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + base + "\",\"command\":\"echo kept > /kept\",\"shell\":true}");
            child = s.await(s.tokenA, run, Duration.ofSeconds(60)).get("result").get("image").asText();
            blobSha = s.upload(s.tokenA, "will be corrupted".getBytes()).json().get("sha256").asText();
            // The data dir is locked while the server runs.
            Result inUse = fsck(data, false);
            assertThat(inUse.code()).isEqualTo(Fsck.UNUSABLE);
            assertThat(inUse.output()).contains("in use");
            executing = s.server.services().operations().create(s.accountA, OperationKind.INSTANCE, null, dev.contree.TestRequests.execution("true", null)).uuid();
            // An unreferenced layer (e.g. a commit whose image was never recorded).
            var builder = s.server.services().layers().create();
            Files.writeString(builder.diffDir().resolve("orphan"), "x");
            orphan = builder.commit();
            s.server.services().layers().awaitBackgroundWork();
        }

        // Damage it: the pool, a blob, an operation, temp files.
        List<String> baseChain = chain(data, base), childChain = chain(data, child);
        String baseLayer = baseChain.getFirst(), childTop = childChain.getFirst();
        assertThat(baseChain).doesNotContain(childTop);
        Path pool = dir.resolve("pool");
        Files.createDirectories(pool);
        sh("mount", "-o", "loop", data.resolve("layers.img").toString(), pool.toString());
        try {
            sh("btrfs", "subvolume", "create", pool.resolve("layers/.pending-abc").toString());
            sh("btrfs", "property", "set", "-ts", pool.resolve("layers/" + baseLayer).toString(), "ro", "false");
            sh("btrfs", "subvolume", "delete", pool.resolve("layers/" + childTop).toString());
        } finally {
            sh("umount", pool.toString());
        }
        Path blob = data.resolve("blobs/sha256/" + blobSha.substring(0, 2) + "/" + blobSha);
        blob.toFile().setWritable(true);
        Files.writeString(blob, "flipped bytes");
        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + data.resolve("contree.db"))) {
            c.createStatement().executeUpdate("UPDATE operations SET status = 'EXECUTING' WHERE uuid = '" + executing + "'");
        }
        Files.writeString(data.resolve("blobs/tmp/abc.part"), "half an upload");
        Files.createDirectories(data.resolve("spool"));
        Files.writeString(data.resolve("spool/stale-stdin"), "stdin of a run that never ran");

        Snapshot before = snapshot(data, pool);
        assertThat(before.pool()).containsEntry(".pending-abc", "ro=false").containsEntry(baseLayer, "ro=false");

        Result check = fsck(data, false);
        assertThat(check.code()).as(check.output()).isEqualTo(Fsck.PROBLEMS);
        assertThat(check.output())
                .contains("pending subvolume layers/.pending-abc")
                .contains("committed layer " + baseLayer + " is writable")
                .contains("blob " + blobSha).contains("is corrupt")
                .contains("image " + child + " references missing layer(s) " + childTop)
                .contains("layer " + orphan + " is referenced by no image")
                .contains("operation " + executing + " left EXECUTING")
                .contains("stale temp file blobs/tmp/abc.part")
                .contains("stale temp file spool/stale-stdin")
                .doesNotContain("repaired:");
        assertThat(snapshot(data, pool)).isEqualTo(before);

        Result repair = fsck(data, true);
        assertThat(repair.code()).as(repair.output()).isEqualTo(Fsck.CLEAN);
        assertThat(repair.output())
                .contains("repaired: deleted uncommitted layer .pending-abc")
                .contains("repaired: sealed layer " + baseLayer)
                .contains("repaired: dropped file record(s)")
                .contains("repaired: removed image " + child)
                .contains("repaired: removed unreferenced layer " + orphan)
                .contains("repaired: failed operation " + executing)
                .contains("repaired: removed stale temp file blobs/tmp/abc.part")
                .contains("repaired: removed stale temp file spool/stale-stdin");

        Result again = fsck(data, false);
        assertThat(again.code()).as(again.output()).isEqualTo(Fsck.CLEAN);
        assertThat(again.output()).contains("fsck: clean");

        try (TestServer s = new TestServer(data, c -> c.withRuntime("runc", "ptrace"))) {
            assertThat(s.get(s.tokenA, "/v1/inspect/" + base + "/download?path=/etc/passwd").text()).contains("root:");
            assertThat(s.get(s.tokenA, "/v1/images/" + child).status()).isEqualTo(404);
        }
    }

    /** What must not change: database bytes and companions, the pool image's bytes, the pool's subvolumes. */
    record Snapshot(String db, boolean wal, boolean shm, String poolImage, TreeMap<String, String> pool, List<String> files) {}

    static Snapshot snapshot(Path data, Path mnt) throws Exception {
        TreeMap<String, String> subvols = new TreeMap<>();
        String image = sha256(data.resolve("layers.img")); // before mounting it
        sh("mount", "-o", "ro,loop,rescue=nologreplay", data.resolve("layers.img").toString(), mnt.toString());
        try (var list = Files.list(mnt.resolve("layers"))) {
            for (Path p : list.toList()) subvols.put(p.getFileName().toString(), sh("btrfs", "property", "get", "-ts", p.toString(), "ro").trim());
        } finally {
            sh("umount", mnt.toString());
        }
        List<String> files = new ArrayList<>();
        try (var walk = Files.walk(data)) {
            for (Path p : walk.sorted().toList()) {
                var attrs = Files.readAttributes(p, java.nio.file.attribute.BasicFileAttributes.class, java.nio.file.LinkOption.NOFOLLOW_LINKS);
                files.add(data.relativize(p) + " " + attrs.size() + " " + attrs.lastModifiedTime());
            }
        }
        return new Snapshot(sha256(data.resolve("contree.db")), Files.exists(data.resolve("contree.db-wal")),
                Files.exists(data.resolve("contree.db-shm")), image, subvols, files);
    }

    static List<String> chain(Path data, String image) throws Exception {
        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + data.resolve("contree.db"));
             var q = c.prepareStatement("SELECT layer_id FROM image_layers WHERE image_uuid = ? ORDER BY position")) {
            q.setString(1, image);
            List<String> layers = new ArrayList<>();
            try (var rs = q.executeQuery()) {
                while (rs.next()) layers.add(rs.getString(1));
            }
            assertThat(layers).isNotEmpty();
            return layers;
        }
    }

    static String sha256(Path file) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 20];
            for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
        }
        return HexFormat.of().formatHex(md.digest());
    }

    static String sh(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) throw new IOException(String.join(" ", cmd) + ": " + out);
        return out;
    }
}
