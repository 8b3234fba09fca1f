package dev.contree.layerformat;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * Writes tar archives header by header, names as bytes, without any tar library: ustar headers, GNU {@code L}/{@code K}
 * long names, PAX {@code x}/{@code g} records with raw (also non-UTF-8) values. What Go's archive/tar, GNU tar and
 * hostile hand-made archives write, byte for byte.
 */
public final class RawTar {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    /** The bytes of a Latin-1 string: {@code b("caf\u00e9")} is {@code 63 61 66 e9}. */
    public static byte[] b(String latin1) {
        return latin1.getBytes(StandardCharsets.ISO_8859_1);
    }

    public RawTar dir(byte[] name, int mode) {
        return entry('5', name, new byte[0], new byte[0], mode);
    }

    public RawTar file(byte[] name, byte[] data, int mode) {
        return entry('0', name, new byte[0], data, mode);
    }

    public RawTar symlink(byte[] name, byte[] target) {
        return entry('2', name, target, new byte[0], 0777);
    }

    public RawTar hardlink(byte[] name, byte[] target) {
        return entry('1', name, target, new byte[0], 0644);
    }

    /** A GNU long name ({@code L}) or long link name ({@code K}) for the next entry. */
    public RawTar gnuLong(char type, byte[] value) {
        byte[] data = Arrays.copyOf(value, value.length + 1); // NUL-terminated, as GNU tar writes it
        return entry(type, b("././@LongLink"), new byte[0], data, 0644);
    }

    /** PAX records (key, value bytes, key, value bytes, ...) for the next entry ({@code x}) or all later ones ({@code g}). */
    public RawTar pax(char type, Object... kv) {
        ByteArrayOutputStream recs = new ByteArrayOutputStream();
        for (int i = 0; i < kv.length; i += 2) {
            byte[] key = ((String) kv[i]).getBytes(StandardCharsets.UTF_8);
            byte[] value = kv[i + 1] instanceof byte[] v ? v : ((String) kv[i + 1]).getBytes(StandardCharsets.UTF_8);
            int rest = 1 + key.length + 1 + value.length + 1; // " key=value\n"
            int len = rest + Integer.toString(rest).length();
            if (Integer.toString(len).length() != Integer.toString(rest).length()) len++;
            recs.writeBytes(b(len + " "));
            recs.writeBytes(key);
            recs.write('=');
            recs.writeBytes(value);
            recs.write('\n');
        }
        return entry(type, b("PaxHeaders/x"), new byte[0], recs.toByteArray(), 0644);
    }

    /** A header claiming {@code size} bytes of data, followed by that many zero bytes. */
    public RawTar sized(char type, long size) {
        header(type, b("big"), new byte[0], size, 0644);
        out.writeBytes(new byte[(int) ((size + 511) / 512 * 512)]);
        return this;
    }

    /** Appends every entry (dirs, files, symlinks, hard links) of an existing tar. */
    public RawTar copyOf(byte[] tar) {
        try (TarArchiveInputStream in = new TarArchiveInputStream(TarLayerWriter.decompressing(new ByteArrayInputStream(tar)))) {
            TarArchiveEntry e;
            while ((e = in.getNextEntry()) != null) {
                byte[] name = e.getName().getBytes(StandardCharsets.UTF_8);
                byte[] link = e.getLinkName().getBytes(StandardCharsets.UTF_8);
                if (e.isDirectory()) dir(name, e.getMode() & 07777);
                else if (e.isSymbolicLink()) symlink(name, link);
                else if (e.isLink()) hardlink(name, link);
                else if (e.isFile()) file(name, in.readAllBytes(), e.getMode() & 07777);
            }
        } catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
        return this;
    }

    public RawTar entry(char type, byte[] name, byte[] link, byte[] data, int mode) {
        header(type, name, link, data.length, mode);
        out.writeBytes(data);
        out.writeBytes(new byte[(512 - data.length % 512) % 512]);
        return this;
    }

    private void header(char type, byte[] name, byte[] link, long size, int mode) {
        if (name.length > 100 || link.length > 100) throw new IllegalArgumentException("use gnuLong or pax for long names");
        byte[] h = new byte[512];
        System.arraycopy(name, 0, h, 0, name.length);
        octal(h, 100, 8, mode);
        octal(h, 108, 8, 0);
        octal(h, 116, 8, 0);
        octal(h, 124, 12, size);
        octal(h, 136, 12, 1_600_000_000L);
        h[156] = (byte) type;
        System.arraycopy(link, 0, h, 157, link.length);
        System.arraycopy(b("ustar\0" + "00"), 0, h, 257, 8);
        Arrays.fill(h, 148, 156, (byte) ' ');
        long sum = 0;
        for (byte x : h) sum += x & 0xff;
        byte[] cs = b(String.format("%06o", sum));
        System.arraycopy(cs, 0, h, 148, 6);
        h[154] = 0;
        out.writeBytes(h);
    }

    private static void octal(byte[] h, int off, int len, long v) {
        byte[] s = b(String.format("%0" + (len - 1) + "o", v));
        System.arraycopy(s, 0, h, off, len - 1);
        h[off + len - 1] = 0;
    }

    /** The archive with its two zero end blocks. */
    public byte[] bytes() {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        all.writeBytes(out.toByteArray());
        all.writeBytes(new byte[1024]);
        return all.toByteArray();
    }
}
