package dev.contree.layerformat;

import com.github.luben.zstd.ZstdInputStream;
import dev.contree.linux.Dir;
import dev.contree.linux.Linux;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
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
 * <li>Safety: the layer is touched only through {@link Dir} descriptors ({@code openat2} with
 *     {@code RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS}, then {@code *at} calls on single names with
 *     {@code AT_SYMLINK_NOFOLLOW}/{@code O_NOFOLLOW}): no host path below the target is ever resolved. Leading
 *     {@code /} and {@code ./} are stripped (like GNU tar); any {@code ..} component is rejected; an entry whose
 *     parent is not a real directory (e.g. a symlink an earlier entry created) is rejected; nothing is ever written
 *     through a symlink (creation is O_EXCL / mknodat / symlinkat / linkat on a fresh name).</li>
 * <li>Names are bytes: entry names, symlink targets and hard-link names land exactly as the archive has them,
 *     UTF-8 or not, from ustar and GNU long-name headers as from PAX {@code path}/{@code linkpath} records (see
 *     {@link ByteNameTarInputStream}). Messages render them as UTF-8 (lossy) image paths, never host paths.</li>
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
    /** The pack format ({@link LayerPacker}): whiteouts are 0/0 devices already, opaque dirs carry the xattr. */
    private boolean packFormat;
    /** Directory metadata applied at the end, deepest first (contents change a dir's mtime). */
    private final Map<String, ByteNameTarInputStream.Entry> dirMeta = new LinkedHashMap<>();
    /** Relative paths known to be real directories we created or checked (the layer started empty). */
    private final Set<String> knownDirs = new HashSet<>();
    private long entries;
    private Budget budget = bytes -> {};
    /** The layer root while {@link #write} runs. */
    private Dir root;
    /** The last directory used (tar entries come grouped by directory): saves an openat2 per entry. */
    private Dir cachedDir;
    private String cachedRel;
    private final byte[] buffer = new byte[64 * 1024];

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
     * @param target an existing, empty directory the server created (e.g. {@code LayerBuilder.diffDir()}); the
     *        only host path this class ever resolves
     * @param ociWhiteouts translate {@code .wh.} names (true for OCI/Docker layers; false for a plain
     *        rootfs tarball, where such names are ordinary files)
     */
    public TarLayerWriter(Path target, boolean ociWhiteouts) throws IOException {
        Linux.Stat st = Linux.lstatOrNull(target);
        if (st == null || !st.isDir()) throw new IOException("target is not a directory: " + target);
        try (Dir d = Dir.open(target, "/")) {
            if (!d.isEmpty()) throw new IOException("target directory is not empty: " + target);
        }
        this.target = target;
        this.ociWhiteouts = ociWhiteouts;
    }

    public TarLayerWriter(Path target) throws IOException {
        this(target, true);
    }

    /**
     * A writer for the pack format {@link LayerPacker} writes (a layer fetched from the object store): names are
     * literal ({@code .wh.} is an ordinary name), a character device 0/0 is the whiteout it was, and
     * {@code trusted.overlay.opaque=y} on a directory member marks it opaque; every other {@code trusted.overlay.*}
     * attribute is dropped as for any archive. Everything else is as hostile as a registry layer's.
     */
    public static TarLayerWriter forPack(Path target) throws IOException {
        TarLayerWriter w = new TarLayerWriter(target, false);
        w.packFormat = true;
        return w;
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
        try (Dir r = Dir.open(target, "/")) {
            root = r;
            ByteNameTarInputStream tar = new ByteNameTarInputStream(in);
            ByteNameTarInputStream.Entry e;
            while ((e = tar.next()) != null) {
                TarArchiveEntry t = e.tar();
                budget.charge(ENTRY_OVERHEAD + Math.max(0, Math.max(t.getSize(), t.getRealSize())));
                apply(e, tar);
                entries++;
            }
            dropCache();
            List<Map.Entry<String, ByteNameTarInputStream.Entry>> dirs = new ArrayList<>(dirMeta.entrySet());
            dirs.sort((x, y) -> Integer.compare(depth(y.getKey()), depth(x.getKey())));
            for (Map.Entry<String, ByteNameTarInputStream.Entry> d : dirs) {
                if (d.getKey().isEmpty()) {
                    applyDirMeta(root, d.getValue());
                    continue;
                }
                try (Dir sub = root.openDir(bytes(d.getKey()), show(d.getKey()))) {
                    applyDirMeta(sub, d.getValue());
                } catch (Linux.ErrnoException ex) {
                    if (ex.errno() != Linux.ENOENT && ex.errno() != Linux.ENOTDIR && ex.errno() != Linux.ELOOP) throw ex;
                }
            }
        } finally {
            dropCache();
            root = null;
        }
    }

    // Paths inside the layer are byte strings. They travel as ISO-8859-1 Strings (one char per byte, any byte),
    // so they split on '/', compare and hash exactly like the bytes; bytes() gets them back, show() renders them.

    private static byte[] bytes(String rel) {
        return rel.getBytes(StandardCharsets.ISO_8859_1);
    }

    /** An image path for messages (lossy UTF-8, as a terminal would show it). */
    private static String show(String rel) {
        return show(bytes(rel));
    }

    private static String show(byte[] raw) {
        return new String(raw, StandardCharsets.UTF_8);
    }

    private static Dir.Name name(String base) {
        return new Dir.Name(bytes(base));
    }

    private static int depth(String rel) {
        if (rel.isEmpty()) return 0;
        int n = 1;
        for (int i = 0; i < rel.length(); i++) if (rel.charAt(i) == '/') n++;
        return n;
    }

    /** Normalises an archive path (bytes) to "a/b/c" (empty for the root), rejecting any escape. */
    static String normalize(byte[] raw) throws LayerFormatException {
        String name = new String(raw, StandardCharsets.ISO_8859_1);
        if (name.indexOf('\0') >= 0) throw new LayerFormatException("NUL byte in archive path");
        List<String> out = new ArrayList<>();
        for (String c : name.split("/")) {
            if (c.isEmpty() || c.equals(".")) continue;
            if (c.equals("..")) throw new LayerFormatException("archive path escapes the layer: " + show(raw));
            if (c.length() > 255) throw new LayerFormatException("name too long in " + show(raw));
            out.add(c);
        }
        return String.join("/", out);
    }

    private static String parentOf(String rel) {
        int i = rel.lastIndexOf('/');
        return i < 0 ? "" : rel.substring(0, i);
    }

    private static String baseOf(String rel) {
        return rel.substring(rel.lastIndexOf('/') + 1);
    }

    /** The directory {@code rel}, which {@link #ensureDir} or a directory entry made; valid until the next call. */
    private Dir dir(String rel) throws IOException {
        if (rel.isEmpty()) return root;
        if (rel.equals(cachedRel)) return cachedDir;
        Dir d = root.openDir(bytes(rel), show(rel)); // RESOLVE_BENEATH|NO_SYMLINKS: never through a link
        dropCache();
        cachedDir = d;
        cachedRel = rel;
        return d;
    }

    private void dropCache() {
        if (cachedDir != null) cachedDir.close();
        cachedDir = null;
        cachedRel = null;
    }

    /** Makes sure every component of {@code rel} is a real directory (creating missing ones). */
    private void ensureDir(String rel) throws IOException {
        if (rel.isEmpty() || knownDirs.contains(rel)) return;
        String parent = parentOf(rel);
        ensureDir(parent);
        Dir p = dir(parent);
        Dir.Name n = name(baseOf(rel));
        Linux.Stat st = p.statOrNull(n);
        if (st == null) {
            p.mkdir(n, 0755); // mkdirat never follows a symlink at the final component
        } else if (!st.isDir()) {
            throw new LayerFormatException("archive writes through a non-directory: " + show(rel)
                    + (st.isSymlink() ? " is a symlink" : " is not a directory"));
        }
        knownDirs.add(rel);
    }

    /**
     * Checks without creating anything that every component of {@code rel} is a real directory; false when one is
     * missing. Every directory of the layer is in {@link #knownDirs} (the layer started empty), so only the first
     * unknown component needs a look.
     */
    private boolean existingDir(String rel) throws IOException {
        if (rel.isEmpty() || knownDirs.contains(rel)) return true;
        String parent = parentOf(rel);
        if (!existingDir(parent)) return false;
        Linux.Stat st = dir(parent).statOrNull(name(baseOf(rel)));
        if (st == null) return false;
        if (!st.isDir()) throw new LayerFormatException("archive writes through a non-directory: " + show(rel)
                + (st.isSymlink() ? " is a symlink" : " is not a directory"));
        knownDirs.add(rel); // not reached: a directory we did not record cannot exist
        return true;
    }

    private void apply(ByteNameTarInputStream.Entry entry, InputStream data) throws IOException {
        TarArchiveEntry e = entry.tar();
        String rel = normalize(entry.name());
        String shown = show(entry.name());
        if (e.isGlobalPaxHeader()) return;
        if (rel.isEmpty()) {
            if (e.isDirectory()) dirMeta.put("", entry);
            return;
        }
        String parent = parentOf(rel), base = baseOf(rel);
        ensureDir(parent);
        if (ociWhiteouts && base.startsWith(WHITEOUT_PREFIX)) {
            if (base.equals(OPAQUE_MARKER)) {
                dir(parent).setxattrSelf(OPAQUE_XATTR, new byte[] {'y'});
                return;
            }
            String hidden = base.substring(WHITEOUT_PREFIX.length());
            if (hidden.isEmpty() || hidden.equals(".") || hidden.equals(".."))
                throw new LayerFormatException("bad whiteout: " + shown);
            String wrel = parent.isEmpty() ? hidden : parent + "/" + hidden;
            removeExisting(wrel);
            dir(parent).mkwhiteout(name(hidden));
            return;
        }
        Dir.Name n = name(base);
        if (e.isDirectory()) {
            Linux.Stat st = dir(parent).statOrNull(n);
            if (st != null && !st.isDir()) removeExisting(rel); // a symlink or file there goes, never followed
            if (st == null || !st.isDir()) dir(parent).mkdir(n, 0755);
            knownDirs.add(rel);
            dirMeta.put(rel, entry);
            return;
        }
        if (e.isLink()) { // hard link
            String trel = normalize(entry.linkName());
            if (trel.isEmpty()) throw new LayerFormatException("hard link to the layer root: " + shown);
            String tparent = parentOf(trel);
            String notHere = "hard link target not in this layer: " + shown + " -> " + show(entry.linkName());
            if (!existingDir(tparent)) throw new LayerFormatException(notHere);
            // The target's directory gets its own descriptor: dir() hands out one at a time.
            try (Dir td = root.openDir(bytes(tparent), show(tparent))) {
                Dir.Name tn = name(baseOf(trel));
                Linux.Stat ts = td.statOrNull(tn);
                if (ts == null) throw new LayerFormatException(notHere);
                if (ts.isDir()) throw new LayerFormatException("hard link to a directory: " + shown);
                if (trel.equals(rel)) return;
                if (trel.startsWith(rel + "/")) throw new LayerFormatException(notHere); // replacing rel would delete it
                removeExisting(rel);
                dir(parent).link(td, tn, n); // linkat without AT_SYMLINK_FOLLOW: a symlink target is linked, not followed
            }
            return;
        }
        removeExisting(rel);
        Dir p = dir(parent);
        if (e.isSymbolicLink()) {
            byte[] linkTarget = entry.linkName();
            for (byte b : linkTarget) if (b == 0) throw new LayerFormatException("NUL in symlink target: " + shown);
            if (linkTarget.length == 0) throw new LayerFormatException("empty symlink target: " + shown);
            p.symlink(linkTarget, n); // stored as given, never resolved on the host
        } else if (e.isCharacterDevice() || e.isBlockDevice()) {
            int type = e.isCharacterDevice() ? Linux.S_IFCHR : Linux.S_IFBLK;
            p.mknod(n, type | 0600, Linux.makedev(e.getDevMajor(), e.getDevMinor()));
        } else if (e.isFIFO()) {
            p.mknod(n, Linux.S_IFIFO | 0600, 0);
        } else if (e.isFile()) {
            int fd = p.openFile(n, Linux.O_WRONLY | Linux.O_CREAT | Linux.O_EXCL, 0600);
            try {
                for (int got; (got = data.read(buffer)) >= 0; ) if (got > 0) Dir.write(fd, buffer, 0, got, shown);
            } finally {
                Linux.close(fd);
            }
        } else {
            log.warn("skipping unsupported tar entry type '{}' for {}", (char) e.getLinkFlag(), shown);
            return;
        }
        applyMeta(p, n, entry, e.isSymbolicLink());
    }

    /** Deletes whatever is at {@code rel} (a whole tree for a directory), never following symlinks. */
    private void removeExisting(String rel) throws IOException {
        Dir p = dir(parentOf(rel));
        Dir.Name n = name(baseOf(rel));
        Linux.Stat st = p.statOrNull(n);
        if (st == null) return;
        if (!st.isDir()) {
            p.unlink(n);
            return;
        }
        p.deleteRecursively(n); // Dir: links are removed, never descended
        String below = rel + "/";
        if (cachedRel != null && (cachedRel.equals(rel) || cachedRel.startsWith(below))) dropCache();
        knownDirs.removeIf(k -> k.equals(rel) || k.startsWith(below));
        dirMeta.keySet().removeIf(k -> k.equals(rel) || k.startsWith(below));
    }

    private void applyMeta(Dir parent, Dir.Name n, ByteNameTarInputStream.Entry entry, boolean symlink) throws IOException {
        TarArchiveEntry e = entry.tar();
        // chown first: it clears setuid/setgid, which chmod then restores
        parent.chown(n, (int) e.getLongUserId(), (int) e.getLongGroupId());
        if (!symlink) parent.chmod(n, e.getMode() & 07777);
        // after chown, which drops security.capability
        for (Map.Entry<String, byte[]> x : xattrs(entry).entrySet()) {
            try {
                parent.setxattr(n, x.getKey(), x.getValue());
            } catch (Linux.ErrnoException ex) {
                if (symlink && x.getKey().startsWith("user.")) continue; // Linux forbids user.* on symlinks
                throw ex;
            }
        }
        FileTime mt = e.getLastModifiedTime();
        long sec = mt == null ? 0 : mt.toInstant().getEpochSecond();
        int nsec = mt == null ? 0 : mt.toInstant().getNano();
        parent.utimes(n, sec, nsec, sec, nsec);
    }

    /** {@link #applyMeta} of a directory through its own descriptor. */
    private void applyDirMeta(Dir d, ByteNameTarInputStream.Entry entry) throws IOException {
        TarArchiveEntry e = entry.tar();
        d.chownSelf((int) e.getLongUserId(), (int) e.getLongGroupId());
        d.chmodSelf(e.getMode() & 07777);
        for (Map.Entry<String, byte[]> x : xattrs(entry).entrySet()) d.setxattrSelf(x.getKey(), x.getValue());
        if (packFormat && java.util.Arrays.equals(rawXattrs(entry).get(OPAQUE_XATTR), new byte[] {'y'})) d.setxattrSelf(OPAQUE_XATTR, new byte[] {'y'});
        FileTime mt = e.getLastModifiedTime();
        long sec = mt == null ? 0 : mt.toInstant().getEpochSecond();
        int nsec = mt == null ? 0 : mt.toInstant().getNano();
        d.utimesSelf(sec, nsec, sec, nsec);
    }

    /**
     * Extended attributes from PAX records, values as the archive's bytes (Go's archive/tar writes binary values such
     * as {@code security.capability} raw into {@code SCHILY.xattr.*}); libarchive's base64 {@code LIBARCHIVE.xattr.*}
     * form wins when both are present.
     */
    static Map<String, byte[]> xattrs(ByteNameTarInputStream.Entry entry) throws LayerFormatException {
        Map<String, byte[]> out = rawXattrs(entry);
        out.keySet().removeIf(n -> n.startsWith("trusted.overlay.") || n.isEmpty() || n.indexOf('\0') >= 0);
        return out;
    }

    /** {@link #xattrs} before overlay's own attributes are dropped. */
    private static Map<String, byte[]> rawXattrs(ByteNameTarInputStream.Entry entry) throws LayerFormatException {
        Map<String, byte[]> out = new LinkedHashMap<>();
        for (Map.Entry<String, byte[]> h : entry.pax().entrySet()) {
            String k = h.getKey();
            if (k.startsWith("SCHILY.xattr.")) out.putIfAbsent(k.substring("SCHILY.xattr.".length()), h.getValue());
        }
        for (Map.Entry<String, byte[]> h : entry.pax().entrySet()) {
            String k = h.getKey();
            if (k.startsWith("LIBARCHIVE.xattr.")) {
                String name = URLDecoder.decode(k.substring("LIBARCHIVE.xattr.".length()), StandardCharsets.UTF_8);
                try {
                    out.put(name, Base64.getDecoder().decode(new String(h.getValue(), StandardCharsets.ISO_8859_1).trim()));
                } catch (IllegalArgumentException ex) {
                    throw new LayerFormatException("bad base64 xattr " + name + " on " + show(entry.name()));
                }
            }
        }
        for (String k : entry.tar().getExtraPaxHeaders().keySet()) // what commons saw, we must have seen too
            if ((k.startsWith("SCHILY.xattr.") || k.startsWith("LIBARCHIVE.xattr.")) && !entry.pax().containsKey(k))
                throw new LayerFormatException("inconsistent PAX headers: " + k + " on " + show(entry.name()));
        return out;
    }
}
