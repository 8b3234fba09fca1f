package dev.contree.layers;

import dev.contree.linux.Linux;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import static dev.contree.layers.TestStores.exists;
import static dev.contree.layers.TestStores.write;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class LayerStoreTest {
    static LayerStore store;

    @BeforeAll
    static void open() throws IOException {
        store = TestStores.open(TestStores.freshRoot("store"));
    }

    @AfterAll
    static void destroy() throws IOException {
        TestStores.destroy(store);
    }

    private String baseLayer() throws IOException {
        WritableLayer w = store.prepare(List.of(), 0);
        write(w.rootfs().resolve("etc/hostname"), "base\n");
        write(w.rootfs().resolve("tmp/keep"), "k");
        Files.createDirectories(w.rootfs().resolve("dev"));
        return store.commit(w, List.of()).orElseThrow();
    }

    @Test
    void prepareWriteCommitReadBack() throws IOException {
        String base = baseLayer();
        WritableLayer w = store.prepare(List.of(base), 1 << 30);
        assertThat(Files.readString(w.rootfs().resolve("etc/hostname"))).isEqualTo("base\n");
        write(w.rootfs().resolve("etc/hostname"), "child\n");
        write(w.rootfs().resolve("new/file"), "n");
        Files.delete(w.rootfs().resolve("tmp/keep"));
        String child = store.commit(w, List.of()).orElseThrow();

        assertThat(child).isEqualTo(w.id());
        assertThat(store.layerIds()).contains(base, child);
        store.awaitBackgroundWork(); // the read-only flag is set off the commit path
        assertThat(Btrfs.isReadOnly(store.diffDir(child).getParent())).isTrue();
        assertThat(Files.readString(store.diffDir(child).resolve("etc/hostname"))).isEqualTo("child\n");
        assertThat(Linux.lstatOrNull(store.diffDir(child).resolve("tmp/keep")).isWhiteout()).isTrue();
        assertThat(exists(store.diffDir(child).resolve("work"))).isFalse();
        assertThat(Linux.llistxattr(store.diffDir(child))).doesNotContain("trusted.overlay.uuid");
        assertThat(exists(store.diffDir(child).getParent().resolve("work"))).isFalse();
        assertThat(exists(w.rootfs())).isFalse();
        assertThatThrownBy(() -> Files.writeString(store.diffDir(child).resolve("x"), "x")).isInstanceOf(IOException.class);

        WritableLayer g = store.prepare(List.of(child, base), 0);
        assertThat(Files.readString(g.rootfs().resolve("etc/hostname"))).isEqualTo("child\n");
        assertThat(Files.readString(g.rootfs().resolve("new/file"))).isEqualTo("n");
        assertThat(exists(g.rootfs().resolve("tmp/keep"))).isFalse();
        assertThat(exists(g.rootfs().resolve("tmp"))).isTrue();
        store.discard(g);
        assertThat(store.sizeOf(child)).isGreaterThan(0);
    }

    @Test
    void unchangedRunReturnsEmptyAndLeavesNoSubvolume() throws IOException {
        String base = baseLayer();
        List<String> before = store.layerIds();
        WritableLayer w = store.prepare(List.of(base), 1 << 20);
        Files.readString(w.rootfs().resolve("etc/hostname"));
        assertThat(store.commit(w, List.of())).isEmpty();
        assertThat(store.layerIds()).containsExactlyInAnyOrderElementsOf(before);
        store.awaitBackgroundWork(); // the empty subvolume is deleted off the caller's path
        assertThat(UpperDir.list(store.root().resolve("layers"))).filteredOn(n -> n.startsWith(".")).isEmpty();
        assertThat(UpperDir.list(store.root().resolve("mnt"))).isEmpty();
    }

    @Test
    void scratchMountPointsAreIgnored() throws IOException {
        String base = baseLayer(); // has dev/ and tmp/keep, no proc
        List<String> scratch = List.of("proc", "sys", "dev", "dev/pts", "dev/shm", "tmp", ".contree", ".contree/init");
        WritableLayer w = store.prepare(List.of(base), 0);
        Path r = w.rootfs();
        Files.createDirectories(r.resolve("proc"));
        Files.createDirectories(r.resolve("sys"));
        Files.createDirectories(r.resolve("dev/pts")); // copies up dev/
        Files.createDirectories(r.resolve("dev/shm"));
        Files.createDirectories(r.resolve(".contree"));
        Files.createFile(r.resolve(".contree/init")); // bind-mount target file
        assertThat(store.commit(w, scratch)).isEmpty();

        // a real change inside a scratch path is kept, and so is an emptied (opaque) lower dir
        WritableLayer w2 = store.prepare(List.of(base), 0);
        Files.createDirectories(w2.rootfs().resolve("proc"));
        Files.delete(w2.rootfs().resolve("tmp/keep"));
        Files.delete(w2.rootfs().resolve("tmp"));
        Files.createDirectory(w2.rootfs().resolve("tmp")); // rm -rf tmp; mkdir tmp => opaque
        String id = store.commit(w2, scratch).orElseThrow();
        assertThat(UpperDir.list(store.diffDir(id))).containsExactly("tmp");
        assertThat(UpperDir.isOpaque(store.diffDir(id).resolve("tmp"))).isTrue();

        // an empty file over a lower file is a truncation, not a mount point
        WritableLayer w3 = store.prepare(List.of(base), 0);
        Files.writeString(w3.rootfs().resolve("tmp/keep"), "");
        String id3 = store.commit(w3, List.of("tmp/keep", "tmp")).orElseThrow();
        assertThat(Files.size(store.diffDir(id3).resolve("tmp/keep"))).isZero();
    }

    /** A host dir with what scratch cleanup would remove: empty files and dirs; its listing with mtimes. */
    private static Path victim() throws IOException {
        Path v = Files.createTempDirectory("layers-victim-");
        for (String d : List.of("pts", "shm", "proc", "dev", "tmp")) Files.createDirectory(v.resolve(d));
        for (String f : List.of("init", "ptmx")) Files.createFile(v.resolve(f));
        return v;
    }

    private static List<String> listing(Path v) throws IOException {
        try (var w = Files.walk(v)) {
            return w.map(p -> {
                try {
                    Linux.Stat st = Linux.lstat(p);
                    return v.relativize(p) + " " + Integer.toOctalString(st.mode()) + " " + st.mtimeSec() + "." + st.mtimeNsec();
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }).sorted().toList();
        }
    }

    @Test
    void scratchCleanupNeverFollowsLinksOutOfTheLayer() throws IOException {
        Path v = victim();
        try {
            List<String> before = listing(v);
            String base = baseLayer();
            List<String> scratch = List.of("proc", "sys", "dev", "dev/pts", "dev/shm", "tmp", ".contree", ".contree/init");
            // The upper itself has the links (a sandbox made them): absolute and relative.
            WritableLayer w = store.prepare(List.of(base), 0);
            Files.createSymbolicLink(w.rootfs().resolve(".contree"), v);
            Files.delete(w.rootfs().resolve("dev"));
            Files.createSymbolicLink(w.rootfs().resolve("dev"), Path.of("../../../../../../../../.." + v));
            Files.createSymbolicLink(w.rootfs().resolve("proc"), v.resolve("proc"));
            String id = store.commit(w, scratch).orElseThrow(); // links are real changes: kept, never followed
            assertThat(Linux.lstat(store.diffDir(id).resolve(".contree")).isSymlink()).isTrue();
            assertThat(listing(v)).isEqualTo(before);
            // A lower has the links; the upper has what a runtime would leave beside them.
            WritableLayer w2 = store.prepare(List.of(id, base), 0);
            Files.createDirectories(w2.rootfs().resolve("sys"));
            assertThat(store.commit(w2, scratch)).isEmpty();
            assertThat(listing(v)).isEqualTo(before);
            assertThat(store.sizeOf(id)).isZero();
        } finally {
            UpperDir.deleteRecursively(v);
        }
    }

    @Test
    void symlinkedMountPointsAreReplacedForTheRunAndRestoredAtCommit() throws IOException {
        Path v = victim();
        try {
            List<String> before = listing(v);
            List<String> dirs = List.of("/proc", "/dev", "/sys", "/tmp", "/.contree"), files = List.of("/.contree/init");
            List<String> scratch = List.of("proc", "sys", "dev", "tmp", ".contree", ".contree/init");
            WritableLayer w = store.prepare(List.of(), 0);
            Files.createSymbolicLink(w.rootfs().resolve("dev"), v);
            Files.createSymbolicLink(w.rootfs().resolve("tmp"), Path.of("../../../../../../../../.." + v));
            Files.createDirectory(w.rootfs().resolve(".contree"));
            Files.createSymbolicLink(w.rootfs().resolve(".contree/init"), v.resolve("init"));
            Files.createFile(w.rootfs().resolve("proc")); // a non-directory where a directory is mounted
            String hostile = store.commit(w, List.of()).orElseThrow();

            // An ordinary image is not touched: the run commits as unchanged.
            WritableLayer plain = store.prepare(List.of(baseLayer()), 0);
            store.secureMountPoints(plain, dirs, files);
            assertThat(store.commit(plain, scratch)).isEmpty();

            WritableLayer run = store.prepare(List.of(hostile), 0);
            store.secureMountPoints(run, dirs, files);
            Path r = run.rootfs();
            for (String d : List.of("dev", "tmp", "proc", ".contree")) assertThat(Linux.lstat(r.resolve(d)).isDir()).as(d).isTrue();
            assertThat(Linux.lstat(r.resolve("tmp")).mode() & 07777).isEqualTo(01777);
            assertThat(Linux.lstatOrNull(r.resolve(".contree/init"))).isNull();
            Files.createFile(r.resolve(".contree/init")); // what the runtime does
            Files.createDirectory(r.resolve("sys"));
            assertThat(listing(v)).isEqualTo(before);
            assertThat(store.commit(run, scratch)).as("the image keeps its own entries").isEmpty();

            // A run that writes into a replaced path keeps the real directory with its content.
            WritableLayer writes = store.prepare(List.of(hostile), 0);
            store.secureMountPoints(writes, dirs, files);
            write(writes.rootfs().resolve("tmp/out"), "kept");
            String id = store.commit(writes, scratch).orElseThrow();
            assertThat(Files.readString(store.diffDir(id).resolve("tmp/out"))).isEqualTo("kept");
            assertThat(UpperDir.list(store.diffDir(id))).containsExactly("tmp");
            assertThat(listing(v)).isEqualTo(before);
        } finally {
            UpperDir.deleteRecursively(v);
        }
    }

    @Test
    void discardUnmountsAndDeletes() throws IOException {
        WritableLayer w = store.prepare(List.of(), 0);
        write(w.rootfs().resolve("a"), "a");
        store.discard(w);
        assertThat(exists(w.rootfs())).isFalse(); // unmounted at once
        assertThat(store.layerIds()).doesNotContain(w.id());
        store.awaitBackgroundWork(); // the subvolume is deleted off the caller's path
        assertThat(exists(w.diffDir())).isFalse();
        assertThat(exists(w.diffDir().getParent())).isFalse();
        assertThatThrownBy(() -> store.commit(w, List.of())).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void writePastCapFailsWithEdquotWhileSiblingIsUnaffected() throws IOException {
        assertThat(store.quotasEnforced()).isTrue();
        String base = baseLayer();
        WritableLayer small = store.prepare(List.of(base), 8L << 20);
        WritableLayer sibling = store.prepare(List.of(base), 256L << 20);
        byte[] mib = new byte[1 << 20];
        assertThatThrownBy(() -> {
            try (OutputStream out = Files.newOutputStream(small.rootfs().resolve("bomb"))) {
                for (int i = 0; i < 64; i++) {
                    out.write(mib);
                    out.flush();
                }
            }
            try (var ch = java.nio.channels.FileChannel.open(small.rootfs().resolve("bomb"), java.nio.file.StandardOpenOption.WRITE)) {
                ch.force(true);
            }
        }).isInstanceOf(IOException.class).hasMessageContaining("Disk quota exceeded");
        try (OutputStream out = Files.newOutputStream(sibling.rootfs().resolve("ok"))) {
            for (int i = 0; i < 32; i++) out.write(mib);
        }
        assertThat(Files.size(sibling.rootfs().resolve("ok"))).isEqualTo(32L << 20);
        store.discard(small);
        assertThat(store.commit(sibling, List.of())).isPresent();
    }

    @Test
    void backgroundWorkIsDoneOnceTheStoreIsQuiet() throws Exception {
        String base = baseLayer();
        WritableLayer w = store.prepare(List.of(base), 0);
        write(w.rootfs().resolve("f"), "f");
        WritableLayer gone = store.prepare(List.of(base), 0);
        write(gone.rootfs().resolve("g"), "g");
        Path subvol = store.diffDir(store.commit(w, List.of()).orElseThrow()).getParent();
        Path discarded = gone.diffDir().getParent();
        store.discard(gone);
        long deadline = System.nanoTime() + 5_000_000_000L; // past the 100 ms quiet period, before the 10 s latest
        while ((!Btrfs.isReadOnly(subvol) || exists(discarded)) && System.nanoTime() < deadline) Thread.sleep(20);
        assertThat(Btrfs.isReadOnly(subvol)).isTrue();
        assertThat(exists(discarded)).isFalse();
    }

    @Test
    void builderCommitAbortRemoveAndSize() throws IOException {
        LayerBuilder b = store.create();
        write(b.diffDir().resolve("usr/bin/tool"), "x".repeat(10_000));
        Linux.mkwhiteout(b.diffDir().resolve("gone"));
        String id = b.commit();
        assertThat(store.layerIds()).contains(id);
        assertThat(store.sizeOf(id)).isGreaterThanOrEqualTo(10_000);
        assertThat(Linux.lstatOrNull(store.diffDir(id).resolve("gone")).isWhiteout()).isTrue();

        LayerBuilder aborted = store.create();
        write(aborted.diffDir().resolve("f"), "f");
        aborted.abort();
        assertThat(store.layerIds()).doesNotContain(aborted.id());
        assertThat(exists(aborted.diffDir())).isFalse();

        store.remove(id);
        assertThat(store.layerIds()).doesNotContain(id);
        assertThatThrownBy(() -> store.diffDir("../etc")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> store.prepare(List.of(id), 0)).isInstanceOf(IOException.class);
    }

    @Test
    void sizeCountsFileDataOnceAndAgreesWithTheQuota() throws IOException {
        WritableLayer w = store.prepare(List.of(), 0);
        write(w.rootfs().resolve("blob"), "y".repeat(3 << 20));
        Files.createLink(w.rootfs().resolve("blob-again"), w.rootfs().resolve("blob")); // one inode: counted once
        try (var f = new java.io.RandomAccessFile(w.rootfs().resolve("sparse").toFile(), "rw")) {
            f.setLength(1L << 40); // claims 1 TiB, holds nothing
        }
        String id = store.commit(w, List.of()).orElseThrow();
        assertThat(store.sizeOf(id)).isEqualTo(3L << 20); // measured at commit, before btrfs committed anything
        Btrfs.syncfs(store.root()); // squota usage is only updated at transaction commit
        long quota = Btrfs.qgroupReferenced(store.root(), Btrfs.subvolId(store.diffDir(id).getParent()));
        assertThat(quota).isBetween(3L << 20, (3L << 20) + (1 << 20));
    }

    @Test
    void emptyOptionalMeansNoLayer() throws IOException {
        WritableLayer w = store.prepare(List.of(), 0);
        Optional<String> r = store.commit(w, List.of("proc"));
        assertThat(r).isEmpty();
    }
}
