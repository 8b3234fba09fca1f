package dev.contree.inspect;

import dev.contree.linux.Linux;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URLEncoder;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.attribute.FileTime;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;

/**
 * Streams a merged subtree as a POSIX PAX tar. Member names are image paths without the leading
 * slash ({@code /} itself is {@code ./}). Same host inode twice ⇒ a hard-link member. Sockets are
 * skipped (tar cannot hold them). Extended attributes go to {@code SCHILY.xattr.NAME} when the
 * value is UTF-8 text; binary values (commons-compress writes PAX values as UTF-8 strings, which
 * would corrupt them) go to libarchive's lossless {@code LIBARCHIVE.xattr.NAME=base64}.
 * overlayfs' own {@code trusted.overlay.*} attributes are never exported.
 */
final class TarExporter {
    private final MergedView view;
    private final Map<String, String> hardlinks = new HashMap<>();

    TarExporter(MergedView view) {
        this.view = view;
    }

    void write(MergedView.Node start, OutputStream out) throws IOException {
        TarArchiveOutputStream tar = new TarArchiveOutputStream(new NonClosing(out), StandardCharsets.UTF_8.name());
        tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
        tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
        tar.setAddPaxHeadersForNonAsciiNames(true);
        walk(start, tar);
        tar.finish();
        tar.flush();
    }

    private void walk(MergedView.Node n, TarArchiveOutputStream tar) throws IOException {
        emit(n, tar);
        if (n.isDir()) {
            for (MergedView.Node c : view.readDir(n).values()) walk(c, tar);
        }
    }

    private void emit(MergedView.Node n, TarArchiveOutputStream tar) throws IOException {
        Linux.Stat st = n.st();
        String name = n.path().equals("/") ? "./" : n.path().substring(1);
        TarArchiveEntry e;
        boolean content = false;
        switch (MergedView.typeOf(st.mode())) {
            case DIR -> e = new TarArchiveEntry(name + (name.endsWith("/") ? "" : "/"), TarConstants.LF_DIR, true);
            case SYMLINK -> {
                e = new TarArchiveEntry(name, TarConstants.LF_SYMLINK, true);
                e.setLinkName(n.target());
            }
            case CHAR, BLOCK -> {
                e = new TarArchiveEntry(name, st.type() == Linux.S_IFCHR ? TarConstants.LF_CHR : TarConstants.LF_BLK, true);
                e.setDevMajor(st.rdevMajor());
                e.setDevMinor(st.rdevMinor());
            }
            case FIFO -> e = new TarArchiveEntry(name, TarConstants.LF_FIFO, true);
            case SOCKET -> { return; }
            default -> {
                String key = st.dev() + ":" + st.ino();
                String first = st.nlink() > 1 ? hardlinks.putIfAbsent(key, name) : null;
                if (first != null) {
                    e = new TarArchiveEntry(name, TarConstants.LF_LINK, true);
                    e.setLinkName(first);
                } else {
                    e = new TarArchiveEntry(name, TarConstants.LF_NORMAL, true);
                    e.setSize(st.size());
                    content = true;
                }
            }
        }
        e.setMode(st.mode());
        e.setUserId(Integer.toUnsignedLong(st.uid()));
        e.setGroupId(Integer.toUnsignedLong(st.gid()));
        view.userName(st.uid()).ifPresent(e::setUserName);
        view.groupName(st.gid()).ifPresent(e::setGroupName);
        e.setLastModifiedTime(FileTime.from(java.time.Instant.ofEpochSecond(st.mtimeSec(), st.mtimeNsec())));
        for (String x : Linux.llistxattr(n.host())) {
            if (x.startsWith("trusted.overlay.")) continue;
            byte[] v = Linux.lgetxattr(n.host(), x);
            if (v == null) continue;
            String text = strictUtf8(v);
            if (text != null) e.addPaxHeader("SCHILY.xattr." + x, text);
            else e.addPaxHeader("LIBARCHIVE.xattr." + URLEncoder.encode(x, StandardCharsets.UTF_8),
                    Base64.getEncoder().encodeToString(v));
        }
        tar.putArchiveEntry(e);
        if (content) {
            try (InputStream in = Files.newInputStream(n.host(), LinkOption.NOFOLLOW_LINKS)) {
                long copied = in.transferTo(tar);
                if (copied != st.size()) throw new IOException("file changed size while archiving: " + n.path());
            }
        }
        tar.closeArchiveEntry();
    }

    static String strictUtf8(byte[] v) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(v)).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    /** The caller owns the response stream: finishing the tar must not close it. */
    private static final class NonClosing extends java.io.FilterOutputStream {
        NonClosing(OutputStream out) { super(out); }
        @Override public void write(byte[] b, int off, int len) throws IOException { out.write(b, off, len); }
        @Override public void close() throws IOException { out.flush(); }
    }
}
