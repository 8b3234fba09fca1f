package dev.contree.layerformat;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.apache.commons.compress.archivers.zip.ZipEncoding;

/** What the two tar writers, {@link LayerPacker} (layer packs) and the inspect exporter, share. */
public final class TarOut {
    private TarOut() {}

    /**
     * A tar stream over {@code out} in ISO-8859-1 (one char a byte) that finishing does not close: the caller owns
     * {@code out}. Its long-name, PAX and big-number modes are the caller's to set.
     */
    public static TarArchiveOutputStream open(OutputStream out) {
        return new TarArchiveOutputStream(new NonClosing(out), StandardCharsets.ISO_8859_1.name());
    }

    /** An entry (absolute names kept as they are) whose header is written by {@link Entry}. */
    public static TarArchiveEntry entry(String name, byte type) {
        return new Entry(name, type);
    }

    /**
     * An entry whose ustar header gets at most 100 chars of its name and link name. The header fields hold 100
     * bytes and the full names travel in PAX or GNU long-name records already, but commons-compress shortens an
     * oversized name one char at a time, re-encoding the rest each time: O(n²), 11-22 ms of CPU per 4,000-byte
     * name (measured), so a directory of long symlinks held a core for minutes. In the ISO-8859-1 stream one char
     * is one byte ('?' for what it cannot encode), so 100 chars always fit.
     */
    private static final class Entry extends TarArchiveEntry {
        Entry(String name, byte type) {
            super(name, type, true);
        }

        @Override
        public void writeEntryHeader(byte[] out, ZipEncoding encoding, boolean starMode) throws IOException {
            String name = getName(), link = getLinkName();
            boolean longName = name.length() > TarConstants.NAMELEN, longLink = link != null && link.length() > TarConstants.NAMELEN;
            if (longName) setName(name.substring(0, TarConstants.NAMELEN));
            if (longLink) setLinkName(link.substring(0, TarConstants.NAMELEN));
            try {
                super.writeEntryHeader(out, encoding, starMode);
            } finally {
                if (longName) setName(name);
                if (longLink) setLinkName(link);
            }
        }
    }

    /** Finishing the tar must not close the caller's stream. */
    private static final class NonClosing extends FilterOutputStream {
        NonClosing(OutputStream out) { super(out); }
        @Override public void write(byte[] b, int off, int len) throws IOException { out.write(b, off, len); }
        @Override public void close() throws IOException { out.flush(); }
    }
}
