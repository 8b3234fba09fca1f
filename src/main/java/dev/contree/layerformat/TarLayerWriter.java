package dev.contree.layerformat;

import com.github.luben.zstd.ZstdInputStream;
import dev.contree.linux.Linux;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.GZIPInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Unpacks a tar stream (an OCI/Docker layer or a plain rootfs tarball) into an empty directory in
 * overlayfs "upper" format.
 *
 * <ul>
 * <li>OCI whiteouts: {@code .wh.NAME} becomes a char device 0/0 {@code NAME};
 *     {@code DIR/.wh..wh..opq} sets {@code trusted.overlay.opaque=y} on {@code DIR}.</li>
 * <li>Ownership, full mode (setuid/setgid/sticky), mtimes (directories' after their contents),
 *     symlinks, hard links, char/block devices, fifos, xattrs ({@code SCHILY.xattr.*} and
 *     libarchive's base64 {@code LIBARCHIVE.xattr.*}) are kept. {@code trusted.overlay.*}
 *     attributes from the archive are dropped: only this class decides overlay semantics.</li>
 * <li>Safety: leading {@code /} and {@code ./} are stripped (like GNU tar); any {@code ..}
 *     component is rejected; an entry whose parent is not a real directory (e.g. a symlink an
 *     earlier entry created) is rejected; nothing is ever written through a symlink (creation is
 *     O_EXCL / mknod / symlink / link on a fresh name; metadata calls use the no-follow forms).</li>
 * <li>A later entry with the same name replaces the earlier one (a directory over a directory
 *     merges, like tar).</li>
 * <li>A hard link must point to an entry already written by this archive (OCI layers only ever
 *     link within the layer); a link to anything else fails with {@link LayerFormatException}
 *     rather than silently copying up from a lower layer.</li>
 * </ul>
 * Not thread-safe; one instance per layer.
 */
public final class TarLayerWriter {
    private static final Logger log = LoggerFactory.getLogger(TarLayerWriter.class);
    static final String WHITEOUT_PREFIX = ".wh.";
    static final String OPAQUE_MARKER = ".wh..wh..opq";
    static final String OPAQUE_XATTR = "trusted.overlay.opaque";

    private final Path target;
    private final boolean ociWhiteouts;
    /** Directory metadata applied at the end, deepest first (contents change a dir's mtime). */
    private final Map<String, TarArchiveEntry> dirMeta = new LinkedHashMap<>();
    /** Relative paths known to be real directories we created or checked. */
    private final Set<String> knownDirs = new HashSet<>();
    private long entries;
    private Budget budget = bytes -> {};

    /**
     * Charged for every entry before it is written: its data size (the expanded size for a sparse file) plus
     * {@link #ENTRY_OVERHEAD}, so a layer of a million empty files costs as much as 512 MB of data. Throwing stops
     * the unpack before anything of that entry reaches the disk.
     */
    @FunctionalInterface
    public interface Budget {
        void charge(long bytes) throws IOException;
    }

    /** What one entry costs beyond its data: a tar header's worth (an inode, a directory slot). */
    public static final long ENTRY_OVERHEAD = 512;

    /**
     * @param target an existing, empty directory
     * @param ociWhiteouts translate {@code .wh.} names (true for OCI/Docker layers; false for a plain
     *        rootfs tarball, where such names are ordinary files)
     */
    public TarLayerWriter(Path target, boolean ociWhiteouts) throws IOException {
        Linux.Stat st = Linux.lstatOrNull(target);
        if (st == null || !st.isDir()) throw new IOException("target is not a directory: " + target);
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(target)) {
            if (ds.iterator().hasNext()) throw new IOException("target directory is not empty: " + target);
        }
        this.target = target;
        this.ociWhiteouts = ociWhiteouts;
    }

    public TarLayerWriter(Path target) throws IOException {
        this(target, true);
    }

    /** Charges every entry to {@code budget} before writing it (an import's unpacked-size cap). */
    public TarLayerWriter budget(Budget budget) {
        this.budget = budget;
        return this;
    }

    /** Wraps {@code in} in a gzip or zstd decompressor when its magic bytes say so. */
    public static InputStream decompressing(InputStream in) throws IOException {
        BufferedInputStream b = new BufferedInputStream(in, 64 * 1024);
        b.mark(4);
        byte[] m = b.readNBytes(4);
        b.reset();
        if (m.length >= 2 && (m[0] & 0xff) == 0x1f && (m[1] & 0xff) == 0x8b) return new GZIPInputStream(b, 64 * 1024);
        if (m.length == 4 && (m[0] & 0xff) == 0x28 && (m[1] & 0xff) == 0xb5 && (m[2] & 0xff) == 0x2f && (m[3] & 0xff) == 0xfd)
            return new BufferedInputStream(new ZstdInputStream(b), 64 * 1024);
        return b;
    }

    /** Number of archive entries applied so far. */
    public long entries() { return entries; }

    /** Unpacks an uncompressed tar stream (see {@link #decompressing}). Does not close {@code in}. */
    public void write(InputStream in) throws IOException {
        TarArchiveInputStream tar = new TarArchiveInputStream(in, StandardCharsets.UTF_8.name());
        TarArchiveEntry e;
        while ((e = tar.getNextEntry()) != null) {
            budget.charge(ENTRY_OVERHEAD + Math.max(0, Math.max(e.getSize(), e.getRealSize())));
            apply(e, tar);
            entries++;
        }
        List<Map.Entry<String, TarArchiveEntry>> dirs = new ArrayList<>(dirMeta.entrySet());
        dirs.sort((x, y) -> Integer.compare(depth(y.getKey()), depth(x.getKey())));
        for (Map.Entry<String, TarArchiveEntry> d : dirs) {
            Path p = host(d.getKey());
            Linux.Stat st = Linux.lstatOrNull(p);
            if (st != null && st.isDir()) applyMeta(p, d.getValue(), false);
        }
    }

    private static int depth(String rel) {
        if (rel.isEmpty()) return 0;
        int n = 1;
        for (int i = 0; i < rel.length(); i++) if (rel.charAt(i) == '/') n++;
        return n;
    }

    /** Normalises an archive path to "a/b/c" (empty for the root), rejecting any escape. */
    static String normalize(String name) throws LayerFormatException {
        if (name.indexOf('\0') >= 0) throw new LayerFormatException("NUL byte in archive path");
        List<String> out = new ArrayList<>();
        for (String c : name.split("/")) {
            if (c.isEmpty() || c.equals(".")) continue;
            if (c.equals("..")) throw new LayerFormatException("archive path escapes the layer: " + name);
            if (c.getBytes(StandardCharsets.UTF_8).length > 255) throw new LayerFormatException("name too long in " + name);
            out.add(c);
        }
        return String.join("/", out);
    }

    private Path host(String rel) {
        return rel.isEmpty() ? target : target.resolve(rel);
    }

    private static String parentOf(String rel) {
        int i = rel.lastIndexOf('/');
        return i < 0 ? "" : rel.substring(0, i);
    }

    private static String baseOf(String rel) {
        return rel.substring(rel.lastIndexOf('/') + 1);
    }

    /** Makes sure every component of {@code rel} is a real directory (creating missing ones). */
    private void ensureDir(String rel) throws IOException {
        if (rel.isEmpty() || knownDirs.contains(rel)) return;
        ensureDir(parentOf(rel));
        Path p = host(rel);
        Linux.Stat st = Linux.lstatOrNull(p);
        if (st == null) {
            Files.createDirectory(p); // mkdir(2) never follows a symlink at the final component
        } else if (!st.isDir()) {
            throw new LayerFormatException("archive writes through a non-directory: " + rel
                    + (st.isSymlink() ? " is a symlink" : " is not a directory"));
        }
        knownDirs.add(rel);
    }

    private void apply(TarArchiveEntry e, InputStream data) throws IOException {
        String rel = normalize(e.getName());
        if (e.isGlobalPaxHeader()) return;
        if (rel.isEmpty()) {
            if (e.isDirectory()) dirMeta.put("", e);
            return;
        }
        String parent = parentOf(rel), base = baseOf(rel);
        ensureDir(parent);
        if (ociWhiteouts && base.startsWith(WHITEOUT_PREFIX)) {
            if (base.equals(OPAQUE_MARKER)) {
                Linux.lsetxattr(host(parent), OPAQUE_XATTR, new byte[] {'y'});
                return;
            }
            String hidden = base.substring(WHITEOUT_PREFIX.length());
            if (hidden.isEmpty() || hidden.equals(".") || hidden.equals(".."))
                throw new LayerFormatException("bad whiteout: " + e.getName());
            String wrel = parent.isEmpty() ? hidden : parent + "/" + hidden;
            removeExisting(wrel);
            Linux.mkwhiteout(host(wrel));
            return;
        }
        Path p = host(rel);
        if (e.isDirectory()) {
            Linux.Stat st = Linux.lstatOrNull(p);
            if (st != null && !st.isDir()) removeExisting(rel);
            if (st == null || !st.isDir()) Files.createDirectory(p);
            knownDirs.add(rel);
            dirMeta.put(rel, e);
            return;
        }
        if (e.isLink()) { // hard link
            String trel = normalize(e.getLinkName());
            if (trel.isEmpty()) throw new LayerFormatException("hard link to the layer root: " + e.getName());
            ensureDir(parentOf(trel)); // the target's parents must be real directories too
            Path t = host(trel);
            Linux.Stat ts = Linux.lstatOrNull(t);
            if (ts == null) throw new LayerFormatException("hard link target not in this layer: " + e.getName() + " -> " + e.getLinkName());
            if (ts.isDir()) throw new LayerFormatException("hard link to a directory: " + e.getName());
            if (trel.equals(rel)) return;
            removeExisting(rel);
            Files.createLink(p, t); // link(2) does not follow a symlink target
            return;
        }
        removeExisting(rel);
        if (e.isSymbolicLink()) {
            String linkTarget = e.getLinkName();
            if (linkTarget.indexOf('\0') >= 0) throw new LayerFormatException("NUL in symlink target: " + e.getName());
            Files.createSymbolicLink(p, Path.of(linkTarget));
        } else if (e.isCharacterDevice() || e.isBlockDevice()) {
            int type = e.isCharacterDevice() ? Linux.S_IFCHR : Linux.S_IFBLK;
            Linux.mknod(p, type | 0600, Linux.makedev(e.getDevMajor(), e.getDevMinor()));
        } else if (e.isFIFO()) {
            Linux.mknod(p, Linux.S_IFIFO | 0600, 0);
        } else if (e.isFile()) {
            try (OutputStream out = Files.newOutputStream(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
                    LinkOption.NOFOLLOW_LINKS)) {
                data.transferTo(out);
            }
        } else {
            log.warn("skipping unsupported tar entry type '{}' for {}", (char) e.getLinkFlag(), e.getName());
            return;
        }
        applyMeta(p, e, e.isSymbolicLink());
    }

    /** Deletes whatever is at {@code rel} (a whole tree for a directory), never following symlinks. */
    private void removeExisting(String rel) throws IOException {
        Path p = host(rel);
        Linux.Stat st = Linux.lstatOrNull(p);
        if (st == null) return;
        if (!st.isDir()) {
            Files.delete(p);
            return;
        }
        // walkFileTree does not follow symlinks by default: links are deleted, not descended
        Files.walkFileTree(p, new SimpleFileVisitor<>() {
            @Override public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
                Files.delete(f);
                return FileVisitResult.CONTINUE;
            }
            @Override public FileVisitResult postVisitDirectory(Path d, IOException ex) throws IOException {
                if (ex != null) throw ex;
                Files.delete(d);
                return FileVisitResult.CONTINUE;
            }
        });
        knownDirs.removeIf(k -> k.equals(rel) || k.startsWith(rel + "/"));
        dirMeta.keySet().removeIf(k -> k.equals(rel) || k.startsWith(rel + "/"));
    }

    private void applyMeta(Path p, TarArchiveEntry e, boolean symlink) throws IOException {
        // chown first: it clears setuid/setgid, which chmod then restores
        Linux.lchown(p, (int) e.getLongUserId(), (int) e.getLongGroupId());
        if (!symlink) Linux.lchmod(p, e.getMode() & 07777);
        // after chown, which drops security.capability
        for (Map.Entry<String, byte[]> x : xattrs(e).entrySet()) {
            try {
                Linux.lsetxattr(p, x.getKey(), x.getValue());
            } catch (Linux.ErrnoException ex) {
                if (symlink && x.getKey().startsWith("user.")) continue; // Linux forbids user.* on symlinks
                throw ex;
            }
        }
        FileTime mt = e.getLastModifiedTime();
        long sec = mt == null ? 0 : mt.toInstant().getEpochSecond();
        int nsec = mt == null ? 0 : mt.toInstant().getNano();
        Linux.lutimes(p, sec, nsec, sec, nsec);
    }

    /** Extended attributes from PAX records; libarchive's base64 form wins (lossless for binary values). */
    static Map<String, byte[]> xattrs(TarArchiveEntry e) throws LayerFormatException {
        Map<String, byte[]> out = new LinkedHashMap<>();
        for (Map.Entry<String, String> h : e.getExtraPaxHeaders().entrySet()) {
            String k = h.getKey();
            if (k.startsWith("SCHILY.xattr.")) {
                String name = k.substring("SCHILY.xattr.".length());
                String v = h.getValue();
                if (v.indexOf('\uFFFD') >= 0) {
                    // commons-compress decodes PAX values as UTF-8: a raw binary value arrives damaged
                    log.warn("dropping binary xattr {} of {} (not representable losslessly)", name, e.getName());
                    continue;
                }
                out.putIfAbsent(name, v.getBytes(StandardCharsets.UTF_8));
            }
        }
        for (Map.Entry<String, String> h : e.getExtraPaxHeaders().entrySet()) {
            String k = h.getKey();
            if (k.startsWith("LIBARCHIVE.xattr.")) {
                String name = URLDecoder.decode(k.substring("LIBARCHIVE.xattr.".length()), StandardCharsets.UTF_8);
                try {
                    out.put(name, Base64.getDecoder().decode(h.getValue().trim()));
                } catch (IllegalArgumentException ex) {
                    throw new LayerFormatException("bad base64 xattr " + name + " on " + e.getName());
                }
            }
        }
        out.keySet().removeIf(n -> n.startsWith("trusted.overlay.") || n.isEmpty() || n.indexOf('\0') >= 0);
        return out;
    }
}
