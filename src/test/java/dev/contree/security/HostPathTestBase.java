package dev.contree.security;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestDirs;
import dev.contree.TestServer;
import dev.contree.TestImages;
import dev.contree.linux.Linux;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;

import static dev.contree.security.SecurityTestSupport.q;
import static dev.contree.security.SecurityTestSupport.stream;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Paths the sandbox or an image controls never lead the server or the runtime onto the host. An image (imported,
 * or made by a run) puts a symlink, absolute or relative, to a host directory at a runtime mount point or
 * scratch path ({@code /dev}, {@code /proc}, {@code /sys}, {@code /tmp}, {@code /.contree}, {@code /.contree/init});
 * the host directory holds what the runtime and the commit cleanup would create or delete there (empty files
 * and directories named ptmx, pts, shm, mqueue, init, ...) and a victim file. After the run and its commit, a
 * further run on the result, and compaction of the chain, the host directory is exactly as it was.
 * Subclasses pick the runtime; the server compacts beyond depth 2.
 */
abstract class HostPathTestBase {
    @AutoClose static TestServer s;
    static String base;
    static final List<Path> victims = new ArrayList<>();

    static void startServer(String runtime) throws Exception {
        s = TestServer.inTempDir("hostpath-" + runtime, c -> c.withRuntime(runtime, "ptrace").withMaxMountDepth(2));
        base = s.importBusybox(null);
    }

    @AfterAll
    static void removeVictims() throws Exception {
        for (Path v : victims) TestDirs.removeWithMounts(v);
    }

    /** A host dir with what a runtime or the scratch cleanup would touch: empty files and dirs, a victim file. */
    static Path victimDir() throws IOException {
        Path v = Files.createTempDirectory("contree-victim-");
        victims.add(v);
        for (String d : List.of("pts", "shm", "mqueue", "fs/cgroup", "proc", "sys", "tmp", "dev")) Files.createDirectories(v.resolve(d));
        for (String f : List.of("init", "ptmx", "null", "hostname", "resolv.conf")) Files.createFile(v.resolve(f));
        Files.writeString(v.resolve("victim.txt"), "victim\n");
        return v;
    }

    /** Every entry below {@code v}: type, mode, size, mtime, link target. */
    static Map<String, String> snapshot(Path v) throws IOException {
        Map<String, String> out = new TreeMap<>();
        try (Stream<Path> w = Files.walk(v)) {
            for (Path p : w.toList()) {
                Linux.Stat st = Linux.lstat(p);
                String link = st.isSymlink() ? " -> " + Files.readSymbolicLink(p) : "";
                out.put(v.relativize(p).toString(), Integer.toOctalString(st.mode()) + " " + st.size() + " "
                        + st.mtimeSec() + "." + st.mtimeNsec() + link);
            }
        }
        return out;
    }

    static JsonNode run(String image, String command) {
        return SecurityTestSupport.run(s, "{\"image\":\"" + image + "\",\"command\":" + q(command) + ",\"shell\":true}",
                Duration.ofSeconds(180));
    }

    static String resultImage(JsonNode op) {
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        return op.get("result").get("image").asText();
    }

    static String relative(Path host) {
        return "../../../../../../../../.." + host;
    }

    /** The busybox rootfs without {@code drop} (and anything below it), plus {@code extra}. */
    static byte[] busyboxWithout(String drop, EscapeTestBase.TarEdit extra) throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (TarArchiveInputStream in = new TarArchiveInputStream(new GZIPInputStream(new ByteArrayInputStream(TestImages.busyboxRootfs())));
             TarArchiveOutputStream out = new TarArchiveOutputStream(new GZIPOutputStream(buf))) {
            out.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
            TarArchiveEntry e;
            while ((e = in.getNextEntry()) != null) {
                String n = e.getName().replaceAll("/$", "");
                if (drop != null && (n.equals(drop) || n.startsWith(drop + "/"))) continue;
                out.putArchiveEntry(e);
                if (e.isFile()) in.transferTo(out);
                out.closeArchiveEntry();
            }
            extra.apply(out);
        }
        return buf.toByteArray();
    }

    static void dir(TarArchiveOutputStream tar, String name) throws IOException {
        TarArchiveEntry d = new TarArchiveEntry(name + "/");
        d.setMode(040755);
        EscapeTestBase.put(tar, d, null);
    }

    /**
     * Imported images with a symlink to a host dir at every runtime mount point and scratch path, absolute and
     * relative: runs work, commit as unchanged (the image keeps its link), and the host dir never changes.
     */
    @Test
    void importedSymlinksAtMountPointsNeverTouchTheHost() throws Exception {
        for (String target : List.of("dev", "proc", "sys", "tmp", ".contree", ".contree/init")) {
            for (boolean absolute : new boolean[] {true, false}) {
                Path v = victimDir();
                Map<String, String> before = snapshot(v);
                String link = absolute ? v.toString() : relative(v);
                if (target.equals(".contree/init")) link = absolute ? v.resolve("init").toString() : relative(v.resolve("init"));
                String linkTo = link;
                String img = s.importRootfs(s.tokenA, busyboxWithout(target, tar -> {
                    if (target.equals(".contree/init")) dir(tar, ".contree");
                    EscapeTestBase.symlink(tar, target, linkTo);
                }), null);
                String what = target + (absolute ? " -> absolute " : " -> relative ") + v;

                JsonNode first = run(img, "echo hi > /dev/null; ls /dev /proc/self /sys /tmp > /dev/null; echo ran");
                assertThat(stream(first, "stdout")).as(what + ": " + first).isEqualTo("ran\n");
                assertThat(snapshot(v)).as(what + ": after the run and its commit").isEqualTo(before);
                // The replaced link is put back: nothing else changed, so the result is the input image.
                assertThat(resultImage(first)).as(what).isEqualTo(img);

                // A run that writes makes a child; runs on it, then compaction of the chain (max depth 2).
                String child = img;
                for (int i = 0; i < 3; i++) child = resultImage(run(child, "echo " + i + " > /f" + i));
                JsonNode last = run(child, "cat /f0 /f1 /f2");
                assertThat(stream(last, "stdout")).as(what + ": " + last).isEqualTo("0\n1\n2\n");
                assertThat(snapshot(v)).as(what + ": after later runs and compaction").isEqualTo(before);
            }
        }
    }

    /**
     * A run replaces mount points and scratch paths with links to a host dir (what the runtime lets it: /tmp on
     * runc, /.contree's contents); the image it makes is as safe to run as an imported one.
     */
    @Test
    void symlinksPlantedByARunNeverTouchTheHost() throws Exception {
        Path v = victimDir();
        Map<String, String> before = snapshot(v);
        StringBuilder plant = new StringBuilder();
        for (String t : List.of("dev", "proc", "sys", "tmp", ".contree", "dev/pts", "dev/shm", "sys/fs/cgroup", "etc/hostname"))
            plant.append("rm -rf /").append(t).append(" 2>/dev/null; ln -sfn ").append(v).append(" /").append(t).append(" 2>/dev/null; ");
        plant.append("ln -sfn ").append(relative(v)).append(" /.contree/init 2>/dev/null; echo planted");
        JsonNode op = run(base, plant.toString());
        assertThat(stream(op, "stdout")).as(op.toString()).isEqualTo("planted\n");
        String planted = resultImage(op);
        assertThat(snapshot(v)).isEqualTo(before);
        String child = planted;
        for (int i = 0; i < 3; i++) {
            JsonNode r = run(child, "ls -la / /tmp /.contree > /dev/null 2>&1; echo " + i + " > /g" + i + "; echo ok");
            assertThat(stream(r, "stdout")).as(r.toString()).isEqualTo("ok\n");
            child = resultImage(r);
            assertThat(snapshot(v)).as("run " + i).isEqualTo(before);
        }
    }

    /**
     * Files injected below symlinked parents that point at host paths (absolute, relative, ".." chains, chains of
     * links, dangling): they land inside the image or the run is refused; nothing is written on the host.
     */
    @Test
    void injectedFilesNeverLandOnTheHost() throws Exception {
        Path v = victimDir();
        Map<String, String> before = snapshot(v);
        String img = s.importRootfs(s.tokenA, busyboxWithout(null, tar -> {
            EscapeTestBase.symlink(tar, "etc/abs", v.toString());
            EscapeTestBase.symlink(tar, "etc/rel", relative(v));
            EscapeTestBase.symlink(tar, "etc/dotdot", "../../../../" + "../.." + v);
            EscapeTestBase.symlink(tar, "etc/chain", "/etc/abs");
            EscapeTestBase.symlink(tar, "etc/dangling", v + "/missing");
            EscapeTestBase.symlink(tar, "etc/victimfile", v.resolve("victim.txt").toString());
            EscapeTestBase.symlink(tar, "etc/inside", "../root");
            EscapeTestBase.symlink(tar, "etc/loop", "/etc/loop");
            EscapeTestBase.symlink(tar, "etc/up", "../../../../..");
        }), null);
        String payload = s.upload(s.tokenA, "INJECTED\n".getBytes()).json().get("uuid").asText();
        Map<String, String> inside = Map.of("/etc/inside/x", "/root/x", "/etc/up/etc/y", "/etc/y", "/etc/victimfile", "/etc/victimfile");
        for (String path : List.of("/etc/abs/x", "/etc/rel/x", "/etc/dotdot/x", "/etc/chain/x", "/etc/chain/sub/x",
                "/etc/dangling/x", "/etc/victimfile", "/etc/inside/x", "/etc/loop/x", "/etc/up/etc/y",
                v + "/x", "/etc/abs/init", "/etc/rel/pts/x")) {
            String check = inside.getOrDefault(path, path);
            var r = s.json(s.tokenA, "POST", "/v1/instances", "{\"image\":\"" + img + "\",\"command\":" + q("cat " + check)
                    + ",\"shell\":true,\"disposable\":true,\"files\":{" + q(path) + ":{\"uuid\":\"" + payload + "\"}}}");
            if (r.status() != 202) {
                assertThat(r.status()).as(path + ": " + r.text()).isBetween(400, 499);
            } else {
                JsonNode op = s.await(s.tokenA, r.json().get("uuid").asText(), Duration.ofSeconds(120));
                if (op.get("status").asText().equals("SUCCESS")) {
                    assertThat(stream(op, "stdout")).as(path + ": " + op).isEqualTo("INJECTED\n");
                    assertThat(inside.containsKey(path) || path.startsWith(v.toString())).as(path + " written").isTrue();
                } else {
                    assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("FAILED");
                    assertThat(op.get("error").asText()).as(path).doesNotContain(s.dataDir.toString());
                }
            }
            assertThat(snapshot(v)).as(path).isEqualTo(before);
        }
    }

    /**
     * File names are bytes: a chain holding non-UTF-8 names compacts (max depth 2), later runs still work and the
     * names keep their exact bytes.
     */
    @Test
    void nonUtf8NamesSurviveCompaction() throws Exception {
        String img = resultImage(run(base, "mkdir /n; printf a > \"/n/$(printf '\\377\\376')\";"
                + " printf b > \"/n/$(printf 'caf\\351')\"; printf c > \"/n/$(printf 'ok')\""));
        for (int i = 0; i < 4; i++) {
            JsonNode r = run(img, "echo " + i + " > /n/r" + i + "; printf d > \"/n/$(printf '\\351t\\351" + i + "')\"");
            img = resultImage(r);
        }
        JsonNode ls = run(img, "cd /n && for f in *; do printf '%s\\n' \"$f\"; done | od -An -c | tr -s ' \\n' ' '");
        String out = stream(ls, "stdout");
        assertThat(out).as(ls.toString()).contains("377 376").contains("c a f 351").contains("351 t 351 3");
        JsonNode again = run(img, "cat \"/n/$(printf 'caf\\351')\" /n/r3; echo");
        assertThat(stream(again, "stdout")).isEqualTo("b3\n\n");
    }
}
