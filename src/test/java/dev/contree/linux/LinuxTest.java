package dev.contree.linux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LinuxTest {
    @TempDir Path tmp;

    @Test
    void devicesXattrsOwnershipAndSymlinkTimes() throws Exception {
        Path dev = tmp.resolve("tty");
        Linux.mknod(dev, Linux.S_IFCHR | 0620, Linux.makedev(4, 300));
        Linux.Stat st = Linux.lstat(dev);
        assertThat(st.type()).isEqualTo(Linux.S_IFCHR);
        assertThat(st.rdevMajor()).isEqualTo(4);
        assertThat(st.rdevMinor()).isEqualTo(300);
        assertThat(st.isWhiteout()).isFalse();
        assertThatThrownBy(() -> Linux.mknod(dev, Linux.S_IFIFO, 0))
                .isInstanceOf(Linux.ErrnoException.class).hasMessageContaining("File exists")
                .extracting(e -> ((Linux.ErrnoException) e).errno()).isEqualTo(Linux.EEXIST);

        Path target = Files.writeString(tmp.resolve("target"), "t");
        Path link = Files.createSymbolicLink(tmp.resolve("link"), target);
        Linux.lsetxattr(link, "trusted.x", new byte[] {0, (byte) 0xff});
        assertThat(Linux.lgetxattr(link, "trusted.x")).containsExactly(0, 0xff);
        assertThat(Linux.lgetxattr(target, "trusted.x")).isNull();
        assertThat(Linux.llistxattr(link)).contains("trusted.x");
        Linux.lchown(link, 123, 456);
        Linux.lutimes(link, 1, 0, 1_234_567, 89);
        Linux.Stat ls = Linux.lstat(link);
        assertThat(ls.isSymlink()).isTrue();
        assertThat(ls.uid()).isEqualTo(123);
        assertThat(ls.mtimeSec()).isEqualTo(1_234_567);
        assertThat(ls.mtimeNsec()).isEqualTo(89);
        assertThat(Linux.lstat(target).uid()).isEqualTo(0);
        assertThatThrownBy(() -> Linux.lchmod(link, 0777)).isInstanceOf(Linux.ErrnoException.class);
        Linux.lchmod(target, 06755);
        assertThat(Linux.lstat(target).mode()).isEqualTo(0106755);
        assertThat(Linux.lstatOrNull(tmp.resolve("missing"))).isNull();
        assertThat(Linux.lstatOrNull(target.resolve("under-a-file"))).isNull();
    }
}
