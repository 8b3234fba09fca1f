package dev.contree.inspect;

import static dev.contree.inspect.Trees.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.contree.inspect.GrepQuery.CaseMode;
import dev.contree.linux.Linux;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GrepAndDiffTest {
    @TempDir Path tmp;
    Path base, top;
    MergedView view;

    @BeforeEach
    void image() throws Exception {
        base = dir(tmp.resolve("base"));
        top = dir(tmp.resolve("top"));
        file(base.resolve("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nbin:x:1:1:bin:/bin:/sbin/nologin\n");
        file(base.resolve("etc/motd"), "Welcome ROOT user\nno match here\nroot again, root twice\n");
        file(base.resolve("src/a.py"), "import os\nprint('root')\n");
        file(base.resolve("src/b.txt"), "root in txt\n");
        file(base.resolve("src/node_modules/m.py"), "root in deps\n");
        file(base.resolve("utf8.txt"), "héllo wörld\n");
        Files.write(base.resolve("bin.dat"), new byte[] {'r', 'o', 'o', 't', 0, 1, 2});
        file(base.resolve("gone.txt"), "root deleted\n");
        symlink(base.resolve("link-to-etc"), "/etc");
        file(top.resolve("src/new.py"), "root is new\n");
        whiteout(top.resolve("gone.txt"));
        view = new MergedView(List.of(top, base));
    }

    private GrepResult grep(List<String> patterns, List<String> paths, List<String> globs, int maxCount, int maxTotal, CaseMode c) throws Exception {
        return view.grep(new GrepQuery(patterns, paths, globs, maxCount, maxTotal, c, Duration.ofSeconds(10)));
    }

    @Test
    void findsLinesWithByteOffsets() throws Exception {
        GrepResult r = view.grep(GrepQuery.of("root"));
        assertThat(r.truncated()).isFalse();
        assertThat(r.matches()).extracting(GrepResult.Match::path).containsExactly(
                "/etc/motd", "/etc/passwd", "/src/a.py", "/src/b.txt", "/src/new.py", "/src/node_modules/m.py");
        GrepResult.Match motd = r.matches().getFirst();
        assertThat(motd.lineNumber()).isEqualTo(3);
        assertThat(motd.lineText()).isEqualTo("root again, root twice\n");
        assertThat(motd.submatches()).containsExactly(new GrepResult.Submatch(0, 4), new GrepResult.Submatch(12, 16));
        GrepResult.Match passwd = r.matches().get(1);
        assertThat(passwd.submatches()).hasSize(3);
        GrepResult u = view.grep(GrepQuery.of("wörld"));
        assertThat(u.matches().getFirst().submatches()).containsExactly(new GrepResult.Submatch(7, 13));
    }

    @Test
    void caseModesGlobsAndLimits() throws Exception {
        assertThat(grep(List.of("root"), List.of("/etc/motd"), List.of(), 0, 0, CaseMode.INSENSITIVE).matches()).hasSize(2);
        assertThat(grep(List.of("root"), List.of("/etc/motd"), List.of(), 0, 0, CaseMode.SMART).matches()).hasSize(2);
        assertThat(grep(List.of("ROOT"), List.of("/etc/motd"), List.of(), 0, 0, CaseMode.SMART).matches()).hasSize(1);
        assertThat(grep(List.of("ROOT", "bin"), List.of("/etc"), List.of(), 0, 0, CaseMode.SENSITIVE).matches())
                .extracting(GrepResult.Match::path).containsExactly("/etc/motd", "/etc/passwd", "/etc/passwd");
        assertThat(grep(List.of("root"), List.of("/src"), List.of("*.py", "!node_modules"), 0, 0, CaseMode.SENSITIVE).matches())
                .extracting(GrepResult.Match::path).containsExactly("/src/a.py", "/src/new.py");
        assertThat(grep(List.of("root"), List.of("/"), List.of("src/*.txt"), 0, 0, CaseMode.SENSITIVE).matches())
                .extracting(GrepResult.Match::path).containsExactly("/src/b.txt");
        assertThat(grep(List.of("o"), List.of("/etc/passwd"), List.of(), 1, 0, CaseMode.SENSITIVE).matches()).hasSize(1);
        GrepResult t = grep(List.of("root"), List.of("/"), List.of(), 0, 2, CaseMode.SENSITIVE);
        assertThat(t.matches()).hasSize(2);
        assertThat(t.truncated()).isTrue();
        assertThat(grep(List.of("root"), List.of("/"), List.of(), 0, 6, CaseMode.SENSITIVE).truncated()).isFalse();
    }

    @Test
    void skipsBinaryDeletedAndSymlinks() throws Exception {
        GrepResult r = view.grep(GrepQuery.of("root"));
        assertThat(r.matches()).extracting(GrepResult.Match::path)
                .noneMatch(p -> p.contains("bin.dat") || p.contains("gone") || p.startsWith("/link-to-etc"));
        // an explicit path through a symlink is followed, like rg; results use the real path
        assertThat(grep(List.of("root"), List.of("/link-to-etc"), List.of(), 0, 0, CaseMode.SENSITIVE).matches()).isNotEmpty();
    }

    @Test
    void catastrophicPatternsRunInLinearTimeAndBadInputIs400() throws Exception {
        // (x+x+)+y and (a|aa)*c backtrack exponentially (or overflow the stack) in java.util.regex; RE2 is linear.
        file(top.resolve("evil.txt"), "x".repeat(3000) + "!\n");
        file(top.resolve("long.txt"), "a".repeat(200_000) + "\n" + "aac\n");
        MergedView v = new MergedView(List.of(top, base));
        long t0 = System.nanoTime();
        GrepResult r = v.grep(new GrepQuery(List.of("(x+x+)+y"), List.of("/evil.txt"), List.of(), 0, 0, CaseMode.SENSITIVE, Duration.ofSeconds(10)));
        assertThat(r.truncated()).isFalse();
        assertThat(r.matches()).isEmpty();
        GrepResult r2 = v.grep(new GrepQuery(List.of("(a|aa)*c"), List.of("/long.txt"), List.of(), 0, 0, CaseMode.SENSITIVE, Duration.ofSeconds(10)));
        assertThat(r2.truncated()).isFalse();
        assertThat(r2.matches()).extracting(GrepResult.Match::lineNumber).containsExactly(2L);
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(3));
        assertThatThrownBy(() -> view.grep(GrepQuery.of("(a)\\1"))).isInstanceOf(InspectException.class)
                .hasMessageContaining("backreferences")
                .extracting(e -> ((InspectException) e).kind()).isEqualTo(InspectException.Kind.INVALID_ARGUMENT);
        assertThatThrownBy(() -> view.grep(GrepQuery.of("(unclosed"))).extracting(e -> ((InspectException) e).kind())
                .isEqualTo(InspectException.Kind.INVALID_ARGUMENT);
        assertThatThrownBy(() -> view.grep(new GrepQuery(List.of("x"), List.of("/nope"), List.of(), 0, 0, null, null)))
                .extracting(e -> ((InspectException) e).kind()).isEqualTo(InspectException.Kind.NOT_FOUND);
    }

    @Test
    void diffOfSiblingImages() throws Exception {
        Path l1 = dir(tmp.resolve("l1")), l2 = dir(tmp.resolve("l2"));
        file(l1.resolve("only-in-1"), "1");
        file(l1.resolve("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1:bin:/bin:/sbin/nologin\n"); // same size? no
        file(l2.resolve("src/extra/deep.txt"), "deep");
        whiteout(l2.resolve("etc/motd"));
        MergedView i1 = new MergedView(List.of(l1, top, base));
        MergedView i2 = new MergedView(List.of(l2, top, base));
        DiffResult d = MergedView.diff(i1, i2);
        assertThat(d.added()).extracting(DiffResult.Change::path).containsExactly("/src/extra", "/src/extra/deep.txt");
        assertThat(d.deleted()).extracting(DiffResult.Change::path).containsExactly("/etc/motd", "/only-in-1");
        assertThat(d.modified()).extracting(DiffResult.Change::path).contains("/etc/passwd");
        assertThat(d.deleted().getFirst().type()).isEqualTo(MergedView.Type.FILE);
        assertThat(MergedView.diff(i1, i1).added()).isEmpty();
        assertThat(MergedView.diff(i1, new MergedView(List.of(l1, top, base)))).isEqualTo(new DiffResult(List.of(), List.of(), List.of()));
    }

    @Test
    void diffComparesContentOnlyWhenNeeded() throws Exception {
        Path l1 = dir(tmp.resolve("l1")), l2 = dir(tmp.resolve("l2"));
        Path f1 = file(l1.resolve("same.txt"), "same content");
        Path f2 = file(l2.resolve("same.txt"), "same content");
        Path g1 = file(l1.resolve("samesize.txt"), "aaaa");
        Path g2 = file(l2.resolve("samesize.txt"), "bbbb");
        for (Path p : List.of(f1, f2, g1, g2)) Linux.lutimes(p, 0, 0, 1_000_000, 0);
        file(l1.resolve("dir2file/x"), "x");
        file(l2.resolve("dir2file"), "now a file");
        symlink(l1.resolve("ln"), "a");
        symlink(l2.resolve("ln"), "b");
        DiffResult d = MergedView.diff(new MergedView(List.of(l1, base)), new MergedView(List.of(l2, base)));
        assertThat(d.modified()).extracting(DiffResult.Change::path).containsExactly("/dir2file", "/ln", "/samesize.txt");
        assertThat(d.deleted()).extracting(DiffResult.Change::path).containsExactly("/dir2file/x");
        assertThat(d.modified().getFirst().before().type()).isEqualTo(MergedView.Type.DIR);
        assertThat(d.modified().getFirst().after().type()).isEqualTo(MergedView.Type.FILE);
    }

    @Test
    void diffSkipsSharedSubtreesWithoutReadingThem() throws Exception {
        // a big shared base subtree must not be walked
        for (int i = 0; i < 2000; i++) file(base.resolve("usr/share/many/f" + i), "x" + i);
        Path l1 = dir(tmp.resolve("l1")), l2 = dir(tmp.resolve("l2"));
        file(l1.resolve("a"), "1");
        file(l2.resolve("b"), "2");
        MergedView i1 = new MergedView(List.of(l1, top, base)), i2 = new MergedView(List.of(l2, top, base));
        DiffResult d = MergedView.diff(i1, i2);
        assertThat(d.added()).extracting(DiffResult.Change::path).containsExactly("/b");
        assertThat(d.deleted()).extracting(DiffResult.Change::path).containsExactly("/a");
        // only the root of each view was read: /usr, /etc, /src are backed by the same host dirs
        assertThat(i1.dirReads()).isEqualTo(1);
        assertThat(i2.dirReads()).isEqualTo(1);
    }

    @Test
    void diffOfSparseFilesComparesOnlyTheirDataAndStopsAtTheByteCap() throws Exception {
        Path l1 = dir(tmp.resolve("s1")), l2 = dir(tmp.resolve("s2"));
        long size = 16L << 30;
        for (Path l : List.of(l1, l2)) {
            try (var f = new java.io.RandomAccessFile(l.resolve("sparse").toFile(), "rw")) {
                f.setLength(size);
                f.seek(size / 2);
                f.write(new byte[] {'x'});
                f.seek(size - 5000);
                f.write(l == l1 ? new byte[] {'y'} : new byte[] {'z'}); // the last data block differs
            }
            Files.setLastModifiedTime(l.resolve("sparse"), java.nio.file.attribute.FileTime.fromMillis(1_700_000_000_000L));
        }
        MergedView a = new MergedView(List.of(l1, base)), b = new MergedView(List.of(l2, base));
        Budget budget = new Budget(Duration.ofSeconds(30), 1_000_000, "entries", 1L << 30, "bytes compared");
        long t0 = System.nanoTime();
        DiffResult d = MergedView.diff(a, b, budget);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertThat(d.modified()).extracting(DiffResult.Change::path).containsExactly("/sparse");
        // two data blocks per file at most (fs block granularity), never the 32 GiB of holes
        assertThat(budget.bytes()).isLessThan(1L << 20);
        assertThat(ms).isLessThan(2000);
        // dense equal files past the byte cap: 413 naming it
        Path d1 = dir(tmp.resolve("d1")), d2 = dir(tmp.resolve("d2"));
        byte[] mb = new byte[1 << 20];
        java.util.Arrays.fill(mb, (byte) 'q');
        for (Path l : List.of(d1, d2)) {
            Files.write(l.resolve("dense"), mb);
            Files.setLastModifiedTime(l.resolve("dense"), java.nio.file.attribute.FileTime.fromMillis(1_700_000_000_000L));
        }
        Budget small = new Budget(Duration.ofSeconds(30), 1_000_000, "entries", 1 << 20, "bytes of file content compared");
        assertThatThrownBy(() -> MergedView.diff(new MergedView(List.of(d1, base)), new MergedView(List.of(d2, base)), small))
                .isInstanceOf(InspectException.class).hasMessageContaining("1048576 bytes of file content compared")
                .extracting(e -> ((InspectException) e).kind()).isEqualTo(InspectException.Kind.TOO_LARGE);
    }

    @Test
    void namesRoundTripEveryByteString() {
        java.util.Random r = new java.util.Random(42);
        for (int i = 0; i < 20_000; i++) {
            byte[] b = new byte[1 + r.nextInt(12)];
            r.nextBytes(b);
            String s = Names.decode(b);
            assertThat(Names.encode(s)).isEqualTo(b);
            assertThat(Names.exact(s)).isEqualTo(java.nio.charset.StandardCharsets.UTF_8.newDecoder()
                    .decode(java.nio.ByteBuffer.wrap(b), java.nio.CharBuffer.allocate(64), true).isUnderflow());
        }
        assertThat(Names.display(Names.decode(new byte[] {'c', 'a', 'f', (byte) 0xe9}))).isEqualTo("caf\\xe9");
        assertThat(Names.queryValues("path=/caf%E9&x=1&path=%2Fa+b", "path"))
                .containsExactly(Names.decode(new byte[] {'/', 'c', 'a', 'f', (byte) 0xe9}), "/a b");
    }
}
