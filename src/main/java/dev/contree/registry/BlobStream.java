package dev.contree.registry;

import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * A blob body that is hashed while read. The end of the stream is only reported (read returns -1) after the sha256
 * and the byte count matched the descriptor; otherwise that read throws a {@link BlobIOException} wrapping a
 * {@link RegistryException} of kind {@link RegistryException.Kind#DIGEST_MISMATCH}. Reading more bytes than the
 * declared size fails immediately.
 *
 * <p>Decompressors and tar readers often stop before the end of the underlying stream (gzip trailer, tar padding).
 * Before committing anything, call {@link #verifyFully()}: it drains whatever the consumer left unread and
 * verifies. Closing without reaching the end just aborts.
 */
public final class BlobStream extends InputStream {
    /** An IOException carrying a {@link RegistryException}; see {@link RegistryException#from(IOException)}. */
    public static final class BlobIOException extends IOException {
        BlobIOException(RegistryException cause) {
            super(cause.getMessage(), cause);
        }

        public RegistryException registryException() {
            return (RegistryException) getCause();
        }
    }

    private final InputStream in;
    private final String expectedDigest;
    private final long expectedSize;
    private final String what;
    private final MessageDigest md;
    private long count;
    private boolean verified;
    private BlobIOException failure;

    BlobStream(InputStream in, String expectedDigest, long expectedSize, String what) {
        this.in = in;
        this.expectedDigest = expectedDigest;
        this.expectedSize = expectedSize;
        this.what = what;
        try {
            this.md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Wraps any stream of content-addressed bytes (a registry blob, an archive member) so that its
     * end is reported only after sha256 and size matched; {@code expectedSize} -1 means unknown.
     */
    public static BlobStream verifying(InputStream in, String expectedDigest, long expectedSize, String what) {
        return new BlobStream(in, expectedDigest, expectedSize, what);
    }

    /** {@code sha256:<hex>} of {@code bytes}. */
    public static String sha256(byte[] bytes) {
        try {
            return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    public String digest() {
        return expectedDigest;
    }

    public long size() {
        return expectedSize;
    }

    /** True once the whole blob was read and matched digest and size. */
    public boolean isVerified() {
        return verified;
    }

    @Override
    public int read() throws IOException {
        byte[] b = new byte[1];
        int n = read(b, 0, 1);
        return n < 0 ? -1 : b[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (failure != null) throw failure;
        if (verified) return -1;
        if (len == 0) return 0;
        int n;
        try {
            n = in.read(b, off, len);
        } catch (IOException e) {
            throw fail(RegistryException.Kind.NETWORK, "network error while downloading " + what + ": " + e.getMessage(), e);
        }
        if (n < 0) {
            check();
            return -1;
        }
        md.update(b, off, n);
        count += n;
        if (expectedSize >= 0 && count > expectedSize) {
            throw fail(RegistryException.Kind.DIGEST_MISMATCH,
                what + " is larger than its declared size of " + expectedSize + " bytes", null);
        }
        return n;
    }

    private void check() throws BlobIOException {
        if (expectedSize >= 0 && count != expectedSize) {
            throw fail(RegistryException.Kind.DIGEST_MISMATCH,
                what + " size mismatch: expected " + expectedSize + " bytes, got " + count, null);
        }
        String actual = "sha256:" + HexFormat.of().formatHex(md.digest());
        if (!actual.equals(expectedDigest)) {
            throw fail(RegistryException.Kind.DIGEST_MISMATCH,
                what + " digest mismatch: expected " + expectedDigest + ", got " + actual, null);
        }
        verified = true;
    }

    private BlobIOException fail(RegistryException.Kind kind, String msg, Throwable cause) {
        failure = new BlobIOException(new RegistryException(kind, msg, cause));
        return failure;
    }

    /** Reads the rest of the blob (discarding it) and verifies digest and size. Idempotent once verified. */
    public void verifyFully() throws RegistryException {
        byte[] buf = new byte[64 * 1024];
        try {
            while (read(buf, 0, buf.length) >= 0) {
                // drain
            }
        } catch (IOException e) {
            throw RegistryException.from(e);
        }
    }

    @Override
    public long skip(long n) throws IOException {
        // keep hashing: skip by reading
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
    public int available() throws IOException {
        return verified || failure != null ? 0 : in.available();
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
