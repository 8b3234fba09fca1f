package dev.contree.operations;

import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.charset.StandardCharsets;
import java.util.Base64;

/** The wire's StreamRepr: printable ASCII (plus tab, CR, LF) as {@code ascii}, anything else as {@code base64}. */
public final class StreamRepr {
    private StreamRepr() {}

    public static boolean printable(byte[] b, int off, int len) {
        for (int i = off; i < off + len; i++) {
            int c = b[i] & 0xff;
            if ((c < 32 || c > 126) && c != '\t' && c != '\n' && c != '\r') return false;
        }
        return true;
    }

    public static ObjectNode repr(byte[] bytes, boolean truncated) {
        ObjectNode o = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode();
        if (printable(bytes, 0, bytes.length)) {
            o.put("value", new String(bytes, StandardCharsets.US_ASCII));
            o.put("encoding", "ascii");
        } else {
            o.put("value", Base64.getEncoder().encodeToString(bytes));
            o.put("encoding", "base64");
        }
        o.put("truncated", truncated);
        return o;
    }

    /** An event payload ({@code EventDataStream}): value and encoding, no truncated flag. */
    public static ObjectNode eventData(byte[] b, int off, int len) {
        ObjectNode o = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode();
        if (printable(b, off, len)) {
            o.put("value", new String(b, off, len, StandardCharsets.US_ASCII));
            o.put("encoding", "ascii");
        } else {
            byte[] copy = java.util.Arrays.copyOfRange(b, off, off + len);
            o.put("value", Base64.getEncoder().encodeToString(copy));
            o.put("encoding", "base64");
        }
        return o;
    }
}
