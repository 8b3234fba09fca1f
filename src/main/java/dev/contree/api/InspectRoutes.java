package dev.contree.api;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.images.Image;
import dev.contree.images.ImageFilesystem;
import dev.contree.images.ImageService;
import dev.contree.inspect.DiffResult;
import dev.contree.inspect.GrepQuery;
import dev.contree.inspect.GrepResult;
import dev.contree.inspect.InspectException;
import dev.contree.inspect.MergedView;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.GZIPOutputStream;

/**
 * {@code /v1/inspect}: find an image by tag, read its record, and read its files without running
 * anything — list, download, archive, grep — plus our diff between any two images.
 */
final class InspectRoutes {
    private final ImageService images;
    private final ImageFilesystem filesystem;

    InspectRoutes(ImageService images, ImageFilesystem filesystem) {
        this.images = images;
        this.filesystem = filesystem;
    }

    /** Reads inside an open view of an image. */
    @FunctionalInterface
    private interface ViewHandler {
        void handle(Context ctx, MergedView view) throws IOException;
    }

    void register(RoutesConfig r) {
        // Trailing slashes are ignored by the router, so /v1/inspect and /v1/inspect/ both land here.
        r.get("/v1/inspect", this::byTag);
        r.get("/v1/inspect/{uuid}", ctx -> Json.send(ctx, 200, Wire.imageWithConfig(image(ctx, "uuid"))));
        r.get("/v1/inspect/{uuid}/list", ctx -> withView(ctx, this::list));
        r.get("/v1/inspect/{uuid}/download", ctx -> withView(ctx, (c, v) -> download(c, v, true)));
        r.head("/v1/inspect/{uuid}/download", ctx -> withView(ctx, (c, v) -> download(c, v, false)));
        r.get("/v1/inspect/{uuid}/archive", ctx -> withView(ctx, (c, v) -> archive(c, v, true)));
        r.head("/v1/inspect/{uuid}/archive", ctx -> withView(ctx, (c, v) -> archive(c, v, false)));
        r.get("/v1/inspect/{uuid}/grep", ctx -> withView(ctx, this::grep));
        r.get("/v1/inspect/{uuid}/diff/{other}", this::diff);
    }

    private void byTag(Context ctx) {
        String tag = ctx.queryParam("tag");
        if (tag == null || tag.isEmpty()) throw ApiException.badRequest("tag is required");
        Image image = images.byTag(Auth.account(ctx), tag).orElseThrow(() -> ApiException.notFound("no image tagged '" + tag + "'"));
        // Relative to /v1/inspect/ as the hosted API does; from the slash-less form the base lacks "inspect/".
        String location = (ctx.path().endsWith("/") ? "" : "inspect/") + image.uuid() + "/";
        ctx.status(302).header("Location", location);
    }

    private Image image(Context ctx, String param) {
        String uuid = Params.uuid(ctx.pathParam(param), "image");
        return images.get(Auth.account(ctx), uuid).orElseThrow(() -> ApiException.notFound("image not found"));
    }

    private void withView(Context ctx, ViewHandler handler) throws IOException {
        try (ImageFilesystem.View view = filesystem.open(image(ctx, "uuid"))) {
            handler.handle(ctx, view.files());
        } catch (InspectException e) {
            throw new ApiException(e.kind().httpStatus(), e.getMessage());
        }
    }

    private static String path(Context ctx) {
        String p = ctx.queryParam("path");
        if (p == null || p.isEmpty()) return "/";
        return p.startsWith("/") ? p : "/" + p;
    }

    private void list(Context ctx, MergedView view) throws IOException {
        String dir = path(ctx);
        if (ctx.queryParam("text") != null) {
            ctx.status(200).contentType("text/plain; charset=utf-8").result(view.textListing(dir).getBytes(StandardCharsets.UTF_8));
            return;
        }
        List<MergedView.Entry> entries = view.list(dir);
        ObjectNode body = Json.object();
        body.put("path", view.realPath(dir));
        ArrayNode files = body.putArray("files");
        for (MergedView.Entry e : entries) files.add(entry(e));
        Json.send(ctx, 200, body);
    }

    static ObjectNode entry(MergedView.Entry e) {
        ObjectNode o = Json.object();
        o.put("path", e.name());
        o.put("size", e.size());
        if (e.ownerResolved()) o.put("owner", e.owner());
        else o.put("owner", e.uid());
        if (e.groupResolved()) o.put("group", e.group());
        else o.put("group", e.gid());
        o.put("uid", e.uid());
        o.put("gid", e.gid());
        o.put("mode", e.mode());
        o.put("mtime", e.mtime());
        o.put("nlink", e.nlink());
        o.put("is_dir", e.isDir());
        o.put("is_regular", e.isRegular());
        o.put("is_symlink", e.isSymlink());
        o.put("is_socket", e.type() == MergedView.Type.SOCKET);
        o.put("is_fifo", e.type() == MergedView.Type.FIFO);
        o.put("symlink_to", e.symlinkTarget() == null ? "" : e.symlinkTarget());
        return o;
    }

    private void download(Context ctx, MergedView view, boolean withBody) throws IOException {
        String p = path(ctx);
        MergedView.Entry entry = view.stat(p, true).orElseThrow(() -> ApiException.notFound("file not found: " + p));
        if (entry.isDir()) throw ApiException.unprocessable("is a directory: " + p);
        if (!entry.isRegular()) throw ApiException.unprocessable("not a regular file: " + p);
        ctx.status(200);
        ctx.res().setContentType("application/octet-stream");
        ctx.res().setContentLengthLong(entry.size());
        if (!withBody) return;
        try (InputStream in = view.open(p); OutputStream out = ctx.res().getOutputStream()) {
            in.transferTo(out);
        }
    }

    private void archive(Context ctx, MergedView view, boolean withBody) throws IOException {
        String p = path(ctx);
        if (view.stat(p, false).isEmpty()) throw ApiException.notFound("path not found: " + p);
        ctx.status(200);
        ctx.res().setContentType("application/x-tar");
        if (!withBody) return;
        boolean gzip = EventStream.accepts(ctx, "gzip");
        if (gzip) ctx.res().setHeader("Content-Encoding", "gzip");
        OutputStream raw = ctx.res().getOutputStream();
        try (OutputStream out = gzip ? new GZIPOutputStream(raw, 64 * 1024, true) : raw) {
            view.writeTar(p, out);
        }
    }

    private void grep(Context ctx, MergedView view) throws IOException {
        List<String> patterns = ctx.queryParams("pattern");
        if (patterns.isEmpty() || patterns.stream().allMatch(String::isEmpty)) throw ApiException.badRequest("pattern is required");
        List<String> paths = new ArrayList<>();
        for (String p : ctx.queryParams("path")) paths.add(p.startsWith("/") ? p : "/" + p);
        int maxCount = intParam(ctx, "max_count", 0);
        // A client may lower the server's bound on collected matches, never raise it: larger values are clamped and
        // the answer says truncated, as for any search the bound stopped.
        int maxTotal = Math.min(intParam(ctx, "max_total", GrepQuery.DEFAULT_MAX_TOTAL), MAX_GREP_TOTAL);
        String caseMode = ctx.queryParam("case");
        GrepQuery q = new GrepQuery(patterns, paths, ctx.queryParams("glob"), maxCount, maxTotal,
                GrepQuery.CaseMode.parse(caseMode == null ? "sensitive" : caseMode), GrepQuery.DEFAULT_TIMEOUT);
        GrepResult result = view.grep(q);
        ObjectNode body = Json.object();
        body.put("path", paths.isEmpty() ? "/" : paths.getFirst());
        ArrayNode pats = body.putArray("patterns");
        result.patterns().forEach(pats::add);
        body.put("truncated", result.truncated());
        ArrayNode matches = body.putArray("matches");
        for (GrepResult.Match m : result.matches()) {
            ObjectNode mo = matches.addObject();
            mo.put("path", m.path());
            mo.put("line_number", m.lineNumber());
            mo.put("line_text", m.lineText());
            ArrayNode subs = mo.putArray("submatches");
            m.submatches().forEach(s -> subs.addObject().put("start", s.start()).put("end", s.end()));
        }
        Json.send(ctx, 200, body);
    }

    private void diff(Context ctx) throws IOException {
        Image a = image(ctx, "uuid");
        Image b = image(ctx, "other");
        try (ImageFilesystem.View va = filesystem.open(a); ImageFilesystem.View vb = filesystem.open(b)) {
            DiffResult d = MergedView.diff(va.files(), vb.files());
            ObjectNode body = Json.object();
            body.put("from", a.uuid());
            body.put("to", b.uuid());
            body.set("added", changes(d.added()));
            body.set("modified", changes(d.modified()));
            body.set("deleted", changes(d.deleted()));
            Json.send(ctx, 200, body);
        } catch (InspectException e) {
            throw new ApiException(e.kind().httpStatus(), e.getMessage());
        }
    }

    private static ArrayNode changes(List<DiffResult.Change> changes) {
        ArrayNode out = Json.MAPPER.createArrayNode();
        for (DiffResult.Change c : changes) {
            ObjectNode o = out.addObject();
            o.put("path", c.path());
            o.put("type", c.type().name().toLowerCase(java.util.Locale.ROOT));
            o.put("size", c.size());
            if (c.before() != null && c.after() != null) o.put("size_before", c.before().size());
        }
        return out;
    }

    /** The most grep matches one request collects (each holds a line of up to the line cap in memory). */
    static final int MAX_GREP_TOTAL = 10_000;

    private static int intParam(Context ctx, String name, int fallback) {
        String v = ctx.queryParam(name);
        if (v == null || v.isEmpty()) return fallback;
        try {
            int n = Integer.parseInt(v.trim());
            if (n < 0) throw new NumberFormatException();
            return n;
        } catch (NumberFormatException e) {
            throw ApiException.badRequest(name + " must be a non-negative integer");
        }
    }
}
