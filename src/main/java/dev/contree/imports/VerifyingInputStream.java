package dev.contree.imports;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Hashes what passes through; end of stream is only reported after the sha256 (and size, if known) matched,
 * otherwise the read that reaches the end throws an {@link ImportFailure}.
 */
final class VerifyingInputStream extends FilterInputStream {
    private final String expected;
    private final long expectedSize;
    private final String what;
    private final MessageDigest md;
    private long count;
    private boolean verified;

    /** @param expectedSize the size, or -1 if unknown */
    VerifyingInputStream(InputStream in, String expectedDigest, long expectedSize, String what) {
        super(in);
        this.expected = expectedDigest;
        this.expectedSize = expectedSize;
        this.what = what;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public int read() throws IOException {
        byte[] b = new byte[1];
        int n = read(b, 0, 1);
        return n < 0 ? -1 : b[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (verified) return -1;
        if (len == 0) return 0;
        int n = in.read(b, off, len);
        if (n < 0) {
            check();
            return -1;
        }
        md.update(b, off, n);
        count += n;
        if (expectedSize >= 0 && count > expectedSize) {
            throw new ImportFailure(what + " is larger than its declared size of " + expectedSize + " bytes");
        }
        return n;
    }

    private void check() throws ImportFailure {
        if (expectedSize >= 0 && count != expectedSize) {
            throw new ImportFailure(what + " size mismatch: expected " + expectedSize + " bytes, got " + count);
        }
        String actual = "sha256:" + HexFormat.of().formatHex(md.digest());
        if (!actual.equals(expected)) throw new ImportFailure(what + " digest mismatch: expected " + expected + ", got " + actual);
        verified = true;
    }

    @Override
    public long skip(long n) throws IOException {
        byte[] buf = new byte[(int) Math.min(Math.max(n, 0), 64 * 1024)];
        long left = n;
        while (left > 0) {
            int r = read(buf, 0, (int) Math.min(left, buf.length));
            if (r < 0) break;
            left -= r;
        }
        return n - Math.max(left, 0);
    }

    @Override
    public boolean markSupported() {
        return false;
    }

    static String sha256(byte[] bytes) {
        try {
            return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
