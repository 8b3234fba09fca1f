package dev.contree.layers;

import dev.contree.linux.Linux;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.time.Instant;
import java.util.TreeMap;

/** Helpers for tests and the benchmark: a throw-away loop-mounted store and a comparable view of a tree. */
final class TestStores {
    private TestStores() {}

    /** A fresh root under /tmp (ext4, so the store formats and loop-mounts an image). */
    static Path freshRoot(String name) throws IOException {
        Path base = Files.createTempDirectory("layers-" + name + "-");
        return base.resolve("store");
    }

    static LayerStore open(Path root) throws IOException {
        return LayerStore.open(root, LayerStoreConfig.defaults().withImageSize(16L << 30));
    }

    /** Closes the store (unmounting the image and with it the loop device) and deletes the temp dir. */
    static void destroy(LayerStore store) throws IOException {
        if (store == null) return;
        Path root = store.root();
        store.close();
        if (Mounts.isMountPoint(root)) Mounts.unmount(root);
        Path base = root.getParent();
        Files.deleteIfExists(root.resolveSibling(root.getFileName() + ".img"));
        Files.deleteIfExists(root);
        Files.deleteIfExists(base);
    }

    static void write(Path p, String content) throws IOException {
        Files.createDirectories(p.getParent());
        Files.writeString(p, content);
    }

    /**
     * Everything observable about a tree: per path its type, mode, owner, mtime, size, content digest or
     * link target, device number and non-overlay xattrs; hard links as groups of paths sharing an inode.
     */
    static Map<String, String> view(Path root) throws IOException {
        Map<String, String> out = new TreeMap<>();
        Map<String, List<String>> inodes = new HashMap<>();
        walk(root, "", out, inodes);
        for (List<String> group : inodes.values()) {
            if (group.size() > 1) {
                List<String> g = new ArrayList<>(group);
                g.sort(null);
                out.put("hardlinks:" + g.getFirst(), String.join(",", g));
            }
        }
        return out;
    }

    private static void walk(Path p, String rel, Map<String, String> out, Map<String, List<String>> inodes) throws IOException {
        Linux.Stat st = Linux.lstatOrNull(p);
        StringBuilder sb = new StringBuilder();
        sb.append(Integer.toOctalString(st.mode())).append(' ').append(st.uid()).append(':').append(st.gid());
        if (!st.isDir()) sb.append(" mtime=").append(Instant.ofEpochSecond(st.mtimeSec(), st.mtimeNsec()));
        if (st.isRegular()) {
            sb.append(" size=").append(st.size()).append(" sha=").append(sha(p));
            // nlink > 1 only: overlay reports real inode numbers, which repeat across btrfs subvolumes
            if (st.nlink() > 1) inodes.computeIfAbsent(st.dev() + ":" + st.ino(), k -> new ArrayList<>()).add(rel);
        } else if (st.isSymlink()) {
            sb.append(" -> ").append(Files.readSymbolicLink(p));
        } else if (!st.isDir()) {
            sb.append(" rdev=").append(st.rdev());
        }
        for (String x : Linux.llistxattr(p)) {
            if (x.startsWith("trusted.overlay.")) continue;
            sb.append(' ').append(x).append('=').append(HexFormat.of().formatHex(Linux.lgetxattr(p, x)));
        }
        out.put(rel.isEmpty() ? "/" : rel, sb.toString());
        if (st.isDir()) {
            for (String n : UpperDir.list(p)) walk(p.resolve(n), rel.isEmpty() ? n : rel + "/" + n, out, inodes);
        }
    }

    private static String sha(Path p) throws IOException {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(Files.readAllBytes(p));
            return HexFormat.of().formatHex(md.digest(), 0, 8);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Mounts a read-only overlay of the layers (top first) at a fresh dir, returns it; unmount with Mounts.unmount. */
    static Path mountView(LayerStore store, List<String> layersTopFirst, Path at) throws IOException {
        Files.createDirectories(at);
        List<Path> lowers = new ArrayList<>();
        for (String l : layersTopFirst) lowers.add(store.diffDir(l));
        if (lowers.size() == 1) lowers.add(store.root().resolve("empty"));
        Mounts.mountOverlay(lowers, null, null, at);
        return at;
    }

    static boolean exists(Path p) {
        return Files.exists(p, LinkOption.NOFOLLOW_LINKS);
    }
}
