package dev.contree.layers;

import dev.contree.linux.Dir;
import dev.contree.linux.DirStack;
import dev.contree.linux.Linux;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static dev.contree.layers.TestStores.write;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class CompactionTest {
    static LayerStore store;

    @BeforeAll
    static void open() throws IOException {
        store = TestStores.open(TestStores.freshRoot("compact"));
    }

    @AfterAll
    static void destroy() throws IOException {
        TestStores.destroy(store);
    }

    private static void touch(Path p, String when) throws IOException {
        Linux.lutimes(p, 1_000_000, 0, Instant.parse(when).getEpochSecond(), 123_456_789);
    }

    private String layer(List<String> lowers, IOAction action) throws IOException {
        WritableLayer w = store.prepare(lowers, 0);
        action.run(w.rootfs());
        return store.commit(w, List.of()).orElseThrow();
    }

    interface IOAction { void run(Path r) throws IOException; }

    private Map<String, String> viewOf(List<String> chain, String name) throws IOException {
        Path at = store.root().resolve("mnt").resolve("view-" + name);
        TestStores.mountView(store, chain, at);
        try {
            return TestStores.view(at);
        } finally {
            Mounts.unmount(at);
            Files.delete(at);
        }
    }

    @Test
    void compactedLayerShowsTheSameTreeAsTheStack() throws IOException {
        String l1 = layer(List.of(), r -> {
            write(r.resolve("a"), "a1");
            write(r.resolve("d/x"), "x1");
            write(r.resolve("d/y"), "y1");
            write(r.resolve("o/p"), "p1");
            write(r.resolve("gone"), "gone");
            write(r.resolve("keepdir/k"), "k");
            write(r.resolve("h1"), "hard");
            Files.createLink(r.resolve("h2"), r.resolve("h1"));
            Files.createSymbolicLink(r.resolve("sl"), Path.of("a"));
        });
        String l2 = layer(List.of(l1), r -> {
            Files.delete(r.resolve("gone"));                         // whiteout hiding a file below the range
            write(r.resolve("new"), "new2");
            Linux.mknod(r.resolve("fifo"), 0010644, 0);              // fifo
            Linux.mknod(r.resolve("chr"), 0020600, (1L << 8) | 3);   // char device 1:3 (nodev: exists, unusable)
            Linux.lchown(r.resolve("new"), 1234, 5678);
            Linux.lchmod(r.resolve("new"), 04750);
            touch(r.resolve("new"), "2020-01-02T03:04:05Z");
            Linux.lsetxattr(r.resolve("new"), "user.note", "hello".getBytes(StandardCharsets.UTF_8));
            write(r.resolve("l2h1"), "layer-hard");
            Files.createLink(r.resolve("l2h2"), r.resolve("l2h1"));
            Files.delete(r.resolve("o/p"));
            Files.delete(r.resolve("o"));
            Files.createDirectory(r.resolve("o"));                   // opaque, hides below
            write(r.resolve("o/new"), "o-new");
            write(r.resolve("t"), "temp");                           // deleted in l3: whiteout only inside range
            write(r.resolve("z/old"), "z-old");                      // dir re-created in l4
            write(r.resolve("d/x"), "x2");
            Files.createSymbolicLink(r.resolve("sl2"), Path.of("/nonexistent/target"));
            Linux.lchown(r.resolve("sl2"), 42, 43);
        });
        String l3 = layer(List.of(l2, l1), r -> {
            Files.delete(r.resolve("t"));
            Files.delete(r.resolve("z/old"));
            Files.delete(r.resolve("z"));
            Files.delete(r.resolve("d/y"));
            write(r.resolve("a"), "a3");
            Files.delete(r.resolve("keepdir/k"));
            Files.delete(r.resolve("keepdir"));
            write(r.resolve("keepdir"), "now a file");               // non-dir over a dir
        });
        String l4 = layer(List.of(l3, l2, l1), r -> {
            Files.createDirectory(r.resolve("z"));                   // over a whiteout in range => opaque
            write(r.resolve("z/n"), "z-new");
            Files.delete(r.resolve("keepdir"));
            Files.createDirectory(r.resolve("keepdir"));             // dir over a whiteout... over a dir below
            write(r.resolve("keepdir/again"), "again");
            Files.delete(r.resolve("new"));
            write(r.resolve("new"), "new4");                         // replaced file
            Linux.lchmod(r.resolve("d"), 0751);
            Files.setLastModifiedTime(r.resolve("h1"), FileTime.from(Instant.parse("2001-01-01T00:00:00Z")));
        });
        List<String> range = List.of(l4, l3, l2);
        Map<String, String> expected = viewOf(List.of(l4, l3, l2, l1), "orig");

        String unknownBelow = store.compact(range);
        String knownBelow = store.compact(range, List.of(l1));
        assertThat(viewOf(List.of(unknownBelow, l1), "c1")).isEqualTo(expected);
        assertThat(viewOf(List.of(knownBelow, l1), "c2")).isEqualTo(expected);

        Path c = store.diffDir(knownBelow);
        assertThat(Linux.lstatOrNull(c.resolve("gone")).isWhiteout()).isTrue();   // still hides l1's file
        assertThat(Linux.lstatOrNull(c.resolve("t"))).isNull();                    // resolved inside the range
        assertThat(Linux.lstatOrNull(c.resolve("d/y")).isWhiteout()).isTrue();
        assertThat(UpperDir.isOpaque(c.resolve("o"))).isTrue();
        assertThat(UpperDir.isOpaque(c.resolve("z"))).isFalse();                // nothing below to hide
        assertThat(UpperDir.isOpaque(c.resolve("keepdir"))).isTrue();
        assertThat(Linux.lstatOrNull(c.resolve("z/old"))).isNull();
        assertThat(Files.readString(c.resolve("o/new"))).isEqualTo("o-new");
        Path cu = store.diffDir(unknownBelow);
        assertThat(Linux.lstatOrNull(cu.resolve("t")).isWhiteout()).isTrue();      // below unknown: kept
        assertThat(UpperDir.isOpaque(cu.resolve("z"))).isTrue();
        for (String id : List.of(knownBelow, unknownBelow)) {
            for (String x : Linux.llistxattr(store.diffDir(id).resolve("d"))) assertThat(x).isNotEqualTo("trusted.overlay.origin");
        }

        // Bottom of an image: nothing below, so no whiteouts or opaque dirs are needed at all.
        String all = store.compact(List.of(l4, l3, l2, l1), List.of());
        assertThat(viewOf(List.of(all), "c3")).isEqualTo(expected);
        assertThat(Linux.lstatOrNull(store.diffDir(all).resolve("gone"))).isNull();
        assertThat(UpperDir.isOpaque(store.diffDir(all).resolve("o"))).isFalse();
        // Hard links inside one layer stay hard links; extents are shared, not copied.
        assertThat(Linux.lstatOrNull(store.diffDir(all).resolve("l2h1")).ino())
                .isEqualTo(Linux.lstatOrNull(store.diffDir(all).resolve("l2h2")).ino());
    }

    @Test
    void longChainStaysShallowAndCorrect() throws IOException {
        String base = layer(List.of(), r -> write(r.resolve("base"), "base"));
        List<String> chain = new ArrayList<>(List.of(base));
        Map<String, String> expected = new TreeMap<>();
        expected.put("base", "base");
        int maxDepth = 0;
        for (int i = 0; i < 2000; i++) {
            WritableLayer w = store.prepare(chain, 0);
            write(w.rootfs().resolve("f/" + i), "v" + i);
            expected.put("f/" + i, "v" + i);
            if (i % 3 == 2) {
                Files.delete(w.rootfs().resolve("f/" + (i - 2)));
                expected.remove("f/" + (i - 2));
            }
            String id = store.commit(w, List.of()).orElseThrow();
            chain.addFirst(id);
            chain = new ArrayList<>(store.compactIfNeeded(chain));
            maxDepth = Math.max(maxDepth, chain.size());
        }
        assertThat(maxDepth).isLessThanOrEqualTo(store.config().maxMountDepth());
        WritableLayer w = store.prepare(chain, 0);
        try {
            Map<String, String> seen = new TreeMap<>();
            seen.put("base", Files.readString(w.rootfs().resolve("base")));
            for (String n : UpperDir.list(w.rootfs().resolve("f"))) seen.put("f/" + n, Files.readString(w.rootfs().resolve("f/" + n)));
            assertThat(seen).isEqualTo(expected);
        } finally {
            store.discard(w);
        }
    }

    /** Names are bytes: non-UTF-8 names compact with their exact bytes, whiteouts of them too. */
    @Test
    void nonUtf8NamesCompactWithTheirBytes() throws IOException {
        Dir.Name ff = new Dir.Name(new byte[] {(byte) 0xff, (byte) 0xfe});
        Dir.Name cafe = new Dir.Name(new byte[] {'c', 'a', 'f', (byte) 0xe9});
        Dir.Name gone = new Dir.Name(new byte[] {'g', (byte) 0x80});
        String l1 = layer(List.of(), r -> {
            try (Dir d = Dir.open(r, "/")) {
                d.mkdir(cafe, 0755);
                try (Dir sub = d.openDir(cafe)) {
                    writeFile(sub, ff, "ff");
                }
                writeFile(d, gone, "gone");
            }
        });
        String l2 = layer(List.of(l1), r -> {
            try (Dir d = Dir.open(r, "/")) {
                d.unlink(gone);
                writeFile(d, ff, "top");
                d.symlink(new byte[] {'.', '/', (byte) 0xe9}, new Dir.Name(new byte[] {'l', (byte) 0xe9}));
            }
        });
        String l3 = layer(List.of(l2, l1), r -> Files.writeString(r.resolve("plain"), "p"));
        String merged = store.compact(List.of(l3, l2), List.of(l1));
        try (Dir c = Dir.open(store.diffDir(merged), "/")) {
            assertThat(c.listSorted()).containsExactly(gone, new Dir.Name(new byte[] {'l', (byte) 0xe9}), Dir.Name.of("plain"), ff);
            assertThat(c.statOrNull(gone).isWhiteout()).isTrue();
            assertThat(c.readlink(new Dir.Name(new byte[] {'l', (byte) 0xe9}))).containsExactly('.', '/', (byte) 0xe9);
        }
        WritableLayer w = store.prepare(List.of(merged, l1), 0);
        try (Dir r = Dir.open(w.rootfs(), "/"); Dir sub = r.openDir(cafe)) {
            assertThat(readFile(r, ff)).isEqualTo("top");
            assertThat(readFile(sub, ff)).isEqualTo("ff");
            assertThat(r.statOrNull(gone)).isNull();
        } finally {
            store.discard(w);
        }
        assertThat(store.compact(List.of(merged, l1), List.of())).isNotNull();
    }

    /** Makes {@code depth} nested dirs "d" below {@code root}; calls {@code atBottom} in the deepest. */
    private static void deepTree(Path root, int depth, IODirAction atBottom) throws IOException {
        try (Dir r = Dir.open(root, "/"); DirStack path = new DirStack(r)) {
            for (int i = 0; i < depth; i++) {
                path.top().mkdir(D, 0755);
                path.push(D);
            }
            atBottom.run(path.top());
        }
    }

    interface IODirAction { void run(Dir d) throws IOException; }

    private static final Dir.Name D = Dir.Name.of("d");

    /**
     * A tree at the depth limit (8,192 levels, 16 KiB of path) commits, is measured and compacts (file content and
     * a hard link at the bottom survive); one level more fails the commit with nothing kept. Timings are printed.
     */
    @Test
    void treesAtTheDepthLimitCommitAndCompactDeeperOnesAreRefused() throws Exception {
        int depth = LayerStore.MAX_TREE_DEPTH;
        Dir.Name f = Dir.Name.of("f"), g = Dir.Name.of("g");
        String data = "x".repeat(64 * 1024);
        long fdsBefore = openFds();
        WritableLayer w = store.prepare(List.of(), 0);
        deepTree(w.rootfs(), depth, bottom -> {
            writeFile(bottom, f, data);
            bottom.link(bottom, f, g);
        });
        long t0 = System.nanoTime();
        String deep = store.commit(w, List.of()).orElseThrow();
        long commitMs = (System.nanoTime() - t0) / 1_000_000;
        assertThat(store.sizeOf(deep)).isEqualTo(64 * 1024); // hard links once
        String top = layer(List.of(deep), r -> write(r.resolve("d/d/x"), "x\n"));
        t0 = System.nanoTime();
        String merged = store.compact(List.of(top, deep), List.of());
        long compactMs = (System.nanoTime() - t0) / 1_000_000;
        System.out.printf("%d-deep tree: commit %d ms, compaction %d ms%n", depth, commitMs, compactMs);
        try (Dir m = Dir.open(store.diffDir(merged), "/");
             Dir bottom = m.openPath(java.util.Collections.nCopies(depth, D))) {
            assertThat(readFile(bottom, f)).isEqualTo(data);
            assertThat(bottom.statOrNull(g).ino()).isEqualTo(bottom.statOrNull(f).ino());
            assertThat(Files.readString(store.diffDir(merged).resolve("d/d/x"))).isEqualTo("x\n");
        }

        List<String> layersBefore = store.layerIds();
        WritableLayer tooDeep = store.prepare(List.of(), 0);
        deepTree(tooDeep.rootfs(), depth + 1, bottom -> writeFile(bottom, f, "bottom"));
        assertThatThrownBy(() -> store.commit(tooDeep, List.of())).isInstanceOf(TreeTooDeepException.class)
                .hasMessageContaining("deeper than " + depth + " levels");
        assertThat(store.layerIds()).containsExactlyInAnyOrderElementsOf(layersBefore);
        try (var l = Files.list(store.root().resolve("layers"))) {
            assertThat(l.map(p -> p.getFileName().toString()).filter(n -> n.startsWith(".pending-"))).isEmpty();
        }
        // a per-level leak would be thousands; other threads' descriptors move the count by a few
        assertThat(openFds()).isLessThanOrEqualTo(fdsBefore + 16);
    }

    private static long openFds() throws IOException {
        try (var s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        }
    }

    private static void writeFile(Dir d, Dir.Name n, String content) throws IOException {
        int fd = d.openFile(n, Linux.O_WRONLY | Linux.O_CREAT | Linux.O_EXCL, 0644);
        try (var ch = Dir.channel(fd, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.wrap(content.getBytes(StandardCharsets.UTF_8)));
        } finally {
            Linux.close(fd);
        }
    }

    private static String readFile(Dir d, Dir.Name n) throws IOException {
        int fd = d.openFile(n, Linux.O_RDONLY, 0);
        try (var ch = Dir.channel(fd, java.nio.file.StandardOpenOption.READ)) {
            return new String(java.nio.channels.Channels.newInputStream(ch).readAllBytes(), StandardCharsets.UTF_8);
        } finally {
            Linux.close(fd);
        }
    }
}
