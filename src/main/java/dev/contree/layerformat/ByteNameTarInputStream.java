package dev.contree.layerformat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * A tar reader whose entry names, link names and PAX values are the exact bytes of the archive.
 *
 * <p>commons-compress decodes header names (ustar {@code name}/{@code prefix}/{@code linkname}, GNU {@code L}/{@code K}
 * long names) with the stream's encoding: we give it ISO-8859-1, which maps every byte to one char and back, so
 * {@link #latin1Bytes} recovers them. PAX records ({@code x}/{@code g} headers) it always decodes as UTF-8 and ignores
 * {@code hdrcharset}, so a {@code path}, {@code linkpath} or {@code SCHILY.xattr.*} value that is not valid UTF-8
 * (what Go's archive/tar writes for such names, or GNU tar/libarchive with {@code hdrcharset=BINARY}) comes out
 * with U+FFFD in place of its bytes. So this reader also keeps the raw bytes of every PAX header it reads (commons
 * reads them through {@link #read(byte[], int, int)}, which we see) and parses the records itself; where a record
 * is present its bytes win. What commons decoded is checked against those bytes, so a header sequence we would read
 * differently fails instead of landing under a different name.
 *
 * <p>PAX and GNU long-name headers are limited to {@link #MAX_META_HEADER} bytes (like Go's archive/tar), so a
 * hostile header cannot make the reader buffer gigabytes.
 */
final class ByteNameTarInputStream extends TarArchiveInputStream {
    /** The largest PAX / GNU long-name header accepted. */
    static final long MAX_META_HEADER = 1 << 20;

    /** One entry: commons' view plus the exact name bytes. */
    record Entry(TarArchiveEntry tar, byte[] name, byte[] linkName, Map<String, byte[]> pax) {}

    private final ByteArrayOutputStream localPax = new ByteArrayOutputStream();
    private final ByteArrayOutputStream globalPax = new ByteArrayOutputStream();
    private final Map<String, byte[]> globalRecords = new HashMap<>();

    ByteNameTarInputStream(InputStream in) {
        super(in, StandardCharsets.ISO_8859_1.name());
    }

    @Override
    public int read(byte[] buf, int off, int len) throws IOException {
        TarArchiveEntry cur = getCurrentEntry();
        boolean meta = cur != null && (cur.isPaxHeader() || cur.isGlobalPaxHeader() || cur.isGNULongNameEntry()
                || cur.isGNULongLinkEntry());
        if (meta && cur.getSize() > MAX_META_HEADER)
            throw new LayerFormatException("tar header extension of " + cur.getSize() + " bytes (limit " + MAX_META_HEADER + ")");
        int n = super.read(buf, off, len);
        if (n > 0 && meta) {
            if (cur.isGlobalPaxHeader()) globalPax.write(buf, off, n);
            else if (cur.isPaxHeader()) localPax.write(buf, off, n);
        }
        return n;
    }

    /** The next entry, or null at the end of the archive. */
    Entry next() throws IOException {
        localPax.reset();
        globalPax.reset();
        TarArchiveEntry e = getNextEntry();
        if (e == null) return null;
        if (globalPax.size() > 0) merge(globalRecords, parseRecords(globalPax.toByteArray()));
        Map<String, byte[]> pax = new HashMap<>(globalRecords);
        merge(pax, parseRecords(localPax.toByteArray()));
        // GNU tar's sparse formats 0.1/1.0 put a placeholder in path and the real name in GNU.sparse.name
        String nameKey = pax.containsKey("GNU.sparse.name") ? "GNU.sparse.name" : pax.containsKey("path") ? "path" : null;
        byte[] name = nameKey != null ? pax.get(nameKey) : latin1Bytes(e.getName(), "name");
        byte[] link = pax.containsKey("linkpath") ? pax.get("linkpath") : latin1Bytes(e.getLinkName(), "link name");
        if (nameKey != null) check(e.getName(), name, nameKey);
        if (pax.containsKey("linkpath")) check(e.getLinkName(), link, "linkpath");
        return new Entry(e, name, link, pax);
    }

    /** Applies parsed records: a null value (an empty record) deletes the key. */
    private static void merge(Map<String, byte[]> into, Map<String, byte[]> records) {
        for (Map.Entry<String, byte[]> r : records.entrySet()) {
            if (r.getValue() == null) into.remove(r.getKey());
            else into.put(r.getKey(), r.getValue());
        }
    }

    /** The bytes of a header field commons decoded as ISO-8859-1. */
    private static byte[] latin1Bytes(String s, String what) throws LayerFormatException {
        for (int i = 0; i < s.length(); i++)
            if (s.charAt(i) > 0xff) throw new LayerFormatException("tar " + what + " of an entry was decoded from a PAX record we did not read: "
                    + s);
        return s.getBytes(StandardCharsets.ISO_8859_1);
    }

    /** What commons decoded must be what the raw bytes say (leading/trailing slashes aside: commons strips some). */
    private static void check(String decoded, byte[] raw, String key) throws LayerFormatException {
        String mine = new String(raw, StandardCharsets.UTF_8);
        if (!stripSlashes(mine).equals(stripSlashes(decoded)))
            throw new LayerFormatException("inconsistent PAX headers: " + key + " " + mine + " vs " + decoded);
    }

    private static String stripSlashes(String s) {
        int i = 0, j = s.length();
        while (i < j && s.charAt(i) == '/') i++;
        while (j > i && s.charAt(j - 1) == '/') j--;
        return s.substring(i, j);
    }

    /**
     * Parses PAX records {@code "LEN KEY=VALUE\n"} (POSIX.1-2001); values stay bytes. An empty value deletes the key
     * as POSIX says (null in the result).
     */
    static Map<String, byte[]> parseRecords(byte[] b) throws LayerFormatException {
        Map<String, byte[]> out = new HashMap<>();
        int i = 0;
        while (i < b.length) {
            if (b[i] == 0) break; // NUL padding after the last record
            int start = i;
            long len = 0;
            while (i < b.length && b[i] >= '0' && b[i] <= '9') {
                len = len * 10 + (b[i++] - '0');
                if (len > b.length) throw new LayerFormatException("bad PAX record length");
            }
            if (i == start || i >= b.length || b[i] != ' ') throw new LayerFormatException("bad PAX record");
            int end = start + (int) len;
            if (end > b.length || end <= i + 1 || b[end - 1] != '\n') throw new LayerFormatException("bad PAX record");
            int eq = i + 1;
            while (eq < end - 1 && b[eq] != '=') eq++;
            if (eq >= end - 1) throw new LayerFormatException("bad PAX record");
            String key = new String(b, i + 1, eq - i - 1, StandardCharsets.UTF_8);
            byte[] value = java.util.Arrays.copyOfRange(b, eq + 1, end - 1);
            out.put(key, value.length == 0 ? null : value);
            i = end;
        }
        return out;
    }
}
