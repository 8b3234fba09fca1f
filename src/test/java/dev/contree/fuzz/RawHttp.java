package dev.contree.fuzz;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * HTTP/1.1 over a plain socket, for requests java.net.http refuses to send: raw bytes in the
 * request line and headers, a Content-Length that lies, a chunked body cut mid-chunk. Every
 * exchange uses {@code Connection: close} and a hard per-request timeout.
 */
final class RawHttp {
    static final int TIMEOUT_MS = 10_000;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final int port;

    RawHttp(int port) {
        this.port = port;
    }

    /** A parsed answer; {@code body} is de-chunked. */
    record Response(int status, Map<String, String> headers, byte[] body, String request) {
        String header(String name) {
            return headers.get(name.toLowerCase(Locale.ROOT));
        }

        String text() {
            return new String(body, StandardCharsets.UTF_8);
        }

        JsonNode json() {
            try {
                return JSON.readTree(body);
            } catch (IOException e) {
                return null;
            }
        }

        @Override
        public String toString() {
            String t = text();
            return status + " " + headers + " " + (t.length() > 300 ? t.substring(0, 300) + "…" : t) + "  <- " + request;
        }
    }

    /** How the request body leaves the client. */
    enum BodyMode {
        /** Content-Length = body length. */
        NORMAL,
        /** Content-Length = body length + 1000, then half-close after the bytes. */
        SHORT,
        /** Transfer-Encoding: chunked, one chunk announcing more than it carries, then half-close. */
        CHUNK_CUT,
        /** Transfer-Encoding: chunked, correct. */
        CHUNKED
    }

    static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.ISO_8859_1);
    }

    /** A request whose target is given as raw bytes (may hold anything but CR/LF). */
    Response send(String method, byte[] target, Map<String, String> headers, byte[] body, BodyMode mode) {
        ByteArrayOutputStream req = new ByteArrayOutputStream();
        req.writeBytes(ascii(method + " "));
        req.writeBytes(target);
        req.writeBytes(ascii(" HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\nConnection: close\r\n"));
        for (var h : headers.entrySet()) {
            req.writeBytes(ascii(h.getKey() + ": "));
            req.writeBytes(h.getValue().getBytes(StandardCharsets.UTF_8));
            req.writeBytes(ascii("\r\n"));
        }
        byte[] tail = new byte[0];
        if (body != null) {
            switch (mode) {
                case NORMAL -> req.writeBytes(ascii("Content-Length: " + body.length + "\r\n\r\n"));
                case SHORT -> req.writeBytes(ascii("Content-Length: " + (body.length + 1000) + "\r\n\r\n"));
                case CHUNKED, CHUNK_CUT -> req.writeBytes(ascii("Transfer-Encoding: chunked\r\n\r\n"));
            }
            switch (mode) {
                case NORMAL, SHORT -> tail = body;
                case CHUNKED -> {
                    ByteArrayOutputStream c = new ByteArrayOutputStream();
                    if (body.length > 0) {
                        c.writeBytes(ascii(Integer.toHexString(body.length) + "\r\n"));
                        c.writeBytes(body);
                        c.writeBytes(ascii("\r\n"));
                    }
                    c.writeBytes(ascii("0\r\n\r\n"));
                    tail = c.toByteArray();
                }
                case CHUNK_CUT -> {
                    ByteArrayOutputStream c = new ByteArrayOutputStream();
                    c.writeBytes(ascii(Integer.toHexString(body.length + 4096) + "\r\n"));
                    c.writeBytes(body);
                    tail = c.toByteArray();
                }
            }
        } else {
            req.writeBytes(ascii("\r\n"));
        }
        String description = method + " " + printable(target) + " " + headers.keySet() + " body=" + (body == null ? "none" : body.length + "B " + mode);
        return exchange(req.toByteArray(), tail, mode == BodyMode.SHORT || mode == BodyMode.CHUNK_CUT, method.equals("HEAD"), description);
    }

    Response send(String method, String target, Map<String, String> headers, byte[] body) {
        return send(method, target.getBytes(StandardCharsets.UTF_8), headers, body, BodyMode.NORMAL);
    }

    /** Writes {@code head} then {@code tail}; half-closes if asked; reads the whole answer. */
    Response exchange(byte[] head, byte[] tail, boolean halfClose, boolean isHead, String description) {
        long deadline = System.nanoTime() + TIMEOUT_MS * 1_000_000L;
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), TIMEOUT_MS);
            s.setSoTimeout(TIMEOUT_MS);
            OutputStream out = s.getOutputStream();
            // The server may answer (413, 400) and close before it read everything: a reset while writing is fine.
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    out.write(head);
                    out.write(tail);
                    out.flush();
                    if (halfClose) s.shutdownOutput();
                } catch (IOException ignored) {
                }
            });
            InputStream in = new java.io.BufferedInputStream(s.getInputStream());
            Response r = read(in, isHead, deadline, description);
            writer.join(TIMEOUT_MS);
            return r;
        } catch (SocketTimeoutException e) {
            throw new AssertionError("no answer within " + TIMEOUT_MS + " ms: " + description, e);
        } catch (IOException | InterruptedException e) {
            throw new AssertionError("exchange failed (" + e + "): " + description, e);
        }
    }

    private static Response read(InputStream in, boolean isHead, long deadline, String description) throws IOException {
        String statusLine = line(in, deadline);
        if (statusLine == null) throw new AssertionError("connection closed without an answer: " + description);
        String[] parts = statusLine.split(" ", 3);
        if (parts.length < 2 || !parts[0].startsWith("HTTP/1.")) throw new AssertionError("bad status line '" + statusLine + "': " + description);
        int status = Integer.parseInt(parts[1]);
        Map<String, String> headers = new LinkedHashMap<>();
        for (String l; (l = line(in, deadline)) != null && !l.isEmpty(); ) {
            int colon = l.indexOf(':');
            if (colon > 0) headers.put(l.substring(0, colon).trim().toLowerCase(Locale.ROOT), l.substring(colon + 1).trim());
        }
        byte[] body;
        if (isHead || status == 204 || status == 304) {
            // Connection: close, so anything after the headers would be a body the server should not have sent.
            body = readAll(in, deadline);
        } else if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            while (true) {
                String size = line(in, deadline);
                if (size == null) break;
                int semi = size.indexOf(';');
                int n = Integer.parseInt((semi < 0 ? size : size.substring(0, semi)).trim(), 16);
                if (n == 0) break;
                b.writeBytes(in.readNBytes(n));
                line(in, deadline);
            }
            body = b.toByteArray();
        } else if (headers.containsKey("content-length")) {
            body = in.readNBytes(Integer.parseInt(headers.get("content-length")));
        } else {
            body = readAll(in, deadline);
        }
        return new Response(status, headers, body, description);
    }

    private static byte[] readAll(InputStream in, long deadline) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        for (int n; (n = in.read(buf)) > 0; ) {
            b.write(buf, 0, n);
            if (System.nanoTime() > deadline) throw new SocketTimeoutException("body not finished in time");
        }
        return b.toByteArray();
    }

    private static String line(InputStream in, long deadline) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (int c; (c = in.read()) >= 0; ) {
            if (c == '\n') {
                byte[] bytes = b.toByteArray();
                int len = bytes.length > 0 && bytes[bytes.length - 1] == '\r' ? bytes.length - 1 : bytes.length;
                return new String(bytes, 0, len, StandardCharsets.ISO_8859_1);
            }
            b.write(c);
            if (System.nanoTime() > deadline) throw new SocketTimeoutException("line not finished in time");
        }
        return b.size() == 0 ? null : b.toString(StandardCharsets.ISO_8859_1);
    }

    static String printable(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < b.length && sb.length() < 160; i++) {
            int c = b[i] & 0xff;
            if (c >= 0x20 && c < 0x7f) sb.append((char) c);
            else sb.append(String.format("\\x%02x", c));
        }
        if (sb.length() >= 160) sb.append("…(").append(b.length).append(" bytes)");
        return sb.toString();
    }
}
