package dev.contree.inspect;

import static dev.contree.inspect.Trees.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.contree.inspect.InspectException.Kind;
import dev.contree.linux.Linux;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MergedViewTest {
    @TempDir Path tmp;
    Path a, b, c;
    MergedView view;

    /** Three layers exercising every overlay rule; a is the top. */
    @BeforeEach
    void layers() throws Exception {
        c = dir(tmp.resolve("c"));
        b = dir(tmp.resolve("b"));
        a = dir(tmp.resolve("a"));
        file(c.resolve("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n");
        file(c.resolve("etc/group"), "root:x:0:\nstaff:x:50:\n");
        file(c.resolve("etc/hosts"), "127.0.0.1 localhost\n");
        file(c.resolve("etc/shadow"), "image-shadow\n");
        file(c.resolve("del/file1"), "deleted");
        file(c.resolve("del/keep"), "kept");
        file(c.resolve("gone/x"), "x");
        file(c.resolve("opq/old1"), "old");
        file(c.resolve("opq/sub/old2"), "old");
        file(c.resolve("merge/c1"), "c1");
        file(c.resolve("merge/shared"), "from c");
        file(c.resolve("d2f/inner"), "inner");
        file(c.resolve("f2d"), "file");
        file(c.resolve("re/x"), "x");
        Path h1 = file(c.resolve("hard1"), "hard");
        Files.createLink(c.resolve("hard2"), h1);
        dir(c.resolve("dev"));
        Linux.mknod(c.resolve("dev/null"), Linux.S_IFCHR | 0666, Linux.makedev(1, 3));
        Linux.mknod(c.resolve("dev/sda"), Linux.S_IFBLK | 0660, Linux.makedev(8, 0));
        Linux.mknod(c.resolve("fifo"), Linux.S_IFIFO | 0644, 0);
        Path sh = file(c.resolve("bin/su"), "#!/bin/sh\n");
        Linux.lchmod(sh, 04755);
        dir(c.resolve("home/alice"));
        Linux.lchown(c.resolve("home/alice"), 1000, 50);
        symlink(c.resolve("lnk"), "/etc/hosts");
        symlink(c.resolve("usr/lib/rel"), "../../etc/hosts");
        Linux.lutimes(c.resolve("lnk"), 1000, 0, 1_600_000_000L, 0);

        whiteout(b.resolve("del/file1"));
        whiteout(b.resolve("gone"));
        whiteout(b.resolve("re"));
        dir(b.resolve("f2d/child"));
        file(b.resolve("merge/b1"), "b1");
        file(b.resolve("merge/shared"), "from b");

        opaque(a.resolve("opq"));
        file(a.resolve("opq/new"), "new");
        file(a.resolve("d2f"), "now a file");
        file(a.resolve("merge/a1"), "a1");
        file(a.resolve("re/y"), "y");
        symlink(a.resolve("newlink"), "merge/b1");
        whiteout(a.resolve("never-existed"));

        view = new MergedView(List.of(a, b, c));
    }

    @Test
    void matchesKernelOverlayMount() throws Exception {
        Path mnt = mountOverlay(List.of(a, b, c), tmp.resolve("mnt"));
        Map<String, String> kernel;
        try {
            kernel = describeHost(mnt);
        } finally {
            umount(mnt);
        }
        assertThat(kernel).hasSizeGreaterThan(30).containsKeys("/opq/new", "/f2d/child", "/re/y", "/dev/sda", "/hard2")
                .doesNotContainKeys("/opq/old1", "/del/file1", "/gone", "/re/x", "/never-existed");
        assertThat(describeView(view)).containsExactlyEntriesOf(kernel);
    }

    @Test
    void overlayRules() throws Exception {
        assertThat(view.stat("/del/file1", false)).isEmpty();
        assertThat(view.stat("/del/keep", false)).isPresent();
        assertThat(view.stat("/gone", false)).isEmpty();
        assertThat(view.list("/opq")).extracting(MergedView.Entry::name).containsExactly("new");
        assertThat(view.list("/merge")).extracting(MergedView.Entry::name).containsExactly("a1", "b1", "c1", "shared");
        assertThat(read(view, "/merge/shared")).isEqualTo("from b");
        assertThat(view.stat("/d2f", false).orElseThrow().type()).isEqualTo(MergedView.Type.FILE);
        assertThat(view.list("/f2d")).extracting(MergedView.Entry::name).containsExactly("child");
        assertThat(view.list("/re")).extracting(MergedView.Entry::name).containsExactly("y");
        assertThat(view.stat("/never-existed", false)).isEmpty();
        MergedView.Entry dev = view.stat("/dev/sda", false).orElseThrow();
        assertThat(dev.type()).isEqualTo(MergedView.Type.BLOCK);
        assertThat(dev.rdevMajor()).isEqualTo(8);
        assertThat(view.stat("/bin/su", false).orElseThrow().mode()).isEqualTo(0104755);
    }

    @Test
    void symlinksResolveInsideTheImage() throws Exception {
        assertThat(read(view, "/lnk")).isEqualTo("127.0.0.1 localhost\n");
        assertThat(read(view, "/usr/lib/rel")).isEqualTo("127.0.0.1 localhost\n");
        assertThat(view.stat("/lnk", false).orElseThrow().symlinkTarget()).isEqualTo("/etc/hosts");
        assertThat(view.stat("/lnk", false).orElseThrow().mtime()).isEqualTo(1_600_000_000L);
        assertThat(view.stat("/lnk", true).orElseThrow().type()).isEqualTo(MergedView.Type.FILE);
        assertThat(view.realPath("newlink")).isEqualTo("/merge/b1");
        assertThat(view.list("/merge/../etc/./")).extracting(MergedView.Entry::name).contains("hosts");
    }

    @Test
    void pathEscapesStayInsideTheImage() throws Exception {
        // the host has an /etc/shadow; only the image's one may ever be read
        assertThat(read(view, "../../etc/shadow")).isEqualTo("image-shadow\n");
        assertThat(read(view, "/../../../../etc/shadow")).isEqualTo("image-shadow\n");
        symlink(a.resolve("evil"), "/etc/passwd-host-only");
        symlink(a.resolve("evil2"), "../../../../../../../../etc/shadow");
        symlink(a.resolve("usr/x/y/z"), "../../../../../../../../../../../etc/shadow");
        symlink(a.resolve("hostroot"), "/");
        symlink(a.resolve("tmpdir"), tmp.toString()); // absolute host path of the layers themselves
        MergedView v = new MergedView(List.of(a, b, c));
        assertThat(v.stat("/evil", true)).isEmpty();
        assertThat(read(v, "/evil2")).isEqualTo("image-shadow\n");
        assertThat(read(v, "/usr/x/y/z")).isEqualTo("image-shadow\n");
        assertThat(read(v, "/hostroot/hostroot/etc/shadow")).isEqualTo("image-shadow\n");
        assertThat(v.stat("/tmpdir", true)).isEmpty();
        assertThat(v.stat("/tmpdir/a/etc/passwd", true)).isEmpty();
        assertThat(v.realPath("/hostroot/../..")).isEqualTo("/");
    }

    @Test
    void loopsAndInvalidPaths() throws Exception {
        symlink(a.resolve("loop1"), "loop2");
        symlink(a.resolve("loop2"), "/loop1");
        symlink(a.resolve("self"), "self/x");
        MergedView v = new MergedView(List.of(a, b, c));
        assertThatThrownBy(() -> v.open("/loop1")).isInstanceOf(InspectException.class)
                .extracting(e -> ((InspectException) e).kind()).isEqualTo(Kind.LOOP);
        assertThatThrownBy(() -> v.stat("/self", true)).extracting(e -> ((InspectException) e).kind()).isEqualTo(Kind.LOOP);
        assertThat(v.stat("/loop1", false)).isPresent();
        assertThatThrownBy(() -> v.stat("/etc/\0/passwd", false)).extracting(e -> ((InspectException) e).kind()).isEqualTo(Kind.INVALID_PATH);
        assertThatThrownBy(() -> v.stat("/" + "a/".repeat(2100), false)).extracting(e -> ((InspectException) e).kind()).isEqualTo(Kind.INVALID_PATH);
        assertThat(v.stat("/" + "x".repeat(300), false)).isEmpty(); // over NAME_MAX: simply absent
        assertThat(v.stat("/" + "../".repeat(1000) + "etc", false)).isPresent();
        assertThatThrownBy(() -> v.list("/etc/hosts")).extracting(e -> ((InspectException) e).kind()).isEqualTo(Kind.NOT_A_DIRECTORY);
        assertThat(v.stat("/etc/hosts/x", false)).isEmpty();
        assertThatThrownBy(() -> v.open("/etc")).extracting(e -> ((InspectException) e).kind()).isEqualTo(Kind.IS_A_DIRECTORY);
        assertThatThrownBy(() -> v.open("/dev/null")).extracting(e -> ((InspectException) e).kind()).isEqualTo(Kind.NOT_A_REGULAR_FILE);
        assertThatThrownBy(() -> v.open("/nope")).extracting(e -> ((InspectException) e).kind()).isEqualTo(Kind.NOT_FOUND);
    }

    @Test
    void namesFromTheImagesOwnPasswd() throws Exception {
        MergedView.Entry home = view.stat("/home/alice", false).orElseThrow();
        assertThat(home.owner()).isEqualTo("alice");
        assertThat(home.group()).isEqualTo("staff");
        Linux.lchown(c.resolve("etc/hosts"), 4242, 4243);
        MergedView.Entry hosts = new MergedView(List.of(a, b, c)).stat("/etc/hosts", false).orElseThrow();
        assertThat(hosts.owner()).isEqualTo("4242");
        assertThat(hosts.ownerResolved()).isFalse();
    }

    @Test
    void tarRoundTripsThroughTarLayerWriter() throws Exception {
        byte[] cap = {1, 0, 0, 2, (byte) 0x80, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        Linux.lsetxattr(c.resolve("bin/su"), "security.capability", cap);
        Linux.lsetxattr(c.resolve("etc/hosts"), "user.note", "héllo".getBytes(java.nio.charset.StandardCharsets.UTF_8));
        file(a.resolve("deep/" + "long-directory-name/".repeat(12) + "f"), "deep");
        Linux.lchown(a.resolve("deep"), 5_000_000, 5_000_001);
        MergedView v = new MergedView(List.of(a, b, c));
        Path tarFile = tmp.resolve("out.tar");
        try (var out = Files.newOutputStream(tarFile)) {
            v.writeTar("/", out);
        }
        Path copy = dir(tmp.resolve("copy"));
        try (var in = Files.newInputStream(tarFile)) {
            new dev.contree.layerformat.TarLayerWriter(copy).write(in);
        }
        MergedView back = new MergedView(List.of(copy));
        assertThat(withoutDirNlink(describeView(back))).containsExactlyEntriesOf(withoutDirNlink(describeView(v)));
        assertThat(Linux.lgetxattr(copy.resolve("bin/su"), "security.capability")).isEqualTo(cap);
        assertThat(new String(Linux.lgetxattr(copy.resolve("etc/hosts"), "user.note"), java.nio.charset.StandardCharsets.UTF_8)).isEqualTo("héllo");
        assertThat(Linux.lstat(copy.resolve("hard1")).ino()).isEqualTo(Linux.lstat(copy.resolve("hard2")).ino());
        assertThat(Linux.lgetxattr(copy.resolve("opq"), "trusted.overlay.opaque")).isNull();
    }

    @Test
    void tarOfASubtreeNamesMembersFromRoot() throws Exception {
        var bo = new java.io.ByteArrayOutputStream();
        view.writeTar("/merge", bo);
        List<String> names = new java.util.ArrayList<>();
        try (var t = new org.apache.commons.compress.archivers.tar.TarArchiveInputStream(new java.io.ByteArrayInputStream(bo.toByteArray()))) {
            for (var e = t.getNextEntry(); e != null; e = t.getNextEntry()) names.add(e.getName());
        }
        assertThat(names).containsExactly("merge/", "merge/a1", "merge/b1", "merge/c1", "merge/shared");
        assertThatThrownBy(() -> view.writeTar("/nope", new java.io.ByteArrayOutputStream()))
                .extracting(e -> ((InspectException) e).kind()).isEqualTo(Kind.NOT_FOUND);
    }

    private static Map<String, String> withoutDirNlink(Map<String, String> m) {
        Map<String, String> out = new java.util.TreeMap<>();
        m.forEach((k, v) -> out.put(k, v.startsWith("40") ? v.replaceAll(" nlink=\\d+", "") : v));
        return out;
    }

    @Test
    void fiftyLayersStayFast() throws Exception {
        List<Path> stack = new java.util.ArrayList<>();
        for (int i = 0; i < 50; i++) {
            Path l = dir(tmp.resolve("stack/" + i));
            file(l.resolve("usr/lib/deep/dir/f" + i), "v" + i);
            if (i % 7 == 0) whiteout(l.resolve("usr/lib/deep/dir/f" + (i + 1)));
            stack.add(l);
        }
        MergedView v = new MergedView(stack);
        long t0 = System.nanoTime();
        for (int i = 0; i < 200; i++) v.stat("/usr/lib/deep/dir/f49", false);
        List<MergedView.Entry> l = v.list("/usr/lib/deep/dir");
        assertThat(l).hasSize(50 - 7);
        assertThat(java.time.Duration.ofNanos(System.nanoTime() - t0)).isLessThan(java.time.Duration.ofSeconds(3));
        assertThat(read(v, "/usr/lib/deep/dir/f0")).isEqualTo("v0");
    }

    @Test
    void textListing() throws Exception {
        String text = view.textListing("/");
        assertThat(text).startsWith("total ");
        assertThat(text).contains("lnk -> /etc/hosts").containsPattern("drwxr-xr-x \\d+ root root");
        assertThat(view.textListing("/bin")).contains("-rwsr-xr-x 1 root root");
        assertThat(view.textListing("/dev")).contains("1, 3");
    }

    /**
     * A tree past the inspect depth (3,000 levels in one layer, 1,100 in another): walks end in a 413 naming the
     * limit, never a StackOverflowError or ENAMETOOLONG; the limit itself is reachable; a symlink chain that
     * resolves deeper than the limit is a 413 too.
     */
    @Test
    void treesDeeperThanTheLimitAre413NeverAStackOverflow() throws Exception {
        Path deepTop = dir(tmp.resolve("deepTop")), deepBase = dir(tmp.resolve("deepBase"));
        dev.contree.linux.Dir.Name d = dev.contree.linux.Dir.Name.of("d");
        for (var layer : Map.of(deepTop, 3000, deepBase, 1100).entrySet()) {
            try (var root = dev.contree.linux.Dir.open(layer.getKey(), "/"); var path = new dev.contree.linux.DirStack(root)) {
                for (int i = 0; i < layer.getValue(); i++) {
                    path.top().mkdir(d, 0755);
                    path.push(d);
                }
            }
        }
        try (MergedView deep = new MergedView(List.of(deepTop, deepBase)); MergedView shallow = new MergedView(List.of(c))) {
            String limit = "/d".repeat(MergedView.MAX_DEPTH);
            assertThat(deep.stat(limit, false)).isPresent(); // level 1024 is visible
            assertThat(deep.list(limit.substring(0, limit.length() - 2))).hasSize(1);
            for (var walk : List.<ThrowingWalk>of(
                    () -> deep.list(limit),
                    () -> deep.writeTar("/", java.io.OutputStream.nullOutputStream()),
                    () -> deep.sizeTar("/d", Budget.unlimited()),
                    () -> MergedView.diff(shallow, deep),
                    () -> MergedView.diff(deep, shallow))) {
                assertThatThrownBy(walk::run).isInstanceOf(InspectException.class)
                        .hasMessageContaining("deeper than inspect reads (at most 1024 levels")
                        .extracting(e -> ((InspectException) e).kind()).isEqualTo(Kind.TOO_LARGE);
            }
            GrepResult g = deep.grep(new GrepQuery(List.of("x"), List.of("/"), List.of(), 0, 10, GrepQuery.CaseMode.SENSITIVE,
                    java.time.Duration.ofSeconds(10)));
            assertThat(g.truncated()).isTrue();
            // A short request path whose symlink leads 1,100 levels down.
            symlink(deepTop.resolve("l"), "d" + "/d".repeat(1099));
            assertThatThrownBy(() -> deep.stat("/l/d", true)).isInstanceOf(InspectException.class)
                    .hasMessageContaining("1024 levels");
        } finally {
            try (var t = dev.contree.linux.Dir.open(tmp, "/")) { // @TempDir's cleanup uses paths: too long here
                t.deleteRecursively(dev.contree.linux.Dir.Name.of("deepTop"));
                t.deleteRecursively(dev.contree.linux.Dir.Name.of("deepBase"));
            }
        }
    }

    interface ThrowingWalk { void run() throws Exception; }
}
