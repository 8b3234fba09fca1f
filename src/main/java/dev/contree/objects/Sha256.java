package dev.contree.objects;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** SHA-256 helpers for content-addressed objects. */
public final class Sha256 {
    private Sha256() {}

    public static MessageDigest digest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    public static String hex(MessageDigest d) {
        return HexFormat.of().formatHex(d.digest());
    }

    /** The sha256 of a file's bytes. */
    public static String of(Path file) throws IOException {
        MessageDigest d = digest();
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[256 * 1024];
            for (int n; (n = in.read(buf)) > 0; ) d.update(buf, 0, n);
        }
        return hex(d);
    }

    /** Copies {@code in} into {@code target} (fsynced), checking it hashes to the key; deletes target on a mismatch. */
    static long copyVerified(InputStream in, Path target, ObjectKey key, long maxBytes) throws IOException {
        MessageDigest d = digest();
        long size = 0;
        try {
            try (FileChannel ch = FileChannel.open(target, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING); OutputStream out = Channels.newOutputStream(ch)) {
                byte[] buf = new byte[256 * 1024];
                for (int n; (n = in.read(buf)) > 0; ) {
                    d.update(buf, 0, n);
                    out.write(buf, 0, n);
                    size += n;
                    if (size > maxBytes) throw new ObjectStore.CorruptObjectException(key, maxBytes);
                }
                out.flush();
                ch.force(true);
            }
            String actual = hex(d);
            if (!actual.equals(key.sha256())) throw new ObjectStore.CorruptObjectException(key, actual);
            return size;
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(target);
            throw e;
        }
    }
}
