package dev.contree.layers;

import dev.contree.TestS3;
import dev.contree.linux.Dir;
import dev.contree.linux.Linux;
import dev.contree.objects.LayerTransfer;
import dev.contree.objects.ObjectStore;
import dev.contree.objects.ObjectStoreUrl;
import dev.contree.objects.S3ObjectStore;
import dev.contree.store.LayerRecords;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.HexFormat;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A committed layer packed and uploaded by one store, fetched and unpacked by another (two btrfs pools, a real
 * S3-protocol server): the tree is the same in every observable way, overlay's whiteouts and opaque dirs included.
 */
class LayerPackRoundTripTest {
    static TestS3 s3;
    static S3ObjectStore objects;
    static LayerStore a, b;
    static LayerTransfer fromA, intoB;

    @BeforeAll
    static void start() throws Exception {
        s3 = TestS3.start();
        objects = S3ObjectStore.open(ObjectStoreUrl.parse(s3.newBucket()));
        a = TestStores.open(TestStores.freshRoot("pack-a"));
        b = TestStores.open(TestStores.freshRoot("pack-b"));
        fromA = new LayerTransfer(objects, a, a.root().getParent().resolve("packs"));
        intoB = new LayerTransfer(objects, b, b.root().getParent().resolve("packs"));
    }

    @AfterAll
    static void stop() throws Exception {
        for (LayerStore s : new LayerStore[] {a, b}) {
            if (s == null) continue;
            Files.deleteIfExists(s.root().getParent().resolve("packs"));
            TestStores.destroy(s);
        }
        if (objects != null) objects.close();
        if (s3 != null) s3.close();
    }

    private static final byte[] NOT_UTF8 = {'n', (byte) 0xff, (byte) 0xfe, '.', 'b', 'i', 'n'};

    @Test
    void aLayerArrivesOnAnotherNodeAsItWasCommitted() throws Exception {
        String id;
        try (LayerBuilder layer = a.create()) {
            Path d = layer.diffDir();
            TestStores.write(d.resolve("etc/hosts"), "127.0.0.1 localhost\n");
            Linux.lsetxattr(d.resolve("etc/hosts"), "user.note", "hello".getBytes(StandardCharsets.UTF_8));
            Path tool = d.resolve("usr/bin/tool");
            TestStores.write(tool, "#!/bin/sh\necho tool\n");
            Linux.lchown(tool, 1000, 1001);
            try (Dir bin = Dir.open(tool.getParent(), "/")) {
                bin.chmod(Dir.Name.of("tool"), 04755);
            }
            // security.capability, binary: v2, effective, cap_net_bind_service permitted
            Linux.lsetxattr(tool, "security.capability", HexFormat.of().parseHex("0100000200040000000000000000000000000000"));
            Files.createLink(d.resolve("usr/bin/tool-again"), tool);
            Files.createSymbolicLink(d.resolve("lib"), Path.of("usr/lib"));
            Files.createSymbolicLink(d.resolve("usr/bin/escape"), Path.of("/etc/shadow"));
            Linux.mknod(d.resolve("etc/removed"), Linux.S_IFCHR, 0); // whiteout
            Files.createDirectories(d.resolve("var/cache"));
            Linux.lsetxattr(d.resolve("var"), "trusted.overlay.opaque", new byte[] {'y'});
            Linux.lsetxattr(d.resolve("var"), "trusted.overlay.origin", new byte[] {1, 2, 3}); // bookkeeping: dropped
            TestStores.write(d.resolve(".wh.literal"), "a file, not a whiteout");
            Linux.mknod(d.resolve("var/cache/fifo"), Linux.S_IFIFO | 0640, 0);
            TestStores.write(d.resolve("x".repeat(200) + "/" + "y".repeat(250)), "long names");
            Path deep = d.resolve("deep");
            for (int i = 0; i < 300; i++) deep = deep.resolve("d" + i);
            TestStores.write(deep.resolve("bottom"), "deep");
            byte[] big = new byte[3 << 20];
            new Random(1).nextBytes(big);
            Files.write(d.resolve("big.bin"), big);
            Files.createDirectories(d.resolve("empty"));
            Files.setLastModifiedTime(d.resolve("etc/hosts"), FileTime.from(Instant.parse("2020-01-02T03:04:05.123456789Z")));
            id = layer.commit();
        }
        LayerRecords.Packed pack = fromA.upload(id);
        assertThat(pack.bytes()).isPositive();
        assertThat(fromA.upload(id)).isEqualTo(pack); // packing is deterministic: the same layer, the same address

        intoB.fetch(id, pack);
        assertThat(b.exists(id)).isTrue();
        Path got = b.diffDir(id);
        assertSameTree(got, a.diffDir(id));
        assertThat(Linux.lgetxattr(got.resolve("var"), "trusted.overlay.opaque")).isEqualTo(new byte[] {'y'});
        assertThat(Linux.lgetxattr(got.resolve("var"), "trusted.overlay.origin")).isNull();
        assertThat(Linux.lstatOrNull(got.resolve("etc/removed")).isWhiteout()).isTrue();
        assertThat(Linux.lstatOrNull(got.resolve(".wh.literal")).isRegular()).isTrue();
        assertThat(Linux.lstatOrNull(got.resolve("usr/bin/tool")).mode() & 07777).isEqualTo(04755);
        assertThat(Files.readSymbolicLink(got.resolve("usr/bin/escape"))).isEqualTo(Path.of("/etc/shadow"));
        assertThat(b.sizeOf(id)).isEqualTo(a.sizeOf(id));
        assertThatThrownBy(() -> intoB.fetch(id, pack)).isInstanceOf(java.nio.file.FileAlreadyExistsException.class);
    }

    @Test
    void namesAreBytes() throws Exception {
        String id;
        try (LayerBuilder layer = a.create()) {
            try (Dir root = Dir.open(layer.diffDir(), "/")) {
                root.mkdir(new Dir.Name(NOT_UTF8), 0755);
                try (Dir sub = root.openDir(new Dir.Name(NOT_UTF8))) {
                    Linux.close(sub.openFile(new Dir.Name(NOT_UTF8), Linux.O_WRONLY | Linux.O_CREAT | Linux.O_EXCL, 0644));
                    sub.symlink(NOT_UTF8, Dir.Name.of("link"));
                }
            }
            id = layer.commit();
        }
        intoB.fetch(id, fromA.upload(id));
        try (Dir root = Dir.open(b.diffDir(id), "/"); Dir sub = root.openDir(new Dir.Name(NOT_UTF8))) {
            assertThat(sub.statOrNull(new Dir.Name(NOT_UTF8)).isRegular()).isTrue();
            assertThat(sub.readlink(Dir.Name.of("link"))).isEqualTo(NOT_UTF8);
        }
    }

    /**
     * A crash in the middle of a fetch (a pending layer half unpacked, a pack half downloaded) leaves nothing that
     * looks committed: the next start deletes both, and the layer is fetched whole.
     */
    @Test
    void aFetchCutShortByACrashLeavesNothingThatLooksComplete() throws Exception {
        String id;
        try (LayerBuilder layer = a.create()) {
            TestStores.write(layer.diffDir().resolve("data/whole"), "all of it");
            id = layer.commit();
        }
        LayerRecords.Packed pack = fromA.upload(id);
        LayerBuilder half = b.create(id); // as a fetch leaves it: pending, part of the tree written, never committed
        TestStores.write(half.diffDir().resolve("data/whole"), "all of");
        Path packs = b.root().getParent().resolve("packs");
        Files.writeString(packs.resolve(id + "-cut.fetch"), "half a download");
        assertThat(b.exists(id)).isFalse();
        Path root = b.root();
        b.close(); // the crash: nothing aborted, nothing committed
        b = TestStores.open(root);
        intoB = new LayerTransfer(objects, b, packs);
        assertThat(b.exists(id)).isFalse();
        assertThat(b.recovered()).anyMatch(r -> r.contains(".pending-" + id));
        try (var left = Files.list(packs)) {
            assertThat(left).isEmpty();
        }
        intoB.fetch(id, pack);
        assertThat(Files.readString(b.diffDir(id).resolve("data/whole"))).isEqualTo("all of it");
    }

    @Test
    void aCorruptPackIsRefusedBeforeAnythingIsUnpacked() throws Exception {
        String id;
        try (LayerBuilder layer = a.create()) {
            TestStores.write(layer.diffDir().resolve("data"), "the real content");
            id = layer.commit();
        }
        LayerRecords.Packed pack = fromA.upload(id);
        try (var files = s3.objectFiles(s3Url())) {
            for (Path p : files.filter(p -> p.getFileName().toString().equals(pack.sha256())).toList()) {
                byte[] bytes = Files.readAllBytes(p);
                bytes[bytes.length / 2] ^= 1;
                Files.write(p, bytes);
            }
        }
        assertThatThrownBy(() -> intoB.fetch(id, pack)).isInstanceOf(ObjectStore.CorruptObjectException.class)
                .hasMessageContaining("corrupt");
        assertThat(b.exists(id)).isFalse();
        assertThat(UpperDir.list(b.root().resolve("layers"))).noneMatch(n -> n.contains(id));
    }

    /** Every difference by path (the trees are large: a plain map comparison would print all of both). */
    static void assertSameTree(Path got, Path want) throws java.io.IOException {
        var g = to100ns(TestStores.view(got));
        var w = to100ns(TestStores.view(want));
        java.util.Map<String, String> diff = new java.util.TreeMap<>();
        for (String k : w.keySet()) if (!w.get(k).equals(g.get(k))) diff.put(k.length() > 80 ? "…" + k.substring(k.length() - 60) : k, "want " + w.get(k) + " got " + g.get(k));
        for (String k : g.keySet()) if (!w.containsKey(k)) diff.put(k, "unexpected " + g.get(k));
        assertThat(diff).isEmpty();
        assertThat(g.size()).isGreaterThan(300);
    }

    private static final java.util.regex.Pattern MTIME = java.util.regex.Pattern.compile("mtime=(\\S+)");

    /** Tar keeps mtimes to 100 ns here (commons-compress reads PAX times into a FileTime of that precision), as for imports. */
    private static java.util.Map<String, String> to100ns(java.util.Map<String, String> view) {
        view.replaceAll((k, v) -> MTIME.matcher(v).replaceAll(m -> {
            Instant t = Instant.parse(m.group(1));
            return "mtime=" + Instant.ofEpochSecond(t.getEpochSecond(), t.getNano() / 100 * 100);
        }));
        return view;
    }

    private static String s3Url() {
        return "s3://" + objects.describe().substring("s3://".length()).split("/")[0] + "/x";
    }
}
