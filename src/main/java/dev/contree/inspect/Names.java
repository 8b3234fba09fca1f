package dev.contree.inspect;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * Linux file names are bytes; image paths inside the inspect code are Java strings that hold those bytes
 * losslessly ("surrogateescape", as Python does it): valid UTF-8 decodes as usual, and every byte that is not
 * part of a valid UTF-8 sequence becomes the lone surrogate U+DC80+byte. Valid UTF-8 never decodes to a
 * lone surrogate, so {@link #encode}({@link #decode}(b)) == b for every byte string.
 *
 * <p>On the wire: {@link #display} is the text clients see ({@code \xHH} for such bytes), {@link #base64}
 * the exact bytes (sent as {@code path_bytes} only when the name is not UTF-8), and {@link #queryValues}
 * reads a query parameter from the raw query string, so {@code %FF} addresses the byte 0xFF.
 */
public final class Names {
    private Names() {}

    /** Bytes → internal string (lossless). */
    public static String decode(byte[] b) {
        StringBuilder sb = new StringBuilder(b.length);
        int i = 0;
        while (i < b.length) {
            int c = b[i] & 0xff;
            if (c < 0x80) {
                sb.append((char) c);
                i++;
                continue;
            }
            int n = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
            int cp = n == 1 ? c & 0x1f : n == 2 ? c & 0x0f : c & 0x07;
            boolean ok = n > 0 && i + n < b.length;
            for (int k = 1; ok && k <= n; k++) {
                if ((b[i + k] & 0xc0) != 0x80) ok = false;
                else cp = (cp << 6) | (b[i + k] & 0x3f);
            }
            // reject overlong forms, surrogates and code points past U+10FFFF
            if (ok && (n == 2 && cp < 0x800 || n == 3 && (cp < 0x10000 || cp > 0x10ffff) || cp >= 0xd800 && cp <= 0xdfff))
                ok = false;
            if (ok) {
                sb.appendCodePoint(cp);
                i += n + 1;
            } else {
                sb.append((char) (0xdc00 | c));
                i++;
            }
        }
        return sb.toString();
    }

    /** Internal string → bytes (the inverse of {@link #decode}). */
    public static byte[] encode(String s) {
        if (isAscii(s)) return s.getBytes(StandardCharsets.US_ASCII);
        ByteArrayOutputStream out = new ByteArrayOutputStream(s.length() + 8);
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            i += Character.charCount(cp);
            if (cp >= 0xdc80 && cp <= 0xdcff) out.write(cp & 0xff);
            else if (cp >= 0xd800 && cp <= 0xdfff) out.writeBytes("\uFFFD".getBytes(StandardCharsets.UTF_8));
            else out.writeBytes(new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8));
        }
        return out.toByteArray();
    }

    /** Whether {@code s} carries no escaped byte, i.e. its UTF-8 is the exact name. */
    public static boolean exact(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c >= 0xdc80 && c <= 0xdcff && (i == 0 || !Character.isHighSurrogate(s.charAt(i - 1)))) return false;
        }
        return true;
    }

    /** Text for clients and messages: escaped bytes shown as {@code \xHH}. */
    public static String display(String s) {
        if (exact(s)) return s;
        StringBuilder sb = new StringBuilder(s.length() + 16);
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            i += Character.charCount(cp);
            if (cp >= 0xdc80 && cp <= 0xdcff) sb.append(String.format("\\x%02x", cp & 0xff));
            else sb.appendCodePoint(cp);
        }
        return sb.toString();
    }

    /** The exact bytes of {@code s}, base64 (standard alphabet, padded). */
    public static String base64(String s) {
        return Base64.getEncoder().encodeToString(encode(s));
    }

    /**
     * Every value of query parameter {@code name} in the raw (still percent-encoded) query string,
     * percent-decoded to bytes and then {@link #decode}d: {@code %FF} is the byte 0xFF, not U+FFFD.
     * '+' is a space, as in form encoding.
     */
    public static List<String> queryValues(String rawQuery, String name) {
        List<String> out = new ArrayList<>();
        if (rawQuery == null || rawQuery.isEmpty()) return out;
        for (String pair : rawQuery.split("&")) {
            int eq = pair.indexOf('=');
            String k = unescape(eq < 0 ? pair : pair.substring(0, eq));
            if (!k.equals(name)) continue;
            out.add(eq < 0 ? "" : unescape(pair.substring(eq + 1)));
        }
        return out;
    }

    private static String unescape(String s) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '+') out.write(' ');
            else if (c == '%' && i + 2 < s.length() && hex(s.charAt(i + 1)) >= 0 && hex(s.charAt(i + 2)) >= 0) {
                out.write(hex(s.charAt(i + 1)) << 4 | hex(s.charAt(i + 2)));
                i += 2;
            } else out.writeBytes(String.valueOf(c).getBytes(StandardCharsets.UTF_8));
        }
        return decode(out.toByteArray());
    }

    private static int hex(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    }

    private static boolean isAscii(String s) {
        for (int i = 0; i < s.length(); i++) if (s.charAt(i) >= 0x80) return false;
        return true;
    }
}
