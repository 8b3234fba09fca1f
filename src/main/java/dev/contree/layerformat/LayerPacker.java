package dev.contree.layerformat;

import dev.contree.linux.Dir;
import dev.contree.linux.DirStack;
import dev.contree.linux.Linux;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URLEncoder;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.util.ArrayDeque;
import java.util.Base64;
import java.util.Deque;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Writes a committed layer's upper dir as a tar in overlay format, the "pack" format {@link TarLayerWriter#forPack}
 * reads back: a whiteout is the character device 0/0 it is on disk (not an OCI {@code .wh.} name, so a file a sandbox
 * named {@code .wh.x} stays a file), an opaque directory carries {@code trusted.overlay.opaque=y}; every other
 * {@code trusted.overlay.*} attribute (origin, impure: overlay's bookkeeping) is left out. Names, link targets and
 * hard-link names are the layer's bytes (GNU long names in an ISO-8859-1 stream, one char per byte); every extended
 * attribute travels as libarchive's {@code LIBARCHIVE.xattr.NAME=base64}, lossless for binary values. Hard links
 * within the layer stay hard links; sockets are left out (tar cannot hold them, a socket file is nothing without its
 * process); a sparse file's holes are written as zeros.
 *
 * <p>The layer is walked with {@link Dir}/{@link DirStack}: no symlink followed, bounded descriptors at any depth.
 */
public final class LayerPacker {
    private static final String OPAQUE_XATTR = TarLayerWriter.OPAQUE_XATTR;
    private final byte[] buffer = new byte[256 * 1024];
    /** Inode of a hard-linked regular file → the tar name of its first member. */
    private final Map<Long, String> links = new HashMap<>();
    private long entries, dataBytes;

    /** Writes the tree below {@code diffDir} (a directory the server owns) to {@code out} as an uncompressed tar. */
    public static LayerPacker pack(Path diffDir, OutputStream out) throws IOException {
        LayerPacker p = new LayerPacker();
        try (Dir root = Dir.open(diffDir, "/")) {
            TarArchiveOutputStream tar = TarOut.open(out);
            tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_GNU);
            tar.setAddPaxHeadersForNonAsciiNames(false);
            tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
            p.walk(root, tar);
            tar.finish();
            tar.flush();
        }
        return p;
    }

    public long entries() { return entries; }

    public long dataBytes() { return dataBytes; }

    private record Frame(String path, Iterator<Dir.Name> names) {}

    private void walk(Dir root, TarArchiveOutputStream tar) throws IOException {
        Linux.Stat rootSt = root.stat();
        TarArchiveEntry r = TarOut.entry("./", TarConstants.LF_DIR);
        meta(r, rootSt);
        tar.putArchiveEntry(r);
        tar.closeArchiveEntry();
        entries++;
        try (DirStack stack = new DirStack(root)) {
            Deque<Frame> frames = new ArrayDeque<>();
            frames.push(new Frame("", root.listSorted().iterator()));
            while (!frames.isEmpty()) {
                Frame f = frames.peek();
                if (!f.names().hasNext()) {
                    frames.pop();
                    if (!frames.isEmpty()) stack.pop();
                    continue;
                }
                Dir.Name name = f.names().next();
                Dir parent = stack.top();
                Linux.Stat st = parent.statOrNull(name);
                if (st == null) continue;
                String path = f.path() + new String(name.bytes(), StandardCharsets.ISO_8859_1);
                if (emit(parent, name, st, path, tar) && st.isDir()) {
                    if (stack.depth() + 1 > dev.contree.layers.LayerStore.MAX_TREE_DEPTH)
                        throw new LayerFormatException("the layer is more than " + dev.contree.layers.LayerStore.MAX_TREE_DEPTH + " levels deep");
                    Dir child = stack.push(name);
                    frames.push(new Frame(path + "/", child.listSorted().iterator()));
                }
            }
        }
    }

    /** One member; false for what tar cannot hold (a socket). */
    private boolean emit(Dir parent, Dir.Name name, Linux.Stat st, String path, TarArchiveOutputStream tar) throws IOException {
        TarArchiveEntry e;
        boolean content = false;
        switch (st.type()) {
            case Linux.S_IFDIR -> e = TarOut.entry(path + "/", TarConstants.LF_DIR);
            case Linux.S_IFLNK -> {
                e = TarOut.entry(path, TarConstants.LF_SYMLINK);
                e.setLinkName(new String(parent.readlink(name), StandardCharsets.ISO_8859_1));
            }
            case Linux.S_IFCHR, Linux.S_IFBLK -> { // a whiteout is the character device 0/0
                e = TarOut.entry(path, st.type() == Linux.S_IFCHR ? TarConstants.LF_CHR : TarConstants.LF_BLK);
                e.setDevMajor(st.rdevMajor());
                e.setDevMinor(st.rdevMinor());
            }
            case Linux.S_IFIFO -> e = TarOut.entry(path, TarConstants.LF_FIFO);
            case Linux.S_IFREG -> {
                String first = st.nlink() > 1 ? links.putIfAbsent(st.ino(), path) : null;
                if (first != null) {
                    e = TarOut.entry(path, TarConstants.LF_LINK);
                    e.setLinkName(first);
                } else {
                    e = TarOut.entry(path, TarConstants.LF_NORMAL);
                    e.setSize(st.size());
                    content = true;
                }
            }
            default -> { return false; } // socket
        }
        meta(e, st);
        if (!st.isWhiteout()) {
            for (String x : parent.listxattr(name)) {
                if (x.startsWith("trusted.overlay.") && !(st.isDir() && x.equals(OPAQUE_XATTR))) continue;
                byte[] v = parent.getxattr(name, x);
                if (v == null) continue;
                e.addPaxHeader("LIBARCHIVE.xattr." + URLEncoder.encode(x, StandardCharsets.UTF_8), Base64.getEncoder().encodeToString(v));
            }
        }
        tar.putArchiveEntry(e);
        if (content) copy(parent, name, st, path, tar);
        tar.closeArchiveEntry();
        entries++;
        return true;
    }

    private void copy(Dir parent, Dir.Name name, Linux.Stat st, String path, TarArchiveOutputStream tar) throws IOException {
        int fd = parent.openFile(name, Linux.O_RDONLY, 0);
        try (FileChannel ch = Dir.channel(fd, StandardOpenOption.READ); InputStream in = Channels.newInputStream(ch)) {
            long copied = 0;
            for (int n; copied < st.size() && (n = in.read(buffer, 0, (int) Math.min(buffer.length, st.size() - copied))) > 0; ) {
                tar.write(buffer, 0, n);
                copied += n;
            }
            if (copied != st.size())
                throw new IOException("file changed size while packing: " + new String(path.getBytes(StandardCharsets.ISO_8859_1), StandardCharsets.UTF_8));
            dataBytes += copied;
        } finally {
            Linux.close(fd);
        }
    }

    private static void meta(TarArchiveEntry e, Linux.Stat st) {
        e.setMode(st.mode());
        e.setUserId(Integer.toUnsignedLong(st.uid()));
        e.setGroupId(Integer.toUnsignedLong(st.gid()));
        e.setLastModifiedTime(FileTime.from(java.time.Instant.ofEpochSecond(st.mtimeSec(), st.mtimeNsec())));
    }
}
