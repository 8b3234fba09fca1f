package dev.contree.api;

import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.charset.StandardCharsets;
import java.util.Base64;

/** The wire's StreamRepr: printable ASCII (plus tab, CR, LF) as {@code ascii}, anything else as {@code base64}. */
final class StreamRepr {
    private StreamRepr() {}

    static boolean printable(byte[] b) {
        for (byte x : b) {
            int c = x & 0xff;
            if ((c < 32 || c > 126) && c != '\t' && c != '\n' && c != '\r') return false;
        }
        return true;
    }

    /** {@code StreamRepr}: value, encoding and whether bytes were left out. */
    static ObjectNode repr(byte[] bytes, boolean truncated) {
        ObjectNode o = eventData(bytes);
        o.put("truncated", truncated);
        return o;
    }

    /** An event payload ({@code EventDataStream}): value and encoding, no truncated flag. */
    static ObjectNode eventData(byte[] bytes) {
        ObjectNode o = Json.object();
        if (printable(bytes)) {
            o.put("value", new String(bytes, StandardCharsets.US_ASCII));
            o.put("encoding", "ascii");
        } else {
            o.put("value", Base64.getEncoder().encodeToString(bytes));
            o.put("encoding", "base64");
        }
        return o;
    }
}
