package dev.contree.inspect;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import dev.contree.linux.Dir;
import dev.contree.linux.Linux;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * File names are bytes: names that are not UTF-8 (and one with a newline) are listed, archived byte for byte,
 * found by grep and diff, and downloadable through percent-encoded bytes. And no error names a host path.
 */
class InspectNamesTest {
    static final byte[] FFFE = {(byte) 0xff, (byte) 0xfe};
    static final byte[] CAFE = {'c', 'a', 'f', (byte) 0xe9};
    static final byte[] NEWLINE = "new\nline".getBytes(StandardCharsets.UTF_8);
    @TempDir static Path dir;
    static TestServer s;
    static String base, named, doomed;

    @BeforeAll
    static void start() throws Exception {
        s = new TestServer(dir);
        base = s.importRootfs(s.tokenA, InspectLimitsTest.rootfsWith("names-base"), "base");
        named = s.importRootfs(s.tokenA, InspectApiTest.awkwardRootfs(), "named");
        doomed = s.importRootfs(s.tokenA, InspectLimitsTest.rootfsWith("doomed"), "doomed");
        HostLayers.edit(s, s.tokenA, named, diff -> {
            try (Dir d = Dir.open(diff, "/")) {
                write(d, new Dir.Name(FFFE), "root in ff fe\n");
                d.mkdir(new Dir.Name(CAFE), 0755);
                try (Dir cafe = d.openDir(new Dir.Name(CAFE))) {
                    write(cafe, Dir.Name.of("x"), "root in cafe\n");
                }
                write(d, new Dir.Name(NEWLINE), "root in newline\n");
                d.symlink(FFFE, Dir.Name.of("to-fffe"));
            }
        });
    }

    @AfterAll
    static void stop() {
        s.close();
    }

    static void write(Dir d, Dir.Name name, String content) throws IOException {
        int fd = d.openFile(name, Linux.O_WRONLY | Linux.O_CREAT | Linux.O_EXCL, 0644);
        try (FileChannel ch = Dir.channel(fd, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(content.getBytes(StandardCharsets.UTF_8)));
        } finally {
            Linux.close(fd);
        }
    }

    static String b64(byte[] b) {
        return Base64.getEncoder().encodeToString(b);
    }

    @Test
    void listShowsEscapedNamesWithTheirExactBytes() {
        JsonNode files = s.get(s.tokenA, "/v1/inspect/" + named + "/list?path=/").json().get("files");
        Map<String, JsonNode> byPath = new HashMap<>();
        files.forEach(f -> byPath.put(f.get("path").asText(), f));
        assertThat(byPath.get("\\xff\\xfe").get("path_bytes").asText()).isEqualTo(b64(FFFE));
        assertThat(byPath.get("caf\\xe9").get("path_bytes").asText()).isEqualTo(b64(CAFE));
        assertThat(byPath.get("caf\\xe9").get("is_dir").asBoolean()).isTrue();
        assertThat(byPath.get("new\nline").has("path_bytes")).isFalse(); // valid UTF-8: the name itself
        assertThat(byPath.get("etc").has("path_bytes")).isFalse();
        JsonNode link = byPath.get("to-fffe");
        assertThat(link.get("symlink_to").asText()).isEqualTo("\\xff\\xfe");
        assertThat(link.get("symlink_to_bytes").asText()).isEqualTo(b64(FFFE));
        // a directory whose name is not UTF-8 is listable by its percent-encoded bytes
        JsonNode cafe = s.get(s.tokenA, "/v1/inspect/" + named + "/list?path=/caf%E9").json();
        assertThat(cafe.get("path").asText()).isEqualTo("/caf\\xe9");
        assertThat(cafe.get("path_bytes").asText()).isEqualTo(b64("/caf".getBytes(StandardCharsets.UTF_8), 0xe9));
        assertThat(cafe.get("files").get(0).get("path").asText()).isEqualTo("x");
    }

    static String b64(byte[] prefix, int last) {
        byte[] b = java.util.Arrays.copyOf(prefix, prefix.length + 1);
        b[prefix.length] = (byte) last;
        return b64(b);
    }

    @Test
    void downloadAddressesRawBytesByPercentEncoding() {
        assertThat(s.get(s.tokenA, "/v1/inspect/" + named + "/download?path=/%FF%FE").text()).isEqualTo("root in ff fe\n");
        assertThat(s.get(s.tokenA, "/v1/inspect/" + named + "/download?path=/caf%E9/x").text()).isEqualTo("root in cafe\n");
        assertThat(s.get(s.tokenA, "/v1/inspect/" + named + "/download?path=/new%0Aline").text()).isEqualTo("root in newline\n");
        assertThat(s.get(s.tokenA, "/v1/inspect/" + named + "/download?path=/to-fffe").text()).isEqualTo("root in ff fe\n");
        assertThat(s.head(s.tokenA, "/v1/inspect/" + named + "/download?path=/%FF%FD").status()).isEqualTo(404);
        // U+FFFD is not the byte 0xFF: no lossy match
        assertThat(s.get(s.tokenA, "/v1/inspect/" + named + "/download?path=/%EF%BF%BD%EF%BF%BD").status()).isEqualTo(404);
    }

    @Test
    void archiveCarriesTheExactBytes() throws Exception {
        TestServer.Reply r = s.get(s.tokenA, "/v1/inspect/" + named + "/archive?path=/");
        assertThat(r.status()).isEqualTo(200);
        Map<String, TarArchiveEntry> members = new HashMap<>();
        Map<String, byte[]> contents = new HashMap<>();
        try (TarArchiveInputStream tar = new TarArchiveInputStream(new ByteArrayInputStream(r.body()), "ISO-8859-1")) {
            TarArchiveEntry e;
            while ((e = tar.getNextEntry()) != null) {
                // GNU long names and ustar names decode as ISO-8859-1 (one char per byte); PAX paths as UTF-8
                members.put(e.getName(), e);
                contents.put(e.getName(), tar.readAllBytes());
            }
        }
        String fffe = new String(FFFE, StandardCharsets.ISO_8859_1), cafe = new String(CAFE, StandardCharsets.ISO_8859_1);
        assertThat(members).containsKeys(fffe, cafe + "/", cafe + "/x", "new\nline", "etc/passwd");
        assertThat(new String(contents.get(cafe + "/x"), StandardCharsets.UTF_8)).isEqualTo("root in cafe\n");
        assertThat(members.get("to-fffe").getLinkName()).isEqualTo(fffe);
        // GNU tar agrees, byte for byte
        Path tarFile = dir.resolve("names.tar");
        Files.write(tarFile, r.body());
        ProcessBuilder pb = new ProcessBuilder("tar", "--quoting-style=literal", "-tf", tarFile.toString());
        pb.environment().put("LC_ALL", "C");
        Process p = pb.redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        assertThat(p.waitFor()).isZero();
        String listing = new String(out, StandardCharsets.ISO_8859_1);
        assertThat(listing).contains("\n" + fffe + "\n", "\n" + cafe + "/x\n", "\nnew\nline\n");
    }

    @Test
    void grepAndDiffReportTheNamesWithTheirBytes() {
        JsonNode g = s.get(s.tokenA, "/v1/inspect/" + named + "/grep?pattern=root%20in").json();
        Map<String, String> bytesByPath = new HashMap<>();
        g.get("matches").forEach(m -> bytesByPath.put(m.get("path").asText(), m.has("path_bytes") ? m.get("path_bytes").asText() : null));
        assertThat(bytesByPath).containsEntry("/\\xff\\xfe", b64(new byte[] {'/', (byte) 0xff, (byte) 0xfe}))
                .containsEntry("/caf\\xe9/x", b64(new byte[] {'/', 'c', 'a', 'f', (byte) 0xe9, '/', 'x'}))
                .containsEntry("/new\nline", null);
        JsonNode d = s.get(s.tokenA, "/v1/inspect/" + base + "/diff/" + named).json();
        List<String> added = new ArrayList<>();
        d.get("added").forEach(a -> added.add(a.get("path").asText() + (a.has("path_bytes") ? "=" + a.get("path_bytes").asText() : "")));
        assertThat(added).contains("/\\xff\\xfe=" + b64(new byte[] {'/', (byte) 0xff, (byte) 0xfe}), "/new\nline", "/to-fffe");
    }

    @Test
    void errorsNeverNameHostPaths() throws Exception {
        String i = "/v1/inspect/" + named;
        List<TestServer.Reply> replies = new ArrayList<>();
        replies.add(s.get(s.tokenA, i + "/list?path=/missing"));
        replies.add(s.get(s.tokenA, i + "/list?path=/etc/passwd/under-a-file"));
        replies.add(s.get(s.tokenA, i + "/download?path=/etc/passwd/under-a-file"));
        replies.add(s.get(s.tokenA, i + "/list?path=/data/loop1"));
        replies.add(s.get(s.tokenA, i + "/download?path=/data/loop1"));
        replies.add(s.get(s.tokenA, i + "/archive?path=/data/loop1/x"));
        replies.add(s.get(s.tokenA, i + "/list?path=/" + "a".repeat(5000)));
        replies.add(s.get(s.tokenA, i + "/list?path=/" + "b".repeat(300)));
        replies.add(s.get(s.tokenA, i + "/download?path=/etc/%00x"));
        replies.add(s.get(s.tokenA, i + "/download?path=/etc"));
        replies.add(s.get(s.tokenA, i + "/download?path=/data/pipe"));
        replies.add(s.get(s.tokenA, i + "/grep?pattern=(a)%5C1"));
        replies.add(s.get(s.tokenA, i + "/grep?pattern=x&path=/data/loop2"));
        for (TestServer.Reply r : replies) assertThat(r.status()).as(r.text()).isBetween(400, 499);
        // a layer gone from under an image: 410, still no host path
        Path layer = HostLayers.topLayer(s, doomed).getParent();
        Process p = new ProcessBuilder("btrfs", "subvolume", "delete", layer.toString()).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        assertThat(p.waitFor()).isZero();
        for (String op : List.of("/list?path=/", "/download?path=/etc/marker", "/archive?path=/", "/grep?pattern=x")) {
            TestServer.Reply r = s.get(s.tokenA, "/v1/inspect/" + doomed + op);
            assertThat(r.status()).as(op + " " + r.text()).isEqualTo(410);
            replies.add(r);
        }
        TestServer.Reply diff = s.get(s.tokenA, "/v1/inspect/" + base + "/diff/" + doomed);
        assertThat(diff.status()).isEqualTo(410);
        replies.add(diff);
        for (TestServer.Reply r : replies) {
            assertThat(r.json().get("error").asText()).isNotEmpty();
            assertThat(r.text()).doesNotContain(s.dataDir.toString()).doesNotContain("/layers/").doesNotContain(".pending-")
                    .doesNotContain("/proc/self/fd");
        }
    }
}
