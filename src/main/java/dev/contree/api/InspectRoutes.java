package dev.contree.api;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.images.Image;
import dev.contree.images.ImageFilesystem;
import dev.contree.images.ImageService;
import dev.contree.inspect.Budget;
import dev.contree.inspect.DiffResult;
import dev.contree.inspect.GrepQuery;
import dev.contree.inspect.GrepResult;
import dev.contree.inspect.InspectException;
import dev.contree.inspect.InspectLimits;
import dev.contree.inspect.InspectPool;
import dev.contree.inspect.MergedView;
import dev.contree.inspect.Names;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.GZIPOutputStream;

/**
 * {@code /v1/inspect}: find an image by tag, read its record, and read its files without running
 * anything — list, download, archive, grep — plus our diff between any two images.
 *
 * <p>Every read runs in the {@link InspectPool} (platform threads, a per-account and a global limit:
 * 429 past them) under a {@link Budget} from {@link InspectLimits} (413 past it). Streams stop when a
 * write to the client fails. Query parameters are read from the raw query string ({@link Names}):
 * {@code path=%FF} names the byte 0xFF.
 */
final class InspectRoutes {
    private final ImageService images;
    private final ImageFilesystem filesystem;
    private final InspectLimits limits;
    private final InspectPool pool;
    private final ClientWatch clients = ClientWatch.SHARED;

    InspectRoutes(ImageService images, ImageFilesystem filesystem, InspectLimits limits) {
        this.images = images;
        this.filesystem = filesystem;
        this.limits = limits;
        this.pool = new InspectPool(limits.threads(), limits.perAccount());
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
        r.get("/v1/inspect/{uuid}/diff/{other}", ctx -> inPool(ctx, () -> diff(ctx)));
    }

    /** The pool's counters (tests: an abandoned request's work must end). */
    InspectPool pool() { return pool; }

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

    @FunctionalInterface
    private interface Work {
        void run() throws IOException;
    }

    /** The budgets of one request, cancelled together when its connection fails (the client went away). */
    private static final class Budgets {
        private final List<Budget> all = new java.util.concurrent.CopyOnWriteArrayList<>();
        private volatile boolean gone;

        Budget add(Budget b) {
            all.add(b);
            if (gone) b.cancel();
            return b;
        }

        void cancelAll() {
            gone = true;
            all.forEach(Budget::cancel);
        }
    }

    private static final String BUDGETS = "contree.inspect.budgets";
    private static final String WATCH = "contree.inspect.watch";

    /**
     * Called before the answer's first byte is written (a streamed answer writes while the work runs): a client
     * that has its answer may reuse the connection, and the watch must not read its next request.
     */
    private static void stopWatching(Context ctx) {
        ClientWatch.Watched watch = ctx.attribute(WATCH);
        if (watch == null) return;
        ctx.attribute(WATCH, null);
        if (watch.stop() && !ctx.res().isCommitted()) ctx.header("Connection", "close");
    }

    /** Runs {@code work} in the inspect pool and maps domain failures to API errors. */
    private void inPool(Context ctx, Work work) throws Exception {
        Budgets budgets = new Budgets();
        ctx.attribute(BUDGETS, budgets);
        ClientWatch.Watched watch = clients.watch(ctx, budgets::cancelAll);
        ctx.attribute(WATCH, watch);
        try {
            pool.run(Auth.account(ctx), () -> {
                work.run();
                return null;
            });
        } catch (InspectPool.Busy e) {
            ctx.header("Retry-After", "1");
            throw new ApiException(429, e.getMessage());
        } catch (InspectException e) {
            if (e.kind() == InspectException.Kind.CANCELLED) return; // the client is gone: nothing to answer
            throw ApiException.inspect(e);
        } catch (MergedView.LayerUnavailableException e) {
            throw new ApiException(410, "this image's files are not available (a layer is missing)");
        } catch (dev.contree.images.LayerLeases.FetchFailedException e) {
            throw new ApiException(503, "this image's files are not available on this node now: " + e.getMessage());
        } finally {
            stopWatching(ctx);
        }
    }

    private void withView(Context ctx, ViewHandler handler) throws Exception {
        Image image = image(ctx, "uuid");
        inPool(ctx, () -> {
            try (ImageFilesystem.View view = filesystem.open(image)) {
                handler.handle(ctx, view.files());
            }
        });
    }

    /** Every value of {@code name}, bytes preserved (see {@link Names#queryValues}). */
    private static List<String> params(Context ctx, String name) {
        return Names.queryValues(ctx.queryString(), name);
    }

    private static String param(Context ctx, String name) {
        List<String> v = params(ctx, name);
        return v.isEmpty() ? null : v.getFirst();
    }

    private static String imagePath(String p) {
        if (p == null || p.isEmpty()) return "/";
        return p.startsWith("/") ? p : "/" + p;
    }

    /** A name field: its display form, plus {@code FIELD_bytes} (base64 of the exact bytes) when it is not UTF-8. */
    private static void putName(ObjectNode o, String field, String name) {
        o.put(field, Names.display(name));
        if (!Names.exact(name)) o.put(field + "_bytes", Names.base64(name));
    }

    private static String path(Context ctx) {
        return imagePath(param(ctx, "path"));
    }

    private Budget budget(Context ctx, long maxEntries, String entriesWhat, long maxBytes, String bytesWhat, boolean stream) {
        Budget b = new Budget(stream ? limits.streamTimeout() : limits.timeout(), maxEntries, entriesWhat, maxBytes, bytesWhat)
                .dirEntries(limits.dirMaxEntries());
        Budgets all = ctx.attribute(BUDGETS);
        return all == null ? b : all.add(b);
    }

    // ------------------------------------------------------------------ list

    private void list(Context ctx, MergedView view) throws IOException {
        String dir = path(ctx);
        String limitParam = param(ctx, "limit");
        int offset = intParam(ctx, "offset", 0);
        int limit = limitParam == null || limitParam.isEmpty() ? limits.listMaxEntries() : intParam(ctx, "limit", 0);
        if (limit < 1 || limit > limits.listMaxEntries())
            throw ApiException.badRequest("limit must be between 1 and " + limits.listMaxEntries());
        Budget b = budget(ctx, limits.dirMaxEntries(), "entries", 0, "bytes", false);
        MergedView.Page page = view.list(dir, offset, limit, b);
        if (limitParam == null && page.total() > limits.listMaxEntries())
            throw ApiException.tooLarge("directory " + MergedView.display(page.path()) + " has " + page.total() + " entries, more than the "
                    + limits.listMaxEntries() + " one answer holds; page through it with limit (1.." + limits.listMaxEntries()
                    + ") and offset");
        if (params(ctx, "text").size() > 0) {
            ctx.status(200).contentType("text/plain; charset=utf-8")
               .result(MergedView.textListing(page.entries()).getBytes(StandardCharsets.UTF_8));
            return;
        }
        ObjectNode body = Json.object();
        putName(body, "path", page.path());
        ArrayNode files = body.putArray("files");
        for (MergedView.Entry e : page.entries()) files.add(entry(e));
        if (limitParam != null) {
            int next = offset + page.entries().size();
            body.put("total", page.total());
            if (next < page.total()) body.put("next_offset", next);
            else body.putNull("next_offset");
        }
        Json.send(ctx, 200, body);
    }

    static ObjectNode entry(MergedView.Entry e) {
        ObjectNode o = Json.object();
        putName(o, "path", e.name());
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
        String target = e.symlinkTarget() == null ? "" : e.symlinkTarget();
        putName(o, "symlink_to", target);
        return o;
    }

    // ------------------------------------------------------------------ download, archive

    private void download(Context ctx, MergedView view, boolean withBody) throws IOException {
        String p = path(ctx);
        MergedView.Entry entry = view.stat(p, true).orElseThrow(() -> ApiException.notFound("file not found: " + MergedView.display(p)));
        if (entry.isDir()) throw ApiException.unprocessable("is a directory: " + MergedView.display(p));
        if (!entry.isRegular()) throw ApiException.unprocessable("not a regular file: " + MergedView.display(p));
        if (entry.size() > limits.downloadMaxBytes())
            throw ApiException.tooLarge("file is " + entry.size() + " bytes, more than the " + limits.downloadMaxBytes()
                    + " bytes a download may serve");
        ctx.status(200);
        ctx.res().setContentType("application/octet-stream");
        ctx.res().setContentLengthLong(entry.size());
        if (!withBody) return;
        Budget b = budget(ctx, 1, "files", limits.downloadMaxBytes(), "bytes", true);
        stopWatching(ctx);
        try (InputStream in = view.open(p); OutputStream out = ctx.res().getOutputStream()) {
            byte[] buf = new byte[64 * 1024];
            int r;
            while ((r = in.read(buf)) > 0) {
                b.countBytes(r);
                out.write(buf, 0, r); // fails once the client is gone: the copy stops
            }
        }
    }

    private void archive(Context ctx, MergedView view, boolean withBody) throws IOException {
        String p = path(ctx);
        if (view.stat(p, false).isEmpty()) throw ApiException.notFound("path not found: " + MergedView.display(p));
        if (!withBody) {
            ctx.status(200);
            ctx.res().setContentType("application/x-tar");
            return;
        }
        // Measure first (metadata only): past a limit the answer is a 413, not a cut stream.
        view.sizeTar(p, budget(ctx, limits.walkMaxEntries(), "archive entries", limits.archiveMaxBytes(), "bytes of file data in an archive", false));
        ctx.status(200);
        ctx.res().setContentType("application/x-tar");
        boolean gzip = EventStream.accepts(ctx, "gzip");
        if (gzip) ctx.res().setHeader("Content-Encoding", "gzip");
        Budget b = budget(ctx, limits.walkMaxEntries(), "archive entries", limits.archiveMaxBytes(), "bytes of file data in an archive", true);
        stopWatching(ctx);
        OutputStream raw = ctx.res().getOutputStream();
        try (OutputStream out = gzip ? new GZIPOutputStream(raw, 64 * 1024, true) : raw) {
            view.writeTar(p, out, b);
        } catch (InspectException e) {
            // Headers are gone: a limit hit mid-stream (the tree changed?) can only cut the stream short.
            throw new IOException("archive stopped: " + e.getMessage());
        }
    }

    // ------------------------------------------------------------------ grep

    private void grep(Context ctx, MergedView view) throws IOException {
        List<String> patterns = params(ctx, "pattern");
        if (patterns.isEmpty() || patterns.stream().allMatch(String::isEmpty)) throw ApiException.badRequest("pattern is required");
        for (String pat : patterns) if (!Names.exact(pat)) throw ApiException.badRequest("pattern must be UTF-8 text");
        List<String> paths = new ArrayList<>();
        for (String p : params(ctx, "path")) paths.add(imagePath(p));
        int maxCount = intParam(ctx, "max_count", 0);
        // A client may lower the server's bound on collected matches, never raise it: larger values are clamped and
        // the answer says truncated, as for any search the bound stopped.
        int maxTotal = Math.min(intParam(ctx, "max_total", GrepQuery.DEFAULT_MAX_TOTAL), GrepQuery.MAX_MAX_TOTAL);
        String caseMode = param(ctx, "case");
        GrepQuery q = new GrepQuery(patterns, paths, params(ctx, "glob"), maxCount, maxTotal,
                GrepQuery.CaseMode.parse(caseMode == null ? "sensitive" : caseMode),
                limits.timeout().compareTo(GrepQuery.DEFAULT_TIMEOUT) < 0 ? limits.timeout() : GrepQuery.DEFAULT_TIMEOUT);
        GrepResult result = view.grep(q, budget(ctx, limits.walkMaxEntries(), "entries", limits.grepMaxBytes(), "bytes", false));
        ObjectNode body = Json.object();
        body.put("path", Names.display(paths.isEmpty() ? "/" : paths.getFirst()));
        ArrayNode pats = body.putArray("patterns");
        result.patterns().forEach(pats::add);
        body.put("truncated", result.truncated());
        ArrayNode matches = body.putArray("matches");
        for (GrepResult.Match m : result.matches()) {
            ObjectNode mo = matches.addObject();
            putName(mo, "path", m.path());
            mo.put("line_number", m.lineNumber());
            mo.put("line_text", m.lineText());
            ArrayNode subs = mo.putArray("submatches");
            m.submatches().forEach(s -> subs.addObject().put("start", s.start()).put("end", s.end()));
        }
        Json.send(ctx, 200, body);
    }

    // ------------------------------------------------------------------ diff

    private void diff(Context ctx) throws IOException {
        Image a = image(ctx, "uuid");
        Image b = image(ctx, "other");
        try (ImageFilesystem.View va = filesystem.open(a); ImageFilesystem.View vb = filesystem.open(b)) {
            DiffResult d = MergedView.diff(va.files(), vb.files(), budget(ctx, limits.walkMaxEntries(), "entries",
                    limits.diffMaxBytes(), "bytes of file content compared", false), limits.diffMaxChanges());
            ObjectNode body = Json.object();
            body.put("from", a.uuid());
            body.put("to", b.uuid());
            body.set("added", changes(d.added()));
            body.set("modified", changes(d.modified()));
            body.set("deleted", changes(d.deleted()));
            Json.send(ctx, 200, body);
        }
    }

    private static ArrayNode changes(List<DiffResult.Change> changes) {
        ArrayNode out = Json.MAPPER.createArrayNode();
        for (DiffResult.Change c : changes) {
            ObjectNode o = out.addObject();
            putName(o, "path", c.path());
            o.put("type", c.type().name().toLowerCase(java.util.Locale.ROOT));
            o.put("size", c.size());
            if (c.before() != null && c.after() != null) o.put("size_before", c.before().size());
        }
        return out;
    }

    private static int intParam(Context ctx, String name, int fallback) {
        String v = param(ctx, name);
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
