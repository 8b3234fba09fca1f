package dev.contree.linux;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
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

    /** Open descriptors of this process. */
    static long openFds() throws Exception {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        }
    }

    /**
     * 20,000 levels (40,000 bytes of path): the stack reaches the bottom and comes back to the right directory at
     * every level (inode recorded on the way down), holding a bounded number of descriptors; deleteRecursively
     * removes the tree without recursion.
     */
    @Test
    void dirStackWalksAnyDepthWithBoundedDescriptors() throws Exception {
        int depth = 20_000;
        Dir.Name d = Dir.Name.of("d");
        long[] inodes = new long[depth + 1];
        long before = openFds();
        try (Dir root = Dir.open(Files.createDirectory(tmp.resolve("deep")), "/"); DirStack path = new DirStack(root)) {
            int maxOpen = 0;
            for (int i = 1; i <= depth; i++) {
                path.top().mkdir(d, 0755);
                inodes[i] = path.push(d).stat().ino();
                maxOpen = Math.max(maxOpen, path.openDescriptors());
            }
            assertThat(path.depth()).isEqualTo(depth);
            long during = openFds() - before;
            for (int i = depth; i >= 1; i--) {
                assertThat(path.top().stat().ino()).as("level " + i).isEqualTo(inodes[i]);
                maxOpen = Math.max(maxOpen, path.openDescriptors());
                path.pop();
            }
            int bound = depth / DirStack.KEEP_EVERY + 3 * DirStack.KEEP_EVERY;
            assertThat(maxOpen).isLessThanOrEqualTo(bound);
            assertThat(during).isLessThanOrEqualTo(bound + 2 + FD_SLACK);
            assertThat(path.openDescriptors()).isZero();
            // A subtree far below PATH_MAX opened by names, then rm -rf of all of it.
            List<Dir.Name> deepNames = java.util.Collections.nCopies(depth - 1, d);
            try (Dir bottom = root.openPath(deepNames)) {
                assertThat(bottom.stat().ino()).isEqualTo(inodes[depth - 1]);
            }
            root.deleteRecursively(d);
            assertThat(root.isEmpty()).isTrue();
        }
        // Process-wide counts move with other threads' descriptors (cleaners, earlier tests' servers): a leak here
        // would be per level, thousands, so a small slack keeps the check meaningful and the test stable.
        assertThat(openFds()).isLessThanOrEqualTo(before + FD_SLACK);
    }

    static final int FD_SLACK = 16;
}
