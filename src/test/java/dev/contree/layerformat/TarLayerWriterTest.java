package dev.contree.layerformat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.github.luben.zstd.ZstdOutputStream;
import dev.contree.linux.Dir;
import dev.contree.linux.Linux;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import java.util.zip.GZIPOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static dev.contree.layerformat.RawTar.b;

class TarLayerWriterTest {
    @TempDir Path tmp;
    Path layer, outside;

    @BeforeEach
    void dirs() throws IOException {
        layer = Files.createDirectory(tmp.resolve("layer"));
        outside = Files.createDirectory(tmp.resolve("outside"));
    }

    /** Builds a tar from (name, type, linkOrContent) triples. */
    static byte[] tar(String... spec) throws IOException {
        ByteArrayOutputStream bo = new ByteArrayOutputStream();
        try (TarArchiveOutputStream t = new TarArchiveOutputStream(bo)) {
            t.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
            for (int i = 0; i < spec.length; i += 3) {
                String name = spec[i], type = spec[i + 1], arg = spec[i + 2];
                TarArchiveEntry e;
                byte[] data = new byte[0];
                switch (type) {
                    case "dir" -> e = new TarArchiveEntry(name + "/", TarConstants.LF_DIR, true);
                    case "sym" -> { e = new TarArchiveEntry(name, TarConstants.LF_SYMLINK, true); e.setLinkName(arg); }
                    case "hard" -> { e = new TarArchiveEntry(name, TarConstants.LF_LINK, true); e.setLinkName(arg); }
                    default -> {
                        e = new TarArchiveEntry(name, TarConstants.LF_NORMAL, true);
                        data = arg.getBytes(StandardCharsets.UTF_8);
                        e.setSize(data.length);
                    }
                }
                t.putArchiveEntry(e);
                t.write(data);
                t.closeArchiveEntry();
            }
        }
        return bo.toByteArray();
    }

    void unpack(byte[] tar) throws IOException {
        new TarLayerWriter(layer).write(new ByteArrayInputStream(tar));
    }

    @Test
    void rejectsDotDot() throws IOException {
        assertThatThrownBy(() -> unpack(tar("../outside/x", "file", "pwned"))).isInstanceOf(LayerFormatException.class);
        assertThatThrownBy(() -> unpack(tar("a/../../outside/x", "file", "pwned"))).isInstanceOf(LayerFormatException.class);
        assertThat(outside).isEmptyDirectory();
        assertThat(tmp.resolve("x")).doesNotExist();
    }

    @Test
    void neverWritesThroughASymlink() throws IOException {
        assertThatThrownBy(() -> unpack(tar("l", "sym", outside.toString(), "l/evil", "file", "pwned")))
                .isInstanceOf(LayerFormatException.class).hasMessageContaining("symlink");
        assertThatThrownBy(() -> new TarLayerWriter(reset()).write(new ByteArrayInputStream(
                tar("l", "sym", "../outside", "l/sub/evil", "dir", ""))))
                .isInstanceOf(LayerFormatException.class);
        assertThatThrownBy(() -> new TarLayerWriter(reset()).write(new ByteArrayInputStream(
                tar("l", "sym", outside.toString(), "h", "hard", "l/secret"))))
                .isInstanceOf(LayerFormatException.class);
        assertThat(outside).isEmptyDirectory();
    }

    @Test
    void symlinkReplacedByFileIsNotFollowed() throws IOException {
        Path victim = Files.writeString(outside.resolve("victim"), "safe");
        unpack(tar("l", "sym", victim.toString(), "l", "file", "new content"));
        assertThat(Files.readString(victim)).isEqualTo("safe");
        assertThat(Files.isSymbolicLink(layer.resolve("l"))).isFalse();
        assertThat(Files.readString(layer.resolve("l"))).isEqualTo("new content");
    }

    @Test
    void rejectsHardLinksOutOfTheLayer() throws IOException {
        Files.writeString(outside.resolve("secret"), "s");
        assertThatThrownBy(() -> unpack(tar("h", "hard", "../outside/secret"))).isInstanceOf(LayerFormatException.class);
        assertThatThrownBy(() -> new TarLayerWriter(reset()).write(new ByteArrayInputStream(tar("h", "hard", "missing"))))
                .isInstanceOf(LayerFormatException.class).hasMessageContaining("not in this layer");
        assertThatThrownBy(() -> new TarLayerWriter(reset()).write(new ByteArrayInputStream(tar("h", "hard", "/"))))
                .isInstanceOf(LayerFormatException.class);
    }

    private Path reset() throws IOException {
        try (Dir d = Dir.open(layer, "/")) {
            for (Dir.Name n : d.list()) d.deleteRecursively(n); // names may not be UTF-8: Path cannot hold them
        }
        return layer;
    }

    @Test
    void whiteoutsOpaqueAbsoluteNamesAndReplacement() throws IOException {
        unpack(tar("/abs/file", "file", "abs",
                "./d/.wh..wh..opq", "file", "",
                "d/.wh.gone", "file", "",
                "x", "file", "first",
                "x", "dir", "",
                "x/in", "file", "in",
                "y", "dir", "",
                "y/z", "file", "z",
                "y", "file", "y is a file now",
                "f", "file", "hard",
                "g", "hard", "f"));
        assertThat(Files.readString(layer.resolve("abs/file"))).isEqualTo("abs");
        assertThat(Linux.lgetxattr(layer.resolve("d"), "trusted.overlay.opaque")).containsExactly('y');
        Linux.Stat wh = Linux.lstat(layer.resolve("d/gone"));
        assertThat(wh.isWhiteout()).isTrue();
        assertThat(layer.resolve("d/.wh.gone")).doesNotExist();
        assertThat(Files.readString(layer.resolve("x/in"))).isEqualTo("in");
        assertThat(Files.readString(layer.resolve("y"))).isEqualTo("y is a file now");
        assertThat(Linux.lstat(layer.resolve("g")).ino()).isEqualTo(Linux.lstat(layer.resolve("f")).ino());
    }

    @Test
    void keepsMetadataDevicesAndXattrs() throws IOException {
        ByteArrayOutputStream bo = new ByteArrayOutputStream();
        byte[] cap = {1, 0, 0, 2, (byte) 0x80, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        try (TarArchiveOutputStream t = new TarArchiveOutputStream(bo)) {
            t.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
            TarArchiveEntry d = new TarArchiveEntry("dir/", TarConstants.LF_DIR, true);
            d.setMode(01777);
            d.setModTime(1_500_000_000_000L);
            t.putArchiveEntry(d);
            t.closeArchiveEntry();
            TarArchiveEntry f = new TarArchiveEntry("dir/suid", TarConstants.LF_NORMAL, true);
            f.setMode(04755);
            f.setUserId(3_000_000);
            f.setGroupId(77);
            f.setSize(2);
            f.setModTime(1_400_000_000_000L);
            f.addPaxHeader("SCHILY.xattr.user.note", "hello");
            f.addPaxHeader("LIBARCHIVE.xattr.security.capability", java.util.Base64.getEncoder().encodeToString(cap));
            f.addPaxHeader("SCHILY.xattr.trusted.overlay.redirect", "/etc");
            t.putArchiveEntry(f);
            t.write("hi".getBytes());
            t.closeArchiveEntry();
            TarArchiveEntry c = new TarArchiveEntry("dir/null", TarConstants.LF_CHR, true);
            c.setDevMajor(1);
            c.setDevMinor(3);
            c.setMode(0666);
            t.putArchiveEntry(c);
            t.closeArchiveEntry();
            TarArchiveEntry p = new TarArchiveEntry("dir/fifo", TarConstants.LF_FIFO, true);
            t.putArchiveEntry(p);
            t.closeArchiveEntry();
        }
        ByteArrayOutputStream gz = new ByteArrayOutputStream();
        try (OutputStream o = new GZIPOutputStream(gz)) { o.write(bo.toByteArray()); }
        new TarLayerWriter(layer).write(TarLayerWriter.decompressing(new ByteArrayInputStream(gz.toByteArray())));

        Linux.Stat dir = Linux.lstat(layer.resolve("dir"));
        assertThat(dir.mode() & 07777).isEqualTo(01777);
        assertThat(dir.mtimeSec()).isEqualTo(1_500_000_000L);
        Linux.Stat suid = Linux.lstat(layer.resolve("dir/suid"));
        assertThat(suid.mode()).isEqualTo(0104755);
        assertThat(suid.uid()).isEqualTo(3_000_000);
        assertThat(suid.gid()).isEqualTo(77);
        assertThat(suid.mtimeSec()).isEqualTo(1_400_000_000L);
        assertThat(Linux.lgetxattr(layer.resolve("dir/suid"), "user.note")).isEqualTo("hello".getBytes());
        assertThat(Linux.lgetxattr(layer.resolve("dir/suid"), "security.capability")).isEqualTo(cap);
        assertThat(Linux.lgetxattr(layer.resolve("dir/suid"), "trusted.overlay.redirect")).isNull();
        Linux.Stat nul = Linux.lstat(layer.resolve("dir/null"));
        assertThat(nul.type()).isEqualTo(Linux.S_IFCHR);
        assertThat(nul.rdevMajor()).isEqualTo(1);
        assertThat(nul.rdevMinor()).isEqualTo(3);
        assertThat(Linux.lstat(layer.resolve("dir/fifo")).type()).isEqualTo(Linux.S_IFIFO);
    }

    @Test
    void sniffsZstd() throws IOException {
        ByteArrayOutputStream z = new ByteArrayOutputStream();
        try (OutputStream o = new ZstdOutputStream(z)) { o.write(tar("a", "file", "zstd!")); }
        new TarLayerWriter(layer).write(TarLayerWriter.decompressing(new ByteArrayInputStream(z.toByteArray())));
        assertThat(Files.readString(layer.resolve("a"))).isEqualTo("zstd!");
    }

    @Test
    void plainRootfsKeepsWhiteoutNames() throws IOException {
        new TarLayerWriter(layer, false).write(new ByteArrayInputStream(tar(".wh.x", "file", "plain")));
        assertThat(Files.readString(layer.resolve(".wh.x"))).isEqualTo("plain");
    }

    @Test
    void refusesANonEmptyTarget() throws IOException {
        Files.writeString(layer.resolve("x"), "");
        assertThatThrownBy(() -> new TarLayerWriter(layer)).hasMessageContaining("not empty");
    }

    // ------------------------------------------------------------------------------------------------ names are bytes

    /** The names in {@code rel} (a byte path) of the layer, sorted by their bytes. */
    List<Dir.Name> names(byte[] rel) throws IOException {
        try (Dir root = Dir.open(layer, "/"); Dir d = root.openDir(rel, "x")) {
            return d.listSorted();
        }
    }

    Linux.Stat stat(byte[] parent, byte[] name) throws IOException {
        try (Dir root = Dir.open(layer, "/"); Dir d = root.openDir(parent, "x")) {
            return d.statOrNull(new Dir.Name(name));
        }
    }

    byte[] read(byte[] parent, byte[] name) throws IOException {
        try (Dir root = Dir.open(layer, "/"); Dir d = root.openDir(parent, "x")) {
            int fd = d.openFile(new Dir.Name(name), Linux.O_RDONLY, 0);
            try (var ch = Dir.channel(fd, java.nio.file.StandardOpenOption.READ)) {
                return java.nio.channels.Channels.newInputStream(ch).readAllBytes();
            } finally {
                Linux.close(fd);
            }
        }
    }

    byte[] readlink(byte[] parent, byte[] name) throws IOException {
        try (Dir root = Dir.open(layer, "/"); Dir d = root.openDir(parent, "x")) {
            return d.readlink(new Dir.Name(name));
        }
    }

    static Dir.Name n(String latin1) {
        return new Dir.Name(b(latin1));
    }

    @Test
    void nonUtf8NamesFromUstarGnuLongNamesAndPaxLandAsTheirBytes() throws IOException {
        String longName = "n".repeat(120) + "\u00fe"; // > 100 bytes: needs a GNU L header
        String longPax = "p".repeat(150) + "\u00ff";
        unpack(new RawTar()
                .dir(b("d"), 0755)
                .file(b("d/\u00ff\u00fe"), b("ustar"), 0644)                     // ustar name field
                .dir(b("d/caf\u00e9"), 0755)
                .file(b("d/caf\u00e9/in"), b("below"), 0644)
                .gnuLong('L', b("d/" + longName)).file(b("ignored"), b("gnu"), 0644)
                .pax('x', "path", b("d/go\u00e9\u00ff")).file(b("placeholder"), b("go"), 0644) // what Go's archive/tar writes
                .pax('x', "hdrcharset", "BINARY", "path", b("d/" + longPax)).file(b("placeholder2"), b("bsd"), 0644)
                .pax('x', "path", "d/\u00e9t\u00e9").file(b("placeholder3"), b("utf8"), 0644)  // valid UTF-8 stays UTF-8
                .bytes());
        assertThat(names(b("d"))).containsExactly(n("caf\u00e9"), n("go\u00e9\u00ff"), n(longName), n(longPax),
                new Dir.Name("\u00e9t\u00e9".getBytes(StandardCharsets.UTF_8)), n("\u00ff\u00fe"));
        assertThat(read(b("d"), b("\u00ff\u00fe"))).isEqualTo(b("ustar"));
        assertThat(read(b("d/caf\u00e9"), b("in"))).isEqualTo(b("below"));
        assertThat(read(b("d"), b(longName))).isEqualTo(b("gnu"));
        assertThat(read(b("d"), b("go\u00e9\u00ff"))).isEqualTo(b("go"));
        assertThat(read(b("d"), b(longPax))).isEqualTo(b("bsd"));
        assertThat(names(b(""))).containsExactly(n("d")); // no placeholder landed
    }

    @Test
    void symlinkTargetsAndHardLinksKeepTheirBytes() throws IOException {
        String longTarget = "../" + "t".repeat(140) + "\u00fe";
        unpack(new RawTar()
                .file(b("caf\u00e9"), b("data"), 0644)
                .symlink(b("l\u00fe"), b("t\u00ff/x\u00e9"))                              // ustar linkname
                .gnuLong('K', b(longTarget)).symlink(b("lk"), b("ignored"))              // GNU long link
                .pax('x', "linkpath", b("/abs\u00ff")).symlink(b("lp"), b("ignored"))    // PAX linkpath, not UTF-8
                .hardlink(b("h\u00ff"), b("caf\u00e9"))                                   // ustar
                .pax('x', "path", b("h2\u00fe"), "linkpath", b("caf\u00e9")).hardlink(b("x"), b("x")) // PAX both
                .bytes());
        assertThat(readlink(b(""), b("l\u00fe"))).isEqualTo(b("t\u00ff/x\u00e9"));
        assertThat(readlink(b(""), b("lk"))).isEqualTo(b(longTarget));
        assertThat(readlink(b(""), b("lp"))).isEqualTo(b("/abs\u00ff"));
        long ino = stat(b(""), b("caf\u00e9")).ino();
        assertThat(stat(b(""), b("h\u00ff")).ino()).isEqualTo(ino);
        assertThat(stat(b(""), b("h2\u00fe")).ino()).isEqualTo(ino);
        assertThat(stat(b(""), b("caf\u00e9")).nlink()).isEqualTo(3);
    }

    @Test
    void whiteoutsAndOpaqueMarkersOfNonUtf8Names() throws IOException {
        unpack(new RawTar()
                .file(b("\u00ff\u00fe"), b("lower?"), 0644)
                .file(b(".wh.\u00ff\u00fe"), new byte[0], 0644)     // replaces the file of that name
                .file(b(".wh.caf\u00e9"), new byte[0], 0644)
                .dir(b("d\u00e9"), 0755)
                .file(b("d\u00e9/.wh..wh..opq"), new byte[0], 0644)
                .pax('x', "path", b("d\u00e9/.wh.\u00fe")).file(b("p"), new byte[0], 0644)
                .bytes());
        assertThat(stat(b(""), b("\u00ff\u00fe")).isWhiteout()).isTrue();
        assertThat(stat(b(""), b("caf\u00e9")).isWhiteout()).isTrue();
        assertThat(stat(b("d\u00e9"), b("\u00fe")).isWhiteout()).isTrue();
        assertThat(names(b(""))).containsExactly(n("caf\u00e9"), n("d\u00e9"), n("\u00ff\u00fe"));
        try (Dir root = Dir.open(layer, "/")) {
            assertThat(root.getxattr(n("d\u00e9"), "trusted.overlay.opaque")).containsExactly('y');
        }
    }

    @Test
    void binaryXattrValuesInPaxRecordsSurvive() throws IOException {
        byte[] cap = {1, 0, 0, 2, (byte) 0x80, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}; // not UTF-8
        unpack(new RawTar()
                .pax('x', "SCHILY.xattr.security.capability", cap, "SCHILY.xattr.user.bin", new byte[] {(byte) 0xff, 0, (byte) 0xfe})
                .file(b("ping"), b("elf"), 0755)
                .bytes());
        try (Dir root = Dir.open(layer, "/")) {
            assertThat(root.getxattr(n("ping"), "security.capability")).isEqualTo(cap);
            assertThat(root.getxattr(n("ping"), "user.bin")).isEqualTo(new byte[] {(byte) 0xff, 0, (byte) 0xfe});
        }
    }

    /** GNU tar, the real tool, in its pax and gnu formats (it writes raw non-UTF-8 bytes into PAX path records). */
    @Test
    void gnuTarArchivesOfNonUtf8NamesRoundTrip() throws Exception {
        Path src = Files.createDirectory(tmp.resolve("src"));
        String script = "cd " + src + " && mkdir \"$(printf 'caf\\351')\" && printf a > \"$(printf 'caf\\351')/$(printf '\\377\\376')\""
                + " && ln -s \"$(printf 'tgt\\377')\" \"$(printf 'l\\376')\" && ln \"$(printf 'caf\\351')/$(printf '\\377\\376')\" \"$(printf 'h\\351')\""
                + " && printf b > \"$(printf 'x%.0s' $(seq 120))$(printf '\\351')\"";
        assertThat(new ProcessBuilder("bash", "-c", script).inheritIO().start().waitFor()).isZero();
        try (Dir d = Dir.open(src, "/")) {
            d.setxattr(n("h\u00e9"), "user.bin", new byte[] {(byte) 0xff, 0, (byte) 0xfe}); // GNU tar writes it raw
        }
        String longName = "x".repeat(120) + "\u00e9";
        for (String format : List.of("pax", "gnu")) {
            Path tar = tmp.resolve(format + ".tar");
            Process p = new ProcessBuilder("tar", "--format=" + format, "--xattrs", "--xattrs-include=user.*", "-cf", tar.toString(),
                    "-C", src.toString(), ".").inheritIO().start();
            assertThat(p.waitFor()).isZero();
            reset();
            unpack(Files.readAllBytes(tar));
            if (format.equals("pax")) assertThat(new String(Files.readAllBytes(tar), StandardCharsets.ISO_8859_1))
                    .contains("path=./caf\u00e9/\u00ff\u00fe\n"); // the raw record commons-compress alone would mangle
            assertThat(names(b(""))).containsExactly(n("caf\u00e9"), n("h\u00e9"), n("l\u00fe"), n(longName));
            assertThat(read(b("caf\u00e9"), b("\u00ff\u00fe"))).isEqualTo(b("a"));
            assertThat(read(b(""), b(longName))).isEqualTo(b("b"));
            assertThat(readlink(b(""), b("l\u00fe"))).isEqualTo(b("tgt\u00ff"));
            assertThat(stat(b(""), b("h\u00e9")).ino()).isEqualTo(stat(b("caf\u00e9"), b("\u00ff\u00fe")).ino());
            try (Dir root = Dir.open(layer, "/")) {
                if (format.equals("pax")) // the gnu format has no place for xattrs
                    assertThat(root.getxattr(n("h\u00e9"), "user.bin")).isEqualTo(new byte[] {(byte) 0xff, 0, (byte) 0xfe});
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ hostile archives

    /** Every entry below {@code v}: type, mode, size, mtime, link target, content, opaque marker. */
    static Map<String, String> snapshot(Path v) throws IOException {
        Map<String, String> out = new TreeMap<>();
        try (Stream<Path> w = Files.walk(v)) {
            for (Path p : w.toList()) {
                Linux.Stat st = Linux.lstat(p);
                String extra = st.isSymlink() ? " -> " + Files.readSymbolicLink(p)
                        : st.isRegular() ? " " + Files.readString(p) : "";
                byte[] opq = Linux.lgetxattr(p, "trusted.overlay.opaque");
                out.put(v.relativize(p).toString(), Integer.toOctalString(st.mode()) + " " + st.size() + " " + st.mtimeSec() + "."
                        + st.mtimeNsec() + " " + st.nlink() + extra + (opq == null ? "" : " opaque"));
            }
        }
        return out;
    }

    /** Unpacks {@code tar} into a fresh layer; asserts it fails naming image paths only and leaves {@code outside} as it was. */
    void assertRefused(byte[] tar, String message) throws IOException {
        Map<String, String> before = snapshot(tmp.resolve("outside"));
        assertThatThrownBy(() -> new TarLayerWriter(reset()).write(new ByteArrayInputStream(tar)))
                .isInstanceOf(LayerFormatException.class).hasMessageContaining(message);
        assertThat(snapshot(tmp.resolve("outside"))).isEqualTo(before);
        assertThat(tmp.resolve("x")).doesNotExist();
    }

    @Test
    void hostileArchivesNeverReachOutsideTheLayer() throws IOException {
        Path victim = Files.writeString(outside.resolve("victim"), "safe");
        Files.createDirectory(outside.resolve("sub"));
        byte[] out = b(outside.toString()), vic = b(victim.toString());
        // an entry below a symlink the archive made (absolute and relative), also as a dir, whiteout, opaque marker
        assertRefused(new RawTar().symlink(b("l"), out).file(b("l/evil"), b("pwned"), 0644).bytes(),
                "archive writes through a non-directory: l is a symlink");
        assertRefused(new RawTar().symlink(b("l"), b("../outside")).dir(b("l/sub/deeper"), 0755).bytes(),
                "archive writes through a non-directory: l is a symlink");
        assertRefused(new RawTar().symlink(b("l\u00ff"), out).file(b("l\u00ff/.wh.victim"), new byte[0], 0644).bytes(),
                "archive writes through a non-directory: l\uFFFD is a symlink");
        assertRefused(new RawTar().symlink(b("l"), out).file(b("l/.wh..wh..opq"), new byte[0], 0644).bytes(),
                "archive writes through a non-directory: l is a symlink");
        assertRefused(new RawTar().symlink(b("l"), out).symlink(b("l/s"), b("/")).bytes(), "l is a symlink");
        // `..` in names, PAX paths and link targets
        assertRefused(new RawTar().file(b("../x"), b("pwned"), 0644).bytes(), "archive path escapes the layer: ../x");
        assertRefused(new RawTar().file(b("a/../../x"), b("pwned"), 0644).bytes(), "archive path escapes the layer: a/../../x");
        assertRefused(new RawTar().pax('x', "path", b("../outside/victim")).file(b("ok"), b("pwned"), 0644).bytes(),
                "archive path escapes the layer: ../outside/victim");
        assertRefused(new RawTar().hardlink(b("h"), b("../outside/victim")).bytes(), "archive path escapes the layer");
        // a hard link through a symlink that points out
        assertRefused(new RawTar().symlink(b("s"), out).hardlink(b("h"), b("s/victim")).bytes(),
                "archive writes through a non-directory: s is a symlink");
        // a symlink replacing a directory, then an entry below it
        assertRefused(new RawTar().dir(b("d"), 0755).file(b("d/a"), b("a"), 0644).symlink(b("d"), out)
                .file(b("d/b"), b("pwned"), 0644).bytes(), "archive writes through a non-directory: d is a symlink");
        assertRefused(new RawTar().dir(b("d"), 0755).symlink(b("d"), out).hardlink(b("d/victim"), b("x")).bytes(),
                "archive writes through a non-directory: d is a symlink");
        // a NUL smuggled into a PAX path
        assertRefused(new RawTar().pax('x', "path", b("a\0/../../x")).file(b("ok"), b("pwned"), 0644).bytes(),
                "NUL byte in archive path");
        // messages name image paths, never where the layer lives on the host
        assertThatThrownBy(() -> new TarLayerWriter(reset()).write(new ByteArrayInputStream(
                new RawTar().symlink(b("l"), b("../outside")).file(b("l/evil"), b("x"), 0644).bytes())))
                .hasMessageNotContaining(layer.toString());
        assertThat(Files.readString(victim)).isEqualTo("safe");
    }

    @Test
    void hostileButHarmlessArchivesStayInside() throws IOException {
        Path victim = Files.writeString(outside.resolve("victim"), "safe");
        Map<String, String> before = snapshot(outside);
        byte[] out = b(outside.toString()), vic = b(victim.toString());
        // absolute names are made relative to the layer (like GNU tar)
        unpack(new RawTar().file(b(outside + "/victim"), b("inside"), 0644).bytes());
        assertThat(Files.readString(layer.resolve(outside.toString().substring(1) + "/victim"))).isEqualTo("inside");
        // a hard link to a symlink that points out links the symlink itself; replacing it never writes through
        reset();
        unpack(new RawTar().symlink(b("s"), vic).hardlink(b("h"), b("s")).file(b("s"), b("replaced"), 0644)
                .file(b("h"), b("replaced too"), 0644).bytes());
        assertThat(Files.readString(layer.resolve("h"))).isEqualTo("replaced too");
        assertThat(snapshot(outside)).isEqualTo(before);
        reset();
        unpack(new RawTar().symlink(b("s"), vic).hardlink(b("h"), b("s")).bytes());
        assertThat(Linux.lstat(layer.resolve("h")).isSymlink()).isTrue();
        assertThat(Linux.lstat(layer.resolve("h")).ino()).isEqualTo(Linux.lstat(layer.resolve("s")).ino());
        assertThat(Files.readSymbolicLink(layer.resolve("h")).toString()).isEqualTo(victim.toString());
        // a directory entry over an existing symlink replaces the link; entries below land in the new directory
        reset();
        unpack(new RawTar().symlink(b("l"), out).dir(b("l"), 0700).file(b("l/x"), b("in"), 0644)
                .symlink(b("m"), out).file(b("m"), b("file over link"), 0644).bytes());
        assertThat(Linux.lstat(layer.resolve("l")).isDir()).isTrue();
        assertThat(Files.readString(layer.resolve("l/x"))).isEqualTo("in");
        assertThat(Files.readString(layer.resolve("m"))).isEqualTo("file over link");
        assertThat(snapshot(outside)).isEqualTo(before);
        assertThat(Files.readString(victim)).isEqualTo("safe");
    }

    @Test
    void oversizedHeaderExtensionsAreRefused() throws IOException {
        for (char type : new char[] {'x', 'g', 'L', 'K'}) {
            byte[] tar = new RawTar().sized(type, ByteNameTarInputStream.MAX_META_HEADER + 1).file(b("f"), b("x"), 0644).bytes();
            assertThatThrownBy(() -> new TarLayerWriter(reset()).write(new ByteArrayInputStream(tar)))
                    .as("type %s", type).isInstanceOf(LayerFormatException.class).hasMessageContaining("tar header extension");
        }
    }

    @Test
    void globalPaxRecordsApplyUntilOverridden() throws IOException {
        byte[] v = {(byte) 0xfe, 1};
        unpack(new RawTar()
                .pax('g', "SCHILY.xattr.user.g", v)
                .file(b("a"), b("a"), 0644)
                .pax('x', "SCHILY.xattr.user.g", b("local"), "path", b("b\u00ff")).file(b("p"), b("b"), 0644)
                .bytes());
        try (Dir root = Dir.open(layer, "/")) {
            assertThat(root.getxattr(n("a"), "user.g")).isEqualTo(v);
            assertThat(root.getxattr(n("b\u00ff"), "user.g")).isEqualTo(b("local"));
        }
    }

    // ------------------------------------------------------------------ the pack format (layers fetched from an object store)

    /** A pack is as hostile as a registry layer: the same escapes are refused, nothing lands outside the layer. */
    @Test
    void aPackIsUnpackedAsHostileInput() throws IOException {
        assertThatThrownBy(() -> TarLayerWriter.forPack(layer).write(new ByteArrayInputStream(
                tar("l", "sym", outside.toString(), "l/evil", "file", "pwned")))).isInstanceOf(LayerFormatException.class)
                .hasMessageContaining("symlink");
        Path again = Files.createDirectory(tmp.resolve("again"));
        assertThatThrownBy(() -> TarLayerWriter.forPack(again).write(new ByteArrayInputStream(tar("../outside/x", "file", "pwned"))))
                .isInstanceOf(LayerFormatException.class);
        assertThat(outside).isEmptyDirectory();
    }

    /**
     * In a pack {@code .wh.} names are ordinary files, a 0/0 character device is the whiteout, and of overlay's own
     * attributes only the opaque marker on a directory is applied.
     */
    @Test
    void aPackKeepsOverlayFormatAndOnlyTheOpaqueMarker() throws IOException {
        byte[] pack = new RawTar()
                .pax('x', "LIBARCHIVE.xattr.trusted.overlay.opaque", b("eQ==")).dir(b("opq"), 0755)
                .pax('x', "LIBARCHIVE.xattr.trusted.overlay.redirect", b("L2V0Yw==")).dir(b("moved"), 0755)
                .pax('x', "LIBARCHIVE.xattr.trusted.overlay.opaque", b("eQ==")).file(b("notadir"), b("x"), 0644)
                .file(b(".wh.kept"), b("a file"), 0644)
                .entry('3', b("gone"), b(""), new byte[0], 0)
                .bytes();
        TarLayerWriter.forPack(layer).write(new ByteArrayInputStream(pack));
        assertThat(dev.contree.linux.Linux.lgetxattr(layer.resolve("opq"), "trusted.overlay.opaque")).isEqualTo(new byte[] {'y'});
        assertThat(dev.contree.linux.Linux.lgetxattr(layer.resolve("moved"), "trusted.overlay.redirect")).isNull();
        assertThat(dev.contree.linux.Linux.lgetxattr(layer.resolve("notadir"), "trusted.overlay.opaque")).isNull();
        assertThat(Files.readString(layer.resolve(".wh.kept"))).isEqualTo("a file");
        assertThat(dev.contree.linux.Linux.lstatOrNull(layer.resolve("gone")).isWhiteout()).isTrue();
        // The same bytes through the registry path: the marker is ignored, .wh. is a whiteout.
        Path oci = Files.createDirectory(tmp.resolve("oci"));
        new TarLayerWriter(oci).write(new ByteArrayInputStream(pack));
        assertThat(dev.contree.linux.Linux.lgetxattr(oci.resolve("opq"), "trusted.overlay.opaque")).isNull();
        assertThat(dev.contree.linux.Linux.lstatOrNull(oci.resolve("kept")).isWhiteout()).isTrue();
    }
}
