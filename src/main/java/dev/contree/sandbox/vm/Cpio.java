package dev.contree.sandbox.vm;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/** A writer of the "newc" cpio format, the one the Linux kernel unpacks as an initramfs. */
public final class Cpio implements AutoCloseable {
    private static final int S_IFREG = 0100000, S_IFDIR = 0040000, S_IFCHR = 0020000;
    private final OutputStream out;
    private long written;
    private int ino = 1;

    public Cpio(OutputStream out) { this.out = out; }

    public void dir(String name, int mode) throws IOException {
        entry(name, S_IFDIR | mode, 2, 0, 0, new byte[0]);
    }

    public void file(String name, int mode, byte[] data) throws IOException {
        entry(name, S_IFREG | mode, 1, 0, 0, data);
    }

    public void charDevice(String name, int mode, int major, int minor) throws IOException {
        entry(name, S_IFCHR | mode, 1, major, minor, new byte[0]);
    }

    private void entry(String name, int mode, int nlink, int rdevMajor, int rdevMinor, byte[] data) throws IOException {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        // magic, ino, mode, uid, gid, nlink, mtime (0: the archive's bytes depend on its content only), filesize,
        // devmajor, devminor, rdevmajor, rdevminor, namesize (with its NUL), check
        String h = "070701" + hex(ino++) + hex(mode) + hex(0) + hex(0) + hex(nlink) + hex(0) + hex(data.length)
                + hex(0) + hex(0) + hex(rdevMajor) + hex(rdevMinor) + hex(n.length + 1) + hex(0);
        write(h.getBytes(StandardCharsets.US_ASCII));
        write(n);
        write(new byte[]{0});
        pad();
        write(data);
        pad();
    }

    private static String hex(long v) { return String.format("%08x", v); }

    private void write(byte[] b) throws IOException {
        out.write(b);
        written += b.length;
    }

    private void pad() throws IOException {
        int p = (int) ((4 - written % 4) % 4);
        if (p > 0) write(new byte[p]);
    }

    /** Writes the trailer (the stream is left open). */
    @Override public void close() throws IOException {
        ino = 0;
        entry("TRAILER!!!", 0, 1, 0, 0, new byte[0]);
        out.flush();
    }
}
