package dev.contree.layerformat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.github.luben.zstd.ZstdOutputStream;
import dev.contree.linux.Linux;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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
        try (var s = Files.walk(layer)) {
            s.sorted(java.util.Comparator.reverseOrder()).filter(p -> !p.equals(layer)).forEach(p -> p.toFile().delete());
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
}
