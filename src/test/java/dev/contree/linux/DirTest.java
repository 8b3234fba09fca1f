package dev.contree.linux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DirTest {
    @TempDir Path tmp;

    @Test
    void neverFollowsSymlinksAndStaysBeneath() throws Exception {
        Path root = Files.createDirectory(tmp.resolve("root"));
        Path host = Files.createDirectory(tmp.resolve("host"));
        Files.writeString(host.resolve("victim"), "");
        Files.createDirectories(root.resolve("a/b"));
        Files.createSymbolicLink(root.resolve("abs"), host);
        Files.createSymbolicLink(root.resolve("rel"), Path.of("../host"));
        Files.createSymbolicLink(root.resolve("a/up"), Path.of(".."));
        try (Dir d = Dir.open(root, "/")) {
            try (Dir ab = d.openDir("a/b")) {
                assertThat(ab.label()).isEqualTo("/a/b");
                assertThat(ab.isEmpty()).isTrue();
            }
            for (String hostile : new String[] {"abs", "rel", "a/up", "a/up/abs", "abs/x"}) {
                assertThatThrownBy(() -> d.openDir(hostile)).isInstanceOf(Linux.ErrnoException.class)
                        .satisfies(e -> assertThat(((Linux.ErrnoException) e).errno()).isIn(Linux.ELOOP, Linux.EXDEV, Linux.ENOTDIR));
            }
            assertThatThrownBy(() -> d.openDir("../host")).isInstanceOf(Linux.ErrnoException.class)
                    .extracting(e -> ((Linux.ErrnoException) e).errno()).isEqualTo(Linux.EXDEV);
            assertThat(d.openDirOrNull("missing/x")).isNull();
            // Operations on a name act on the link itself.
            Dir.Name abs = Dir.Name.of("abs");
            assertThat(d.statOrNull(abs).isSymlink()).isTrue();
            assertThatThrownBy(() -> d.openFile(abs, Linux.O_RDONLY, 0)).isInstanceOf(Linux.ErrnoException.class)
                    .extracting(e -> ((Linux.ErrnoException) e).errno()).isEqualTo(Linux.ELOOP);
            d.deleteRecursively(abs);
            assertThat(d.statOrNull(abs)).isNull();
            assertThat(host.resolve("victim")).exists();
            assertThatThrownBy(() -> d.openDir("a/nope")).hasMessageContaining("/a/nope").hasMessageNotContaining(tmp.toString());
        }
    }

    @Test
    void namesAreBytes() throws Exception {
        Path root = Files.createDirectory(tmp.resolve("root"));
        byte[] latin1 = {'f', (byte) 0xe9, (byte) 0xff, 'x'}; // not UTF-8
        Dir.Name odd = new Dir.Name(latin1);
        assertThat(odd.isUtf8()).isFalse();
        assertThat(Dir.Name.of("é").isUtf8()).isTrue();
        try (Dir d = Dir.open(root, "/")) {
            int fd = d.openFile(odd, Linux.O_WRONLY | Linux.O_CREAT | Linux.O_EXCL, 0640);
            try (var ch = Dir.channel(fd, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.wrap("data".getBytes()));
            } finally {
                Linux.close(fd);
            }
            d.mkdir(new Dir.Name(new byte[] {(byte) 0x80}), 0755);
            d.symlink(new byte[] {'/', (byte) 0xfe}, Dir.Name.of("link"));
            assertThat(d.listSorted()).containsExactly(new Dir.Name(latin1), Dir.Name.of("link"), new Dir.Name(new byte[] {(byte) 0x80}));
            assertThat(d.readlink(Dir.Name.of("link"))).containsExactly('/', 0xfe);
            Linux.Stat st = d.statOrNull(odd);
            assertThat(st.size()).isEqualTo(4);
            assertThat(st.mode() & 07777).isEqualTo(0640);
            d.setxattr(odd, "trusted.t", new byte[] {1});
            assertThat(d.getxattr(odd, "trusted.t")).containsExactly(1);
            assertThat(d.listxattr(odd)).contains("trusted.t");
            d.chown(Dir.Name.of("link"), 7, 8);
            assertThat(d.statOrNull(Dir.Name.of("link")).uid()).isEqualTo(7);
            d.link(d, odd, Dir.Name.of("hard"));
            assertThat(d.statOrNull(odd).nlink()).isEqualTo(2);
            d.rename(Dir.Name.of("hard"), d, Dir.Name.of("hard2"));
            d.deleteRecursively(new Dir.Name(new byte[] {(byte) 0x80}));
            assertThat(d.list()).hasSize(3);
        }
        assertThatThrownBy(() -> Dir.Name.of("a/b")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Dir.Name.of("..")).isInstanceOf(IllegalArgumentException.class);
    }
}
