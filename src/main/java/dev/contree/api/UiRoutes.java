package dev.contree.api;

import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * The tree explorer's files at {@code /ui/}, from {@code ui/} on the classpath (built from the repo's {@code ui/} by
 * the Maven build). No authentication: the page holds nothing; every API call it makes carries the token the user
 * typed. Bundles have content hashes in their names, so they are cached for good; {@code index.html} is revalidated.
 */
final class UiRoutes {
    /** The built directory is flat: a name like {@code app-3FJ2K.js}. Anything else is not ours to serve. */
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
    private static final Map<String, String> TYPES = Map.of(
            "html", "text/html; charset=utf-8", "js", "text/javascript; charset=utf-8", "css", "text/css; charset=utf-8",
            "svg", "image/svg+xml", "png", "image/png", "ico", "image/x-icon", "map", "application/json; charset=utf-8",
            "txt", "text/plain; charset=utf-8");
    /** Same origin only: the page reads the API on this server and nothing else, and may not be framed. */
    private static final String CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            + "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
    /** esbuild's content hash: 8 characters of A-Z and 0-9 before the extension. */
    private static final Pattern HASHED = Pattern.compile(".+-[A-Z0-9]{8}\\.(js|css)");
    private final Map<String, byte[]> cache = new ConcurrentHashMap<>();

    void register(RoutesConfig r) {
        r.get("/ui", this::serve);
        r.get("/ui/*", this::serve);
    }

    private void serve(Context ctx) {
        String path = ctx.path();
        // Router settings fold "/ui" and "/ui/" together: relative URLs in the page need the slash.
        if (path.equals("/ui")) {
            ctx.header("Location", "/ui/");
            ctx.status(301);
            return;
        }
        String name = path.substring("/ui/".length());
        if (name.isEmpty()) name = "index.html";
        boolean hashed = HASHED.matcher(name).matches();
        byte[] bytes = NAME.matcher(name).matches() && !name.contains("..") ? read(name, hashed) : null;
        if (bytes == null) throw ApiException.notFound("no such file in the explorer: " + name);
        String ext = name.substring(name.lastIndexOf('.') + 1);
        ctx.contentType(TYPES.getOrDefault(ext, "application/octet-stream"));
        ctx.header("X-Content-Type-Options", "nosniff");
        ctx.header("Referrer-Policy", "no-referrer");
        ctx.header("Content-Security-Policy", CSP);
        ctx.header("Cache-Control", hashed ? "public, max-age=31536000, immutable" : "no-cache");
        ctx.result(bytes);
    }

    /** The file's bytes, or null when the jar has no such file. Bundles (a few, small, never changing) are kept once read. */
    private byte[] read(String name, boolean keep) {
        byte[] cached = cache.get(name);
        if (cached != null) return cached;
        try (InputStream in = UiRoutes.class.getResourceAsStream("/ui/" + name)) {
            if (in == null) return null;
            byte[] bytes = in.readAllBytes();
            if (keep && cache.size() < 64) cache.put(name, bytes);
            return bytes;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
