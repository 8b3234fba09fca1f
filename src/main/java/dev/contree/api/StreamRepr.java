package dev.contree.api;

import java.nio.charset.StandardCharsets;
import java.util.Base64;

/** The wire's StreamRepr: printable ASCII (plus tab, CR, LF) as {@code ascii}, anything else as {@code base64}. */
final class StreamRepr {
    private StreamRepr() {}

    /** An event payload ({@code EventDataStream}): value and encoding, no truncated flag. */
    record Encoded(String value, String encoding) {}

    /** {@code StreamRepr}: value, encoding and whether bytes were left out. */
    record Repr(String value, String encoding, boolean truncated) {}

    private static boolean printable(byte[] b) {
        for (byte x : b) {
            int c = x & 0xff;
            if ((c < 32 || c > 126) && c != '\t' && c != '\n' && c != '\r') return false;
        }
        return true;
    }

    static Repr repr(byte[] bytes, boolean truncated) {
        Encoded e = encoded(bytes);
        return new Repr(e.value(), e.encoding(), truncated);
    }

    static Encoded encoded(byte[] bytes) {
        return printable(bytes) ? new Encoded(new String(bytes, StandardCharsets.US_ASCII), "ascii")
                : new Encoded(Base64.getEncoder().encodeToString(bytes), "base64");
    }
}
