package dev.contree.inspect;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.GZIPInputStream;

import static org.assertj.core.api.Assertions.assertThat;

/** The inspect routes over real HTTP on an imported image full of awkward entries. */
class InspectApiTest {
    @TempDir static Path dir;
    static TestServer s;
    static String image;

    @BeforeAll
    static void start() throws Exception {
        s = new TestServer(dir);
        image = s.importRootfs(s.tokenA, awkwardRootfs(), "awkward");
    }

    @AfterAll
    static void stop() {
        s.close();
    }

    static byte[] awkwardRootfs() throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(buf)) {
            tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
            dir(tar, "etc/", 0755, 0, 0);
            file(tar, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n", 0644, 0, 0);
            file(tar, "etc/group", "root:x:0:\nstaff:x:1000:\n", 0644, 0, 0);
            file(tar, "etc/shadow", "image-shadow\n", 0600, 0, 0);
            dir(tar, "data/", 0750, 1000, 1000);
            file(tar, "data/hello.txt", "hello world\nsecond line\n", 0640, 1000, 1000);
            file(tar, "data/bin.dat", "ab\0cd", 0644, 0, 0);
            link(tar, "data/hard.txt", "data/hello.txt", TarArchiveEntry.LF_LINK);
            link(tar, "data/abs-shadow", "/etc/shadow", TarArchiveEntry.LF_SYMLINK);
            link(tar, "data/climb", "../../../../../../etc/shadow", TarArchiveEntry.LF_SYMLINK);
            link(tar, "data/loop1", "loop2", TarArchiveEntry.LF_SYMLINK);
            link(tar, "data/loop2", "loop1", TarArchiveEntry.LF_SYMLINK);
            link(tar, "data/to-etc", "/etc", TarArchiveEntry.LF_SYMLINK);
            TarArchiveEntry fifo = new TarArchiveEntry("data/pipe", TarArchiveEntry.LF_FIFO);
            fifo.setMode(0644);
            tar.putArchiveEntry(fifo);
            tar.closeArchiveEntry();
        }
        return buf.toByteArray();
    }

    static void dir(TarArchiveOutputStream tar, String name, int mode, int uid, int gid) throws IOException {
        TarArchiveEntry d = new TarArchiveEntry(name);
        d.setMode(040000 | mode);
        d.setUserId(uid);
        d.setGroupId(gid);
        d.setModTime(1_700_000_000_000L);
        tar.putArchiveEntry(d);
        tar.closeArchiveEntry();
    }

    static void file(TarArchiveOutputStream tar, String name, String content, int mode, int uid, int gid) throws IOException {
        byte[] b = content.getBytes(StandardCharsets.UTF_8);
        TarArchiveEntry e = new TarArchiveEntry(name);
        e.setMode(0100000 | mode);
        e.setUserId(uid);
        e.setGroupId(gid);
        e.setSize(b.length);
        e.setModTime(1_700_000_000_000L);
        tar.putArchiveEntry(e);
        tar.write(b);
        tar.closeArchiveEntry();
    }

    static void link(TarArchiveOutputStream tar, String name, String target, byte type) throws IOException {
        TarArchiveEntry l = new TarArchiveEntry(name, type);
        l.setLinkName(target);
        tar.putArchiveEntry(l);
        tar.closeArchiveEntry();
    }

    String get(String path) {
        return s.get(s.tokenA, "/v1/inspect/" + image + path).text();
    }

    int status(String path) {
        return s.get(s.tokenA, "/v1/inspect/" + image + path).status();
    }

    /**
     * A streamed answer (a download) must leave the next request on the same connection intact: the server
     * watches an idle connection for a client that left by reading it, and that read must stop before the answer
     * goes out. The client sends a whoami while a 16 MiB download stalls on its full socket (it reads nothing for
     * several watch periods), as a client that pipelines, or one that sends its next request early, does.
     */
    @Test
    void aStreamedAnswerLeavesTheNextRequestOnItsConnectionIntact() throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(buf)) {
            file(tar, "big.bin", "x".repeat(16 << 20), 0644, 0, 0);
        }
        String big = s.importRootfs(s.tokenA, buf.toByteArray(), "big");
        try (java.net.Socket sock = new java.net.Socket("127.0.0.1", s.server.port())) {
            sock.setSoTimeout(30_000);
            String auth = "Authorization: Bearer " + s.tokenA + "\r\nHost: x\r\n";
            var out = sock.getOutputStream();
            out.write(("GET /v1/inspect/" + big + "/download?path=/big.bin HTTP/1.1\r\n" + auth + "\r\n").getBytes(StandardCharsets.US_ASCII));
            out.flush();
            Thread.sleep(500); // the server has read the first request and stalls writing its answer
            out.write(("GET /v1/whoami HTTP/1.1\r\n" + auth + "\r\n").getBytes(StandardCharsets.US_ASCII));
            out.flush();
            Thread.sleep(1_000); // five periods of the server's connection watch (200 ms)
            var in = new java.io.BufferedInputStream(sock.getInputStream());
            String first = headers(in);
            assertThat(first).startsWith("HTTP/1.1 200");
            long length = Long.parseLong(first.replaceAll("(?is).*\r\ncontent-length: *(\\d+).*", "$1"));
            assertThat(length).isEqualTo(16 << 20);
            assertThat(in.readNBytes((int) length)).hasSize(16 << 20);
            String second = headers(in);
            assertThat(second).startsWith("HTTP/1.1 200");
        }
    }

    /** One answer's status line and headers, up to the blank line. */
    private static String headers(java.io.InputStream in) throws IOException {
        StringBuilder h = new StringBuilder();
        while (!h.toString().endsWith("\r\n\r\n")) {
            int c = in.read();
            if (c < 0) break;
            h.append((char) c);
        }
        return h.toString();
    }

    @Test
    void listHasEveryFieldOfTheWireShape() {
        JsonNode body = s.get(s.tokenA, "/v1/inspect/" + image + "/list?path=/data").json();
        assertThat(body.get("path").asText()).isEqualTo("/data");
        JsonNode hello = null;
        List<String> names = new ArrayList<>();
        for (JsonNode f : body.get("files")) {
            names.add(f.get("path").asText());
            if (f.get("path").asText().equals("hello.txt")) hello = f;
            for (String field : List.of("path", "size", "owner", "group", "uid", "gid", "mode", "mtime", "nlink",
                    "is_dir", "is_regular", "is_symlink", "is_socket", "is_fifo", "symlink_to")) {
                assertThat(f.has(field)).as(field + " in " + f).isTrue();
            }
            assertThat(f.get("mtime").isIntegralNumber()).isTrue();
        }
        assertThat(names).contains("hello.txt", "bin.dat", "hard.txt", "abs-shadow", "pipe", "loop1");
        assertThat(hello.get("size").asLong()).isEqualTo(24);
        assertThat(hello.get("mode").asInt()).isEqualTo(0100640);
        assertThat(hello.get("owner").asText()).isEqualTo("alice");
        assertThat(hello.get("group").asText()).isEqualTo("staff");
        assertThat(hello.get("nlink").asInt()).isEqualTo(2);
        assertThat(hello.get("mtime").asLong()).isEqualTo(1_700_000_000L);
        JsonNode pipe = find(body, "pipe");
        assertThat(pipe.get("is_fifo").asBoolean()).isTrue();
        assertThat(find(body, "abs-shadow").get("symlink_to").asText()).isEqualTo("/etc/shadow");
        // A relative path is taken from /, a symlinked directory is listed through the link.
        assertThat(s.get(s.tokenA, "/v1/inspect/" + image + "/list?path=data").json().get("files").size()).isEqualTo(body.get("files").size());
        assertThat(s.get(s.tokenA, "/v1/inspect/" + image + "/list?path=/data/to-etc").json().toString()).contains("shadow");

        String text = get("/list?path=/data&text=1");
        assertThat(text).contains("hello.txt").contains("abs-shadow -> /etc/shadow");
        assertThat(s.get(s.tokenA, "/v1/inspect/" + image + "/list?path=/data&text=").header("Content-Type")).startsWith("text/plain");
    }

    static JsonNode find(JsonNode list, String name) {
        for (JsonNode f : list.get("files")) if (f.get("path").asText().equals(name)) return f;
        throw new AssertionError(name + " not listed");
    }

    @Test
    void downloadAndHead() {
        var r = s.get(s.tokenA, "/v1/inspect/" + image + "/download?path=/data/hello.txt");
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.text()).isEqualTo("hello world\nsecond line\n");
        assertThat(r.header("Content-Length")).isEqualTo("24");
        assertThat(r.header("Content-Type")).isEqualTo("application/octet-stream");
        assertThat(s.head(s.tokenA, "/v1/inspect/" + image + "/download?path=/data/hello.txt").status()).isEqualTo(200);
        assertThat(s.head(s.tokenA, "/v1/inspect/" + image + "/download?path=/nope").status()).isEqualTo(404);
        assertThat(status("/download?path=/nope")).isEqualTo(404);
        assertThat(status("/download?path=/data")).isEqualTo(422);
        assertThat(status("/download?path=/data/pipe")).isEqualTo(422);
        assertThat(status("/list?path=/data/hello.txt")).isEqualTo(422);
        assertThat(status("/list?path=/missing")).isEqualTo(404);
    }

    @Test
    void nothingOutsideTheImageIsEverRead() {
        // Absolute and climbing symlinks resolve inside the image: they reach the image's own /etc/shadow.
        assertThat(get("/download?path=/data/abs-shadow")).isEqualTo("image-shadow\n");
        assertThat(get("/download?path=/data/climb")).isEqualTo("image-shadow\n");
        assertThat(get("/download?path=/../../../../etc/shadow")).isEqualTo("image-shadow\n");
        assertThat(get("/download?path=/data/../../../etc/passwd")).doesNotContain("daemon:").contains("alice");
        assertThat(get("/download?path=/data/to-etc/../etc/passwd")).contains("alice");
        assertThat(status("/download?path=/data/loop1")).isEqualTo(422);
        assertThat(status("/download?path=/data/%00x")).isEqualTo(400);
        assertThat(status("/download?path=/" + "a/".repeat(3000))).isIn(400, 404);
        assertThat(status("/download?path=/proc/self/environ")).isEqualTo(404);
        var archive = s.get(s.tokenA, "/v1/inspect/" + image + "/archive?path=/data/to-etc");
        assertThat(archive.status()).isEqualTo(200);
    }

    @Test
    void archiveStreamsAPaxTar() throws IOException {
        var r = s.get(s.tokenA, "/v1/inspect/" + image + "/archive?path=/data");
        assertThat(r.status()).isEqualTo(200);
        assertThat(r.header("Content-Type")).isEqualTo("application/x-tar");
        List<String> names = new ArrayList<>();
        try (TarArchiveInputStream tar = new TarArchiveInputStream(new ByteArrayInputStream(r.body()))) {
            for (TarArchiveEntry e; (e = tar.getNextEntry()) != null; ) {
                names.add(e.getName());
                // hard.txt sorts first and carries the data; hello.txt is a hard link to it.
                if (e.getName().equals("data/hard.txt")) {
                    assertThat(new String(tar.readAllBytes(), StandardCharsets.UTF_8)).startsWith("hello world");
                    assertThat(e.getLongUserId()).isEqualTo(1000);
                }
                if (e.getName().equals("data/hello.txt")) {
                    assertThat(e.isLink()).isTrue();
                    assertThat(e.getLinkName()).isEqualTo("data/hard.txt");
                }
                if (e.getName().equals("data/abs-shadow")) assertThat(e.getLinkName()).isEqualTo("/etc/shadow");
            }
        }
        assertThat(names).contains("data/", "data/hello.txt", "data/hard.txt", "data/pipe");
        var gz = s.send(s.tokenA, "GET", "/v1/inspect/" + image + "/archive?path=/etc", null, "Accept-Encoding", "gzip");
        assertThat(gz.header("Content-Encoding")).isEqualTo("gzip");
        try (TarArchiveInputStream tar = new TarArchiveInputStream(new GZIPInputStream(new ByteArrayInputStream(gz.body())))) {
            assertThat(tar.getNextEntry().getName()).startsWith("etc");
        }
        assertThat(s.head(s.tokenA, "/v1/inspect/" + image + "/archive?path=/data").status()).isEqualTo(200);
        assertThat(s.head(s.tokenA, "/v1/inspect/" + image + "/archive?path=/none").status()).isEqualTo(404);
    }

    @Test
    void grepFindsLinesWithOffsets() {
        JsonNode r = s.get(s.tokenA, "/v1/inspect/" + image + "/grep?pattern=second&path=/data").json();
        assertThat(r.get("truncated").asBoolean()).isFalse();
        assertThat(r.get("matches")).hasSize(2); // hello.txt and its hard link
        JsonNode m = r.get("matches").get(0);
        assertThat(m.get("line_number").asInt()).isEqualTo(2);
        assertThat(m.get("line_text").asText()).isEqualTo("second line\n");
        assertThat(m.get("submatches").get(0).get("start").asInt()).isZero();
        assertThat(m.get("submatches").get(0).get("end").asInt()).isEqualTo(6);
        assertThat(s.get(s.tokenA, "/v1/inspect/" + image + "/grep?pattern=HELLO&case=insensitive&glob=hello.*").json().get("matches")).hasSize(1);
        assertThat(s.get(s.tokenA, "/v1/inspect/" + image + "/grep?pattern=cd").json().get("matches")).isEmpty(); // binary skipped
        assertThat(s.get(s.tokenA, "/v1/inspect/" + image + "/grep?pattern=e&max_total=1").json().get("truncated").asBoolean()).isTrue();
        assertThat(status("/grep")).isEqualTo(400);
        assertThat(status("/grep?pattern=(unclosed")).isEqualTo(400);
        assertThat(status("/grep?pattern=x&max_count=-2")).isEqualTo(400);
    }

    @Test
    void anotherAccountSeesNothing() {
        for (String p : List.of("/", "/list?path=/", "/download?path=/etc/passwd", "/archive?path=/", "/grep?pattern=root")) {
            assertThat(s.get(s.tokenB, "/v1/inspect/" + image + p).status()).as(p).isEqualTo(404);
        }
        assertThat(s.get(s.tokenB, "/v1/images/" + image + "/lineage").status()).isEqualTo(404);
        assertThat(s.get(s.tokenB, "/v1/inspect/" + image + "/diff/" + image).status()).isEqualTo(404);
    }
}
