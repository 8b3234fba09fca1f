package dev.contree.inspect;

import dev.contree.linux.Linux;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Test helpers: build layer dirs, and describe trees (host or merged) as comparable maps. */
final class Trees {
    private Trees() {}

    static Path file(Path p, String content) throws IOException {
        Files.createDirectories(p.getParent());
        Files.writeString(p, content);
        return p;
    }

    static Path dir(Path p) throws IOException {
        return Files.createDirectories(p);
    }

    static Path symlink(Path p, String target) throws IOException {
        Files.createDirectories(p.getParent());
        return Files.createSymbolicLink(p, Path.of(target));
    }

    static void whiteout(Path p) throws IOException {
        Files.createDirectories(p.getParent());
        Linux.mkwhiteout(p);
    }

    static void opaque(Path dir) throws IOException {
        Files.createDirectories(dir);
        Linux.lsetxattr(dir, "trusted.overlay.opaque", new byte[] {'y'});
    }

    /** A recursive description of a host tree (e.g. a kernel overlay mount), lstat semantics. */
    static Map<String, String> describeHost(Path root) throws IOException {
        Map<String, String> out = new TreeMap<>();
        describeHost(root, "/", out);
        return out;
    }

    private static void describeHost(Path p, String imagePath, Map<String, String> out) throws IOException {
        Linux.Stat st = Linux.lstat(p);
        String target = st.isSymlink() ? Files.readSymbolicLink(p).toString() : "";
        out.put(imagePath, line(st.mode(), st.uid(), st.gid(), st.isDir() ? -1 : st.size(), st.mtimeSec(),
                st.nlink(), target, st.rdev(), st.isRegular() ? sha(p) : ""));
        if (st.isDir()) {
            List<Path> kids = new ArrayList<>();
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(p)) {
                ds.forEach(kids::add);
            }
            for (Path k : kids)
                describeHost(k, MergedView.join(imagePath, k.getFileName().toString()), out);
        }
    }

    /** The same description computed through a MergedView's public API. */
    static Map<String, String> describeView(MergedView v) throws IOException {
        Map<String, String> out = new TreeMap<>();
        MergedView.Entry root = v.stat("/", false).orElseThrow();
        out.put("/", line(root));
        describeView(v, "/", out);
        return out;
    }

    private static void describeView(MergedView v, String dir, Map<String, String> out) throws IOException {
        for (MergedView.Entry e : v.list(dir)) {
            String sha = "";
            if (e.isRegular()) try (InputStream in = v.open(e.path())) { sha = sha(in); }
            out.put(e.path(), line(e.mode(), e.uid(), e.gid(), e.isDir() ? -1 : e.size(), e.mtime(), e.nlink(),
                    e.symlinkTarget(), e.rdev(), sha));
            if (e.isDir()) describeView(v, e.path(), out);
        }
    }

    private static String line(MergedView.Entry e) {
        return line(e.mode(), e.uid(), e.gid(), -1, e.mtime(), e.nlink(), e.symlinkTarget(), e.rdev(), "");
    }

    private static String line(int mode, int uid, int gid, long size, long mtime, long nlink, String target, long rdev, String sha) {
        return String.format("%o %d:%d size=%d mtime=%d nlink=%d ->%s rdev=%d %s", mode, uid, gid, size, mtime, nlink, target, rdev, sha);
    }

    static String sha(Path p) throws IOException {
        try (InputStream in = Files.newInputStream(p, LinkOption.NOFOLLOW_LINKS)) {
            return sha(in);
        }
    }

    static String sha(InputStream in) throws IOException {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] b = new byte[8192];
            int n;
            while ((n = in.read(b)) > 0) md.update(b, 0, n);
            return HexFormat.of().formatHex(md.digest()).substring(0, 16);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    static String read(MergedView v, String path) throws IOException {
        try (InputStream in = v.open(path)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    /** Mounts the layers read-only with the kernel's overlayfs; returns the mount point. */
    static Path mountOverlay(List<Path> layersTopFirst, Path mnt) throws IOException, InterruptedException {
        Files.createDirectories(mnt);
        StringBuilder lower = new StringBuilder();
        for (Path l : layersTopFirst) lower.append(lower.isEmpty() ? "" : ":").append(l);
        Process p = new ProcessBuilder("mount", "-t", "overlay", "overlay", "-o", "ro,lowerdir=" + lower, mnt.toString())
                .redirectErrorStream(true).start();
        String outText = new String(p.getInputStream().readAllBytes());
        if (p.waitFor() != 0) throw new IOException("mount failed: " + outText);
        return mnt;
    }

    static void umount(Path mnt) throws IOException, InterruptedException {
        new ProcessBuilder("umount", mnt.toString()).inheritIO().start().waitFor();
    }
}
