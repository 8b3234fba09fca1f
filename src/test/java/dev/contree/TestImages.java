package dev.contree;

import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPOutputStream;

/** Test images built from the host's busybox-static: a small but complete Linux userland, no network needed. */
public final class TestImages {
    private static byte[] busybox;

    private TestImages() {}

    /** A gzip'd rootfs tarball: /bin/busybox with every applet linked, /etc/passwd+group (root, user 1000), /root, /tmp. */
    public static synchronized byte[] busyboxRootfs() throws IOException, InterruptedException {
        if (busybox != null) return busybox;
        Path bin = Path.of("/bin/busybox");
        if (!Files.isRegularFile(bin)) throw new IllegalStateException("busybox-static is not installed (apt-get install busybox-static)");
        Process p = new ProcessBuilder(bin.toString(), "--list").redirectErrorStream(true).start();
        List<String> applets = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).lines().filter(s -> !s.isBlank()).toList();
        p.waitFor();
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(new GZIPOutputStream(buf))) {
            tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
            dir(tar, "bin/", 0755);
            dir(tar, "etc/", 0755);
            dir(tar, "root/", 0700);
            dir(tar, "tmp/", 01777);
            dir(tar, "home/", 0755);
            dir(tar, "home/user/", 0755, 1000, 1000);
            byte[] bytes = Files.readAllBytes(bin);
            TarArchiveEntry e = new TarArchiveEntry("bin/busybox");
            e.setMode(0755);
            e.setSize(bytes.length);
            tar.putArchiveEntry(e);
            tar.write(bytes);
            tar.closeArchiveEntry();
            for (String applet : applets) {
                if (applet.equals("busybox")) continue;
                TarArchiveEntry l = new TarArchiveEntry("bin/" + applet, TarArchiveEntry.LF_SYMLINK);
                l.setLinkName("busybox");
                tar.putArchiveEntry(l);
                tar.closeArchiveEntry();
            }
            file(tar, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n");
            file(tar, "etc/group", "root:x:0:\nuser:x:1000:\n");
            file(tar, "etc/hostname", "busybox\n");
        }
        busybox = buf.toByteArray();
        return busybox;
    }

    private static void dir(TarArchiveOutputStream tar, String name, int mode) throws IOException {
        dir(tar, name, mode, 0, 0);
    }

    private static void dir(TarArchiveOutputStream tar, String name, int mode, int uid, int gid) throws IOException {
        TarArchiveEntry d = new TarArchiveEntry(name);
        d.setMode(040000 | mode);
        d.setUserId(uid);
        d.setGroupId(gid);
        tar.putArchiveEntry(d);
        tar.closeArchiveEntry();
    }

    private static void file(TarArchiveOutputStream tar, String name, String content) throws IOException {
        byte[] b = content.getBytes(StandardCharsets.UTF_8);
        TarArchiveEntry e = new TarArchiveEntry(name);
        e.setMode(0644);
        e.setSize(b.length);
        tar.putArchiveEntry(e);
        tar.write(b);
        tar.closeArchiveEntry();
    }
}
