package dev.contree.imports;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.TestServer;
import dev.contree.layerformat.RawTar;
import dev.contree.registry.Compression;
import dev.contree.registry.OciLayoutBuilder;
import dev.contree.registry.OciLayoutBuilder.Tar;
import dev.contree.registry.TestRegistry;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicInteger;

import static dev.contree.layerformat.RawTar.b;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Imports over real HTTP: a real ConTree server (runc) and a real docker-registry on loopback, images built in the
 * test and pushed with skopeo; results checked through the inspect routes and by running commands.
 */
class RegistryImportTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final AtomicInteger N = new AtomicInteger();
    /** Scratch for the registry's storage, layouts and host victims; the server has its own temp dir. */
    @TempDir static Path dir;
    static TestServer s;
    static TestRegistry reg;

    @BeforeAll
    static void start() throws IOException {
        s = TestServer.inTempDir("imports-test", c -> c.withRuntime("runc", "ptrace"));
        reg = TestRegistry.start(dir);
    }

    @AfterAll
    static void stop() throws IOException {
        if (reg != null) reg.close();
        if (s != null) s.close();
    }

    // ------------------------------------------------------------------------------------------------ names are bytes

    /**
     * A rootfs whose names are not UTF-8 (ustar, a Go-style PAX path record, a GNU long name, a symlink target, a
     * hard link by PAX linkpath) imports, and a runc sandbox sees exactly those bytes.
     */
    @Test
    void rootfsWithNonUtf8NamesKeepsTheirBytesInASandbox() throws Exception {
        byte[] tar = new RawTar().copyOf(dev.contree.TestImages.busyboxRootfs())
                .dir(b("n"), 0755)
                .file(b("n/\u00ff\u00fe"), b("a"), 0644)
                .pax('x', "path", b("n/caf\u00e9")).file(b("placeholder"), b("b"), 0644)
                .gnuLong('L', b("n/" + "L".repeat(110) + "\u00e9")).file(b("ignored"), b("c"), 0644)
                .symlink(b("n/l\u00fe"), b("caf\u00e9"))
                .pax('x', "path", b("n/h\u00ff"), "linkpath", b("n/caf\u00e9")).hardlink(b("x"), b("x"))
                .bytes();
        String image = s.importRootfs(s.tokenA, tar, null);
        // busybox ls shows unprintable bytes as '?' even into a pipe, so the names are printed by the shell
        JsonNode r = sh(image, "cd /n && for f in *; do printf '%s\\n' \"$f\"; done | od -An -c -v | tr -s ' \\n' ' '; echo;"
                + " readlink \"$(printf 'l\\376')\" | od -An -c -v | tr -s ' \\n' ' '; echo;"
                + " cat \"$(printf 'h\\377')\" \"$(printf 'l\\376')\"; echo; stat -c %h \"$(printf 'caf\\351')\"");
        String[] out = stdout(r).split("\n");
        assertThat(out).as(r.toString()).hasSize(4);
        assertThat(out[0]).contains(" L L 351 \\n ").contains(" c a f 351 \\n ").contains(" h 377 \\n ")
                .contains(" l 376 \\n ").contains(" 377 376 \\n");
        assertThat(out[1].trim()).isEqualTo("c a f 351 \\n");
        assertThat(out[2]).isEqualTo("bb");
        assertThat(out[3]).isEqualTo("2");
    }

    /** A rootfs that writes through its own symlink fails with the image path in the message; the host dir is untouched. */
    @Test
    void hostileRootfsFailsNamingTheImagePath() throws Exception {
        Path victim = Files.createDirectories(dir.resolve("victim-" + N.incrementAndGet()));
        Files.writeString(victim.resolve("keep"), "safe");
        byte[] tar = new RawTar().dir(b("etc"), 0755).symlink(b("etc/l\u00ff"), b(victim.toString()))
                .file(b("etc/l\u00ff/keep"), b("pwned"), 0644).file(b("etc/l\u00ff/new"), b("pwned"), 0644).bytes();
        String file = s.upload(s.tokenA, tar).json().get("uuid").asText();
        JsonNode op = s.await(s.tokenA, s.start(s.tokenA, "/v1/images/import", importBody("rootfs+file://" + file, null, null, null, null)),
                Duration.ofSeconds(60));
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("FAILED");
        assertThat(op.get("error").asText()).contains("is not a valid layer: archive writes through a non-directory: etc/l\uFFFD is a symlink")
                .doesNotContain(dir.toString());
        try (var files = Files.list(victim)) {
            assertThat(files.map(p -> p.getFileName().toString())).containsExactly("keep");
        }
        assertThat(Files.readString(victim.resolve("keep"))).isEqualTo("safe");
    }

    // ------------------------------------------------------------------------------------------------ helpers

    /** Writes {@code b} as an OCI layout and pushes it as {@code repo:tag}; returns the written image. */
    static OciLayoutBuilder.Image push(TestRegistry r, OciLayoutBuilder b, String repo) throws IOException {
        Path layout = dir.resolve("layout-" + N.incrementAndGet());
        OciLayoutBuilder.Image img = b.writeLayout(layout, "t");
        r.push(layout, "t", repo, "v1", false);
        return img;
    }

    static String importBody(String url, String tag, String user, String password, Integer timeout) {
        ObjectNode body = JSON.createObjectNode();
        ObjectNode registry = body.putObject("registry");
        registry.put("url", url);
        if (user != null) {
            ObjectNode c = registry.putObject("credentials");
            c.put("username", user);
            c.put("password", password);
        }
        if (tag != null) body.put("tag", tag);
        if (timeout != null) body.put("timeout", timeout);
        return body.toString();
    }

    static JsonNode importNow(String url, String tag) {
        return s.await(s.tokenA, s.start(s.tokenA, "/v1/images/import", importBody(url, tag, null, null, null)), Duration.ofSeconds(120));
    }

    static String imageOf(JsonNode op) {
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        assertThat(op.get("kind").asText()).isEqualTo("image_import");
        return op.get("result").get("image").asText();
    }

    static Set<String> list(String image, String path) {
        var r = s.get(s.tokenA, "/v1/inspect/" + image + "/list?path=" + URLEncoder.encode(path, StandardCharsets.UTF_8));
        if (r.status() == 404) return null;
        assertThat(r.status()).as(r.text()).isEqualTo(200);
        Set<String> names = new TreeSet<>();
        r.json().get("files").forEach(f -> names.add(f.get("path").asText()));
        return names;
    }

    static String download(String image, String path) {
        var r = s.get(s.tokenA, "/v1/inspect/" + image + "/download?path=" + URLEncoder.encode(path, StandardCharsets.UTF_8));
        return r.status() == 200 ? r.text() : null;
    }

    static JsonNode sh(String image, String script) {
        String body = JSON.createObjectNode().put("image", image).put("command", script).put("shell", true).toString();
        return s.await(s.tokenA, s.start(s.tokenA, "/v1/instances", body), Duration.ofSeconds(120));
    }

    static String stdout(JsonNode op) {
        JsonNode st = op.get("metadata").get("result").get("stdout");
        String v = st.get("value").asText();
        return st.get("encoding").asText().equals("base64") ? new String(Base64.getDecoder().decode(v), StandardCharsets.UTF_8) : v;
    }

    static Set<String> layerIds() throws IOException {
        return new HashSet<>(s.server.services().layers().layerIds());
    }

    /** Pending subvolumes left once the store's background work (deleting unchanged/discarded layers) is done. */
    static List<String> pendingLayers() throws IOException {
        s.server.services().layers().awaitBackgroundWork();
        try (var st = Files.list(s.server.services().layers().root().resolve("layers"))) {
            return st.map(p -> p.getFileName().toString()).filter(n -> n.startsWith(".pending-")).toList();
        } catch (java.nio.file.NoSuchFileException e) {
            return List.of();
        }
    }

    static byte[] random(int size, long seed) {
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        return b;
    }

    /** A tar of {@code root}'s regular files and directories (names relative, sorted). */
    static byte[] tarDir(Path root) throws IOException {
        ByteArrayOutputStream bout = new ByteArrayOutputStream();
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(bout); var walk = Files.walk(root)) {
            tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
            tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
            for (Path p : walk.sorted().toList()) {
                if (p.equals(root)) continue;
                String name = root.relativize(p).toString() + (Files.isDirectory(p) ? "/" : "");
                TarArchiveEntry e = new TarArchiveEntry(p.toFile(), name);
                tar.putArchiveEntry(e);
                if (Files.isRegularFile(p)) Files.copy(p, tar);
                tar.closeArchiveEntry();
            }
        }
        return bout.toByteArray();
    }

    // ------------------------------------------------------------------------------------------------ tests

    @Test
    void busyboxGzipImageWithConfigRunsWithItsEnvAndWorkdir() throws IOException {
        var b = new OciLayoutBuilder().layer(Compression.GZIP, OciLayoutBuilder.busyboxRootfs().dir("srv").dir("srv/app")
                .file("srv/app/hello.txt", "hello from the image\n"))
            .env("PATH=/bin", "GREETING=hi there").workingDir("/srv/app").user("1000:1001");
        push(reg, b, "busybox");
        String url = "docker://" + reg.hostPort() + "/busybox:v1";
        JsonNode op = importNow(url, "busybox:test");
        String image = imageOf(op);
        assertThat(op.get("result").get("tag").asText()).isEqualTo("busybox:test");
        assertThat(op.get("metadata").get("registry").get("url").asText()).isEqualTo(url);
        assertThat(list(image, "/bin")).contains("busybox", "sh", "ls");
        assertThat(list(image, "/srv/app")).containsExactly("hello.txt");
        assertThat(download(image, "/srv/app/hello.txt")).isEqualTo("hello from the image\n");
        assertThat(download(image, "/etc/passwd")).startsWith("root:x:0:0");
        var bb = s.get(s.tokenA, "/v1/inspect/" + image + "/download?path=/bin/busybox");
        assertThat(bb.body()).isEqualTo(Files.readAllBytes(Path.of("/bin/busybox")));

        JsonNode run = sh(image, "echo $GREETING; pwd; cat hello.txt; id -u; id -g");
        assertThat(run.get("status").asText()).as(run.toString()).isEqualTo("SUCCESS");
        // The image's Env, WorkingDir and User are the defaults of executions ...
        assertThat(stdout(run)).isEqualTo("hi there\n/srv/app\nhello from the image\n1000\n1001\n");
        // ... an explicit uid/gid wins ...
        String asRoot = JSON.createObjectNode().put("image", image).put("command", "id -u").put("shell", true).put("uid", 0).toString();
        assertThat(stdout(s.await(s.tokenA, s.start(s.tokenA, "/v1/instances", asRoot), Duration.ofSeconds(120)))).isEqualTo("0\n");
        // ... and they are shown on the image record.
        JsonNode config = s.get(s.tokenA, "/v1/inspect/" + image + "/").json().get("config");
        assertThat(config.get("env").get("GREETING").asText()).isEqualTo("hi there");
        assertThat(config.get("working_dir").asText()).isEqualTo("/srv/app");
        assertThat(config.get("user").asText()).isEqualTo("1000:1001");

        // The tag resolves to the imported image.
        var byTag = s.get(s.tokenA, "/v1/inspect/?tag=busybox:test");
        assertThat(byTag.status()).isEqualTo(302);
        assertThat(byTag.header("Location")).isEqualTo(image + "/");
    }

    @Test
    void multiLayerImageWithWhiteoutsOpaqueDirAndZstdLayer() throws IOException {
        Tar base = OciLayoutBuilder.busyboxRootfs()
            .dir("data").file("data/keep", "keep\n").file("data/gone", "gone\n")
            .dir("opq").file("opq/old1", "1").dir("opq/sub").file("opq/sub/old2", "2")
            .file("toplevel-gone", "x").dir("dir-gone").file("dir-gone/f", "f")
            .file("changed", "v1\n");
        Tar middle = new Tar()
            .whiteout("data/gone").whiteout("toplevel-gone").whiteout("dir-gone")
            .dir("opq").opaque("opq").file("opq/new", "new\n")
            .file("changed", "v2\n").dir("added").file("added/a", "a\n").symlink("added/link", "a")
            .hardlink("added/hard", "added/a");
        Tar top = new Tar().file("changed", "v3\n").file("data/gone", "back\n");
        var b = new OciLayoutBuilder().layer(Compression.GZIP, base).layer(Compression.ZSTD, middle).layer(Compression.NONE, top);
        var img = push(reg, b, "multi");
        assertThat(img.layers().get(1).mediaType()).endsWith("zstd");
        String image = imageOf(importNow("oci://" + reg.hostPort() + "/multi:v1", null));

        assertThat(list(image, "/")).contains("bin", "data", "opq", "added", "changed").doesNotContain("toplevel-gone", "dir-gone");
        assertThat(list(image, "/data")).containsExactly("gone", "keep");
        assertThat(download(image, "/data/gone")).isEqualTo("back\n");
        assertThat(list(image, "/opq")).containsExactly("new");
        assertThat(list(image, "/opq/sub")).isNull();
        assertThat(download(image, "/changed")).isEqualTo("v3\n");
        assertThat(download(image, "/toplevel-gone")).isNull();
        assertThat(list(image, "/added")).containsExactly("a", "hard", "link");
        assertThat(download(image, "/added/hard")).isEqualTo("a\n");
        var link = s.get(s.tokenA, "/v1/inspect/" + image + "/list?path=/added").json().get("files");
        for (JsonNode f : link) {
            if (f.get("path").asText().equals("link")) assertThat(f.get("symlink_to").asText()).isEqualTo("a");
            if (f.get("path").asText().equals("hard")) assertThat(f.get("nlink").asInt()).isEqualTo(2);
        }
        // The merged view as a process sees it.
        JsonNode run = sh(image, "ls /opq; cat /changed; ls /data; test -e /dir-gone || echo no-dir");
        assertThat(stdout(run)).isEqualTo("new\nv3\ngone\nkeep\nno-dir\n");
    }

    @Test
    void reimportIsAFastNoOpThatStillReturnsAnImageAndMovesTheTag() throws IOException {
        var b = new OciLayoutBuilder().layer(Compression.GZIP, OciLayoutBuilder.busyboxRootfs())
            .layer(Compression.GZIP, new Tar().file("big", random(8 << 20, 7), 0644)).env("A=1");
        push(reg, b, "again");
        String url = reg.hostPort() + "/again:v1"; // bare reference
        JsonNode first = importNow(url, "again:latest");
        String img1 = imageOf(first);
        Set<String> layersAfterFirst = layerIds();

        long t0 = System.nanoTime();
        JsonNode second = importNow(url, "again:latest");
        double seconds = (System.nanoTime() - t0) / 1e9;
        String img2 = imageOf(second);
        assertThat(layerIds()).isEqualTo(layersAfterFirst);
        assertThat(second.get("duration").asDouble()).isLessThan(1.0);
        assertThat(seconds).isLessThan(2.0);
        assertThat(second.get("result").get("tag").asText()).isEqualTo("again:latest");
        assertThat(s.get(s.tokenA, "/v1/inspect/?tag=again:latest").header("Location")).isEqualTo(img2 + "/");
        assertThat(download(img2, "/big").length()).isGreaterThan(0);
        // An unchanged image imported again is the same image.
        assertThat(img2).isEqualTo(img1);
        // Under another tag too: the tag moves onto the one image, no second record.
        JsonNode third = importNow(url, "again:other");
        assertThat(imageOf(third)).isEqualTo(img1);
        assertThat(s.get(s.tokenA, "/v1/inspect/" + img1 + "/").json().get("tag").asText()).isEqualTo("again:other");
    }

    @Test
    void multiArchIndexPicksLinuxAmd64() throws IOException {
        Path layout = dir.resolve("layout-" + N.incrementAndGet());
        var arm = new OciLayoutBuilder().platform("linux", "arm64", "v8")
            .layer(Compression.GZIP, new Tar().file("arch", "arm64\n"));
        var amd = new OciLayoutBuilder().platform("linux", "amd64", null)
            .layer(Compression.GZIP, new Tar().file("arch", "amd64\n"));
        var s390 = new OciLayoutBuilder().platform("linux", "s390x", null)
            .layer(Compression.ZSTD, new Tar().file("arch", "s390x\n"));
        OciLayoutBuilder.writeIndex(layout, "t", List.of(arm, s390, amd));
        reg.push(layout, "t", "multiarch", "v1", true);
        String image = imageOf(importNow("docker://" + reg.hostPort() + "/multiarch:v1", null));
        assertThat(download(image, "/arch")).isEqualTo("amd64\n");
    }

    @Test
    void unknownImageFails() {
        JsonNode op = importNow("docker://" + reg.hostPort() + "/does/not-exist:v1", null);
        assertThat(op.get("status").asText()).isEqualTo("FAILED");
        assertThat(op.get("error").asText()).contains("not found").contains("does/not-exist");
        assertThat(op.get("result").path("image").isNull() || op.get("result").isNull()).isTrue();
        JsonNode tagOnly = importNow("docker://" + reg.hostPort() + "/busybox:no-such-tag", null);
        assertThat(tagOnly.get("status").asText()).isEqualTo("FAILED");
    }

    @Test
    void invalidReferencesAreRejected() {
        for (String url : List.of("http://example.com/x", "UPPER/case", "rootfs+file://nope", "a b")) {
            var r = s.json(s.tokenA, "POST", "/v1/images/import", importBody(url, null, null, null, null));
            assertThat(r.status()).as(url + ": " + r.text()).isEqualTo(400);
        }
    }

    @Test
    void corruptBlobFailsAndLeavesNoLayer() throws IOException {
        var b = new OciLayoutBuilder()
            .layer(Compression.GZIP, new Tar().file("one", random(3 << 20, 11), 0644))
            .layer(Compression.GZIP, new Tar().file("two", random(1 << 20, 12), 0644))
            .layer(Compression.ZSTD, new Tar().file("three", "3"));
        var img = push(reg, b, "corrupt");
        Path blob = reg.blobFile(img.layers().get(1).digest());
        byte[] bytes = Files.readAllBytes(blob);
        bytes[bytes.length / 2] ^= 0x55; // same size, wrong content (gzip itself may or may not notice)
        Files.write(blob, bytes);
        Set<String> before = layerIds();
        JsonNode op = importNow("docker://" + reg.hostPort() + "/corrupt:v1", "corrupt:x");
        assertThat(op.get("status").asText()).isEqualTo("FAILED");
        assertThat(op.get("error").asText()).containsAnyOf("digest", "gzip", "corrupt");
        assertThat(layerIds()).isEqualTo(before);
        assertThat(pendingLayers()).isEmpty();
        assertThat(s.get(s.tokenA, "/v1/inspect/?tag=corrupt:x").status()).isEqualTo(404);
    }

    @Test
    void authRequiredRegistryWithRightAndWrongCredentials() throws IOException {
        try (TestRegistry secure = TestRegistry.startHtpasswd(dir, "alice", "s3cret-pass")) {
            push(secure, new OciLayoutBuilder().layer(Compression.GZIP, new Tar().file("secret", "classified\n")), "private/img");
            String url = "docker://" + secure.hostPort() + "/private/img:v1";

            String okOp = s.start(s.tokenA, "/v1/images/import", importBody(url, null, "alice", "s3cret-pass", null));
            JsonNode ok = s.await(s.tokenA, okOp, Duration.ofSeconds(60));
            assertThat(download(imageOf(ok), "/secret")).isEqualTo("classified\n");
            assertThat(ok.get("metadata").get("registry").get("credentials").get("password").asText()).isEqualTo("<MASKED>");
            assertThat(ok.toString()).doesNotContain("s3cret-pass");

            JsonNode wrong = s.await(s.tokenA, s.start(s.tokenA, "/v1/images/import",
                importBody(url, null, "alice", "wrong-password-123", null)), Duration.ofSeconds(60));
            assertThat(wrong.get("status").asText()).isEqualTo("FAILED");
            assertThat(wrong.get("error").asText()).contains("alice").contains("wrong username or password");
            assertThat(wrong.toString()).doesNotContain("wrong-password-123");

            JsonNode anon = importNow(url, null);
            assertThat(anon.get("status").asText()).isEqualTo("FAILED");
            assertThat(anon.get("error").asText()).contains("credentials");
        }
    }

    @Test
    void cancelMidImportStopsPromptlyAndLeavesNothing() throws Exception {
        var b = new OciLayoutBuilder()
            .layer(Compression.GZIP, new Tar().file("small", "s"))
            .layer(Compression.NONE, new Tar().file("huge", random(24 << 20, 21), 0644));
        push(reg, b, "slow");
        try (ThrottlingProxy proxy = new ThrottlingProxy(reg.port(), 2 << 20)) {
            Set<String> before = layerIds();
            String op = s.start(s.tokenA, "/v1/images/import",
                importBody("docker://" + proxy.hostPort() + "/slow:v1", "slow:x", null, null, null));
            awaitStatus(op, "EXECUTING");
            Thread.sleep(1500); // well into the download
            long t0 = System.nanoTime();
            var del = s.delete(s.tokenA, "/v1/operations/" + op);
            assertThat(del.status()).as(del.text()).isBetween(200, 299);
            JsonNode done = s.await(s.tokenA, op, Duration.ofSeconds(10));
            double seconds = (System.nanoTime() - t0) / 1e9;
            assertThat(done.get("status").asText()).isEqualTo("CANCELLED");
            assertThat(seconds).isLessThan(3.0);
            Thread.sleep(500); // let the job finish its cleanup
            assertThat(layerIds()).isEqualTo(before);
            assertThat(pendingLayers()).isEmpty();
            assertThat(s.get(s.tokenA, "/v1/inspect/?tag=slow:x").status()).isEqualTo(404);

            // timeout: same slow source, 1 s limit
            JsonNode timedOut = s.await(s.tokenA, s.start(s.tokenA, "/v1/images/import",
                importBody("docker://" + proxy.hostPort() + "/slow:v1", null, null, null, 1)), Duration.ofSeconds(15));
            assertThat(timedOut.get("status").asText()).isEqualTo("FAILED");
            assertThat(timedOut.get("error").asText()).contains("timed out");
            Thread.sleep(500);
            assertThat(layerIds()).isEqualTo(before);
            assertThat(pendingLayers()).isEmpty();
        }
    }

    static void awaitStatus(String op, String status) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (System.nanoTime() < deadline) {
            if (s.get(s.tokenA, "/v1/operations/" + op).json().get("status").asText().equals(status)) return;
            Thread.sleep(20);
        }
        throw new AssertionError("operation never reached " + status);
    }

    // ------------------------------------------------------------------------------------------------ archives

    @Test
    void ociArchiveFromUploadedFilePicksAmd64() throws IOException {
        Path layout = dir.resolve("layout-" + N.incrementAndGet());
        var arm = new OciLayoutBuilder().platform("linux", "arm64", "v8").layer(Compression.GZIP, new Tar().file("arch", "arm64\n"));
        var amd = new OciLayoutBuilder().platform("linux", "amd64", null)
            .layer(Compression.GZIP, OciLayoutBuilder.busyboxRootfs())
            .layer(Compression.ZSTD, new Tar().file("arch", "amd64\n").whiteout("etc/group"))
            .env("FROM_ARCHIVE=yes").workingDir("/tmp");
        OciLayoutBuilder.writeIndex(layout, "t", List.of(arm, amd));
        String file = s.upload(s.tokenA, tarDir(layout)).json().get("uuid").asText();
        String image = imageOf(importNow("oci-archive+file://" + file, "from-oci-archive"));
        assertThat(download(image, "/arch")).isEqualTo("amd64\n");
        assertThat(list(image, "/etc")).contains("passwd").doesNotContain("group");
        assertThat(stdout(sh(image, "echo $FROM_ARCHIVE; pwd"))).isEqualTo("yes\n/tmp\n");
    }

    @Test
    void dockerArchiveLegacyLayoutAndTamperedLayer() throws IOException {
        byte[] l1 = OciLayoutBuilder.busyboxRootfs().toBytes();
        byte[] l2 = new Tar().dir("app").file("app/main.txt", "docker archive\n").whiteout("etc/passwd").toBytes();
        Path root = dir.resolve("docker-archive-" + N.incrementAndGet());
        byte[] good = dockerArchive(root, List.of(l1, l2), false);
        String image = imageOf(importNow("docker-archive+file://" + s.upload(s.tokenA, good).json().get("uuid").asText(), null));
        assertThat(download(image, "/app/main.txt")).isEqualTo("docker archive\n");
        assertThat(download(image, "/etc/passwd")).isNull();
        assertThat(stdout(sh(image, "echo $DOCKER; pwd"))).isEqualTo("archive\n/app\n");

        // The same archive with one layer byte flipped: FAILED, nothing left.
        byte[] l3 = new Tar().file("x", random(1 << 20, 31), 0644).toBytes();
        Path root2 = dir.resolve("docker-archive-" + N.incrementAndGet());
        byte[] bad = dockerArchive(root2, List.of(l1, l3), true);
        Set<String> before = layerIds();
        JsonNode op = importNow("docker-archive+file://" + s.upload(s.tokenA, bad).json().get("uuid").asText(), null);
        assertThat(op.get("status").asText()).isEqualTo("FAILED");
        assertThat(op.get("error").asText()).contains("digest mismatch");
        assertThat(layerIds()).isEqualTo(before);
        assertThat(pendingLayers()).isEmpty();
    }

    @Test
    void dockerArchiveWithOciLayoutInside() throws IOException {
        // Docker 25+ `docker save`: an OCI layout plus manifest.json whose paths point into blobs/sha256.
        Path layout = dir.resolve("layout-" + N.incrementAndGet());
        var img = new OciLayoutBuilder().layer(Compression.NONE, OciLayoutBuilder.busyboxRootfs())
            .layer(Compression.NONE, new Tar().file("new-docker", "yes\n")).writeLayout(layout, "t");
        var manifest = JSON.createArrayNode().addObject();
        manifest.put("Config", "blobs/sha256/" + img.configDigest().substring(7));
        manifest.putArray("RepoTags").add("x:y");
        var layers = manifest.putArray("Layers");
        img.layers().forEach(d -> layers.add("blobs/sha256/" + d.digest().substring(7)));
        Files.write(layout.resolve("manifest.json"), JSON.writeValueAsBytes(JSON.createArrayNode().add(manifest)));
        String file = s.upload(s.tokenA, tarDir(layout)).json().get("uuid").asText();
        String image = imageOf(importNow("docker-archive+file://" + file, null));
        assertThat(download(image, "/new-docker")).isEqualTo("yes\n");
        // and the same upload as an OCI archive shares the layers
        Set<String> before = layerIds();
        imageOf(importNow("oci-archive+file://" + file, null));
        assertThat(layerIds()).isEqualTo(before);
    }

    @Test
    void archiveErrors() {
        String notTar = s.upload(s.tokenA, "hello".getBytes(StandardCharsets.UTF_8)).json().get("uuid").asText();
        JsonNode op = importNow("oci-archive+file://" + notTar, null);
        assertThat(op.get("status").asText()).isEqualTo("FAILED");
        assertThat(op.get("error").asText()).containsAnyOf("tar", "index.json");
        var missing = s.json(s.tokenA, "POST", "/v1/images/import",
            importBody("docker-archive+file://00000000-0000-0000-0000-000000000000", null, null, null, null));
        assertThat(missing.status()).isEqualTo(404);
    }

    /** A {@code docker save} (legacy) archive: {@code <id>/layer.tar}, {@code <config sha>.json}, manifest.json. */
    static byte[] dockerArchive(Path root, List<byte[]> layers, boolean tamperLast) throws IOException {
        Files.createDirectories(root);
        List<String> diffIds = new ArrayList<>();
        List<String> paths = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) {
            byte[] l = layers.get(i);
            String diffId = OciLayoutBuilder.sha256(l);
            diffIds.add(diffId);
            String id = diffId.substring(7, 7 + 64);
            Files.createDirectories(root.resolve(id));
            byte[] stored = l.clone();
            if (tamperLast && i == layers.size() - 1) stored[stored.length / 3] ^= 1;
            Files.write(root.resolve(id + "/layer.tar"), stored);
            paths.add(id + "/layer.tar");
        }
        ObjectNode config = JSON.createObjectNode();
        config.put("architecture", "amd64").put("os", "linux");
        ObjectNode c = config.putObject("config");
        c.putArray("Env").add("PATH=/bin").add("DOCKER=archive");
        c.put("WorkingDir", "/app");
        ObjectNode rootfs = config.putObject("rootfs").put("type", "layers");
        diffIds.forEach(rootfs.putArray("diff_ids")::add);
        byte[] cfg = JSON.writeValueAsBytes(config);
        String cfgName = OciLayoutBuilder.sha256(cfg).substring(7) + ".json";
        Files.write(root.resolve(cfgName), cfg);
        var m = JSON.createArrayNode().addObject();
        m.put("Config", cfgName);
        m.putArray("RepoTags").add("test:latest");
        paths.forEach(m.putArray("Layers")::add);
        Files.write(root.resolve("manifest.json"), JSON.writeValueAsBytes(JSON.createArrayNode().add(m)));
        return tarDir(root);
    }
}
