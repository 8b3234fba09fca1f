package dev.contree.inspect;

import dev.contree.layerformat.TarOut;
import dev.contree.linux.Linux;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URLEncoder;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.attribute.FileTime;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
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
 *
 * <p>Names are bytes: a name (or link target) that is valid UTF-8 goes into a PAX {@code path}
 * ({@code linkpath}) record as usual; one that is not is written byte for byte into the ustar
 * header, or a GNU {@code ././@LongLink} member when longer than 100 bytes (commons-compress writes
 * PAX values as UTF-8 strings, which cannot carry such bytes; the stream's ISO-8859-1 encoding maps
 * each char of {@link #latin1} to one byte).
 *
 * <p>Cost: every entry and every file byte counts against the {@link Budget}; {@link #measure}
 * does the same walk without reading files so the API can answer 413 before the first byte.
 */
final class TarExporter {
    private static final int COPY_CHUNK = 64 * 1024;
    private final MergedView view;
    private final Budget budget;
    private final Map<String, String> hardlinks = new HashMap<>();

    TarExporter(MergedView view, Budget budget) {
        this.view = view;
        this.budget = budget;
    }

    void write(MergedView.Node start, OutputStream out) throws IOException {
        TarArchiveOutputStream tar = TarOut.open(out);
        tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
        walk(start, tar);
        tar.finish();
        tar.flush();
    }

    /** The walk of {@link #write} without reading files: entries and file bytes against the budget. */
    void measure(MergedView.Node start) throws IOException {
        walk(start, n -> {
            if (n.st().isRegular()) budget.countBytes(n.st().size());
        });
    }

    private void walk(MergedView.Node start, TarArchiveOutputStream tar) throws IOException {
        walk(start, n -> emit(n, tar));
    }

    private interface Visit {
        void accept(MergedView.Node n) throws IOException;
    }

    /** Pre-order from {@code start} itself; every entry counts against the budget. */
    private void walk(MergedView.Node start, Visit visit) throws IOException {
        view.walk(start, true, budget, n -> {
            budget.countEntries(1);
            visit.accept(n);
            return true;
        });
    }

    /** A string whose chars are the bytes of {@code s} (for the ISO-8859-1 stream: one char, one byte). */
    static String latin1(String s) {
        return new String(Names.encode(s), StandardCharsets.ISO_8859_1);
    }

    private void emit(MergedView.Node n, TarArchiveOutputStream tar) throws IOException {
        Linux.Stat st = n.st();
        String name = n.path().equals("/") ? "./" : n.path().substring(1);
        String link = n.target();
        // Raw mode when a name is not UTF-8: exact bytes in the header or a GNU long name, no PAX path.
        boolean raw = !Names.exact(name) || (link != null && !Names.exact(link));
        tar.setLongFileMode(raw ? TarArchiveOutputStream.LONGFILE_GNU : TarArchiveOutputStream.LONGFILE_POSIX);
        tar.setAddPaxHeadersForNonAsciiNames(!raw);
        if (raw) {
            name = latin1(name);
            if (link != null) link = latin1(link);
        }
        TarArchiveEntry e;
        boolean content = false;
        switch (MergedView.typeOf(st.mode())) {
            case DIR -> e = TarOut.entry(name + (name.endsWith("/") ? "" : "/"), TarConstants.LF_DIR);
            case SYMLINK -> {
                e = TarOut.entry(name, TarConstants.LF_SYMLINK);
                e.setLinkName(link);
            }
            case CHAR, BLOCK -> {
                e = TarOut.entry(name, st.type() == Linux.S_IFCHR ? TarConstants.LF_CHR : TarConstants.LF_BLK);
                e.setDevMajor(st.rdevMajor());
                e.setDevMinor(st.rdevMinor());
            }
            case FIFO -> e = TarOut.entry(name, TarConstants.LF_FIFO);
            case SOCKET -> { return; }
            default -> {
                String key = st.dev() + ":" + st.ino();
                String first = st.nlink() > 1 ? hardlinks.putIfAbsent(key, n.path().substring(1)) : null;
                if (first != null) {
                    if (!raw && !Names.exact(first)) { // the first name was raw: this member must be too
                        tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_GNU);
                        tar.setAddPaxHeadersForNonAsciiNames(false);
                        name = latin1(n.path().substring(1));
                        raw = true;
                    }
                    e = TarOut.entry(name, TarConstants.LF_LINK);
                    e.setLinkName(raw ? latin1(first) : first);
                } else {
                    e = TarOut.entry(name, TarConstants.LF_NORMAL);
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
        for (String x : view.xattrNames(n)) {
            if (x.startsWith("trusted.overlay.")) continue;
            byte[] v = view.xattr(n, x);
            if (v == null) continue;
            budget.countBytes(x.length() + v.length); // xattrs are archive bytes too (up to 64 KiB each)
            String text = strictUtf8(v);
            if (text != null) e.addPaxHeader("SCHILY.xattr." + x, text);
            else e.addPaxHeader("LIBARCHIVE.xattr." + URLEncoder.encode(x, StandardCharsets.UTF_8),
                    Base64.getEncoder().encodeToString(v));
        }
        tar.putArchiveEntry(e);
        if (content) {
            try (MergedView.HostFile f = view.openFile(n); InputStream in = java.nio.channels.Channels.newInputStream(f.channel())) {
                byte[] buf = new byte[COPY_CHUNK];
                long copied = 0;
                int r;
                while ((r = in.read(buf)) > 0) {
                    budget.countBytes(r); // also notices a cancelled request between chunks
                    tar.write(buf, 0, r);
                    copied += r;
                }
                if (copied != st.size()) throw new IOException("file changed size while archiving: " + MergedView.display(n.path()));
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
}
