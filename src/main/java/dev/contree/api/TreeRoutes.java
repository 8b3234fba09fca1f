package dev.contree.api;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.images.Image;
import dev.contree.images.ImageService;
import dev.contree.operations.OperationGlance;
import dev.contree.operations.OperationService;
import dev.contree.operations.OperationStatus;
import dev.contree.store.Page;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The tree explorer's reads, beyond the hosted API: under {@code /v1/x-contree/}, a prefix hosted ConTree's routes
 * cannot take. Each answer is one bounded page of tree nodes: an image with its child count and a digest of the
 * operation that made it, so the page draws a node from one request.
 */
final class TreeRoutes {
    static final String PREFIX = "/v1/x-contree/tree";
    /** Children and roots per page: the page asks for 100, a script may ask for at most this. */
    static final int MAX_PAGE = 500;
    static final int MAX_SEARCH = 50;
    /** The deepest page: a store skips the rows before it one by one, so a huge offset would cost a scan per request. */
    static final int MAX_OFFSET = 100_000;
    /** Unfinished operations in one answer (the queue holds at most 10,000 server-wide). */
    static final int MAX_ACTIVE = 1000;
    /** Ancestors walked for a node's path; deeper chains are cut (the path then starts below the root). */
    static final int MAX_PATH = 1_000;
    private static final Pattern SEARCHABLE = Pattern.compile("[A-Za-z0-9._/:@+-]{1,255}");

    private final ImageService images;
    private final OperationService operations;

    TreeRoutes(ImageService images, OperationService operations) {
        this.images = images;
        this.operations = operations;
    }

    void register(RoutesConfig r) {
        r.get(PREFIX + "/roots", this::roots);
        r.get(PREFIX + "/search", this::search);
        r.get(PREFIX + "/active", this::active);
        r.get(PREFIX + "/operation/{uuid}", this::operationDigest);
        r.get(PREFIX + "/{uuid}", this::node);
        r.get(PREFIX + "/{uuid}/children", this::children);
    }

    private void roots(Context ctx) {
        String account = Auth.account(ctx);
        Page page = page(ctx);
        List<Image> found = images.roots(account, new Page(page.limit() + 1, page.offset()));
        Json.send(ctx, 200, pageOf(account, found, page));
    }

    private void children(Context ctx) {
        String account = Auth.account(ctx);
        Image parent = image(ctx, account);
        Page page = page(ctx);
        List<Image> found = images.children(account, parent.uuid(), new Page(page.limit() + 1, page.offset()));
        ObjectNode body = pageOf(account, found, page);
        body.put("parent", parent.uuid());
        Json.send(ctx, 200, body);
    }

    /** One node and the uuids from its root down to its parent, so a search hit can be opened in the tree. */
    private void node(Context ctx) {
        String account = Auth.account(ctx);
        Image image = image(ctx, account);
        ObjectNode body = nodes(account, List.of(image)).get(0).deepCopy();
        List<String> path = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        Image current = image;
        while (current.parentUuid() != null && seen.add(current.parentUuid()) && path.size() < MAX_PATH) {
            Image parent = images.get(account, current.parentUuid()).orElse(null);
            if (parent == null) break;
            path.add(parent.uuid());
            current = parent;
        }
        ArrayNode p = body.putArray("path");
        for (int i = path.size() - 1; i >= 0; i--) p.add(path.get(i));
        Json.send(ctx, 200, body);
    }

    private void search(Context ctx) {
        String account = Auth.account(ctx);
        String q = ctx.queryParam("q");
        if (q == null || q.isBlank()) throw ApiException.badRequest("q is required: a tag or uuid prefix");
        q = q.strip();
        if (!SEARCHABLE.matcher(q).matches()) {
            throw ApiException.badRequest("q must be a tag or uuid prefix: letters, digits and ._/:@+- (at most 255)");
        }
        int limit = intParam(ctx, "limit", 20, MAX_SEARCH);
        ObjectNode body = Json.object();
        body.set("nodes", nodes(account, images.search(account, q, limit)));
        Json.send(ctx, 200, body);
    }

    /**
     * The account's queued and running operations: the pending nodes, each under its input image. One read of at most
     * {@code limit} of the account's unfinished operations (by the status index), only the fields a node shows, so a
     * poll costs at most the bounded queue (--max-queued) plus the running ones, however many finished operations the
     * account has.
     */
    private void active(Context ctx) {
        String account = Auth.account(ctx);
        int limit = intParam(ctx, "limit", MAX_ACTIVE, MAX_ACTIVE);
        ArrayNode list = Json.MAPPER.createArrayNode();
        for (OperationGlance op : operations.activeGlances(account, limit)) list.add(operation(op));
        ObjectNode body = Json.object();
        body.set("operations", list);
        Json.send(ctx, 200, body);
    }

    /** What a node shows of one operation (a pending node that ended asks this). */
    private void operationDigest(Context ctx) {
        String uuid = Params.uuid(ctx.pathParam("uuid"), "operation");
        List<OperationGlance> found = operations.glances(Auth.account(ctx), List.of(uuid));
        if (found.isEmpty()) throw ApiException.notFound("operation not found");
        Json.send(ctx, 200, operation(found.get(0)));
    }

    private Image image(Context ctx, String account) {
        return images.get(account, Params.uuid(ctx.pathParam("uuid"), "image"))
                .orElseThrow(() -> ApiException.notFound("image not found"));
    }

    private static Page page(Context ctx) {
        int limit = intParam(ctx, "limit", 100, MAX_PAGE);
        int offset = intParam(ctx, "offset", 0, MAX_OFFSET);
        return new Page(limit, offset);
    }

    private static int intParam(Context ctx, String name, int fallback, int max) {
        String v = ctx.queryParam(name);
        if (v == null || v.isEmpty()) return fallback;
        int n;
        try {
            n = Integer.parseInt(v.strip());
        } catch (NumberFormatException e) {
            throw ApiException.badRequest(name + " must be an integer, got '" + v + "'");
        }
        int min = name.equals("offset") ? 0 : 1;
        if (n < min || n > max) throw ApiException.badRequest(name + " must be between " + min + " and " + max);
        return n;
    }

    /** A page fetched with one row more than asked: that row only says whether there is a next page. */
    private ObjectNode pageOf(String account, List<Image> fetched, Page page) {
        boolean more = fetched.size() > page.limit();
        List<Image> shown = more ? fetched.subList(0, page.limit()) : fetched;
        ObjectNode body = Json.object();
        body.set("nodes", nodes(account, shown));
        if (more) body.put("next_offset", page.offset() + page.limit());
        else body.putNull("next_offset");
        return body;
    }

    private ArrayNode nodes(String account, List<Image> list) {
        Map<String, Integer> counts = images.childCounts(account, list.stream().map(Image::uuid).toList());
        // One read for the page's operations, only the fields a node shows: not their requests and captured output.
        Map<String, OperationGlance> ops = new HashMap<>();
        for (OperationGlance g : operations.glances(account, list.stream().map(Image::operationUuid).filter(Objects::nonNull).toList())) {
            ops.put(g.uuid(), g);
        }
        ArrayNode out = Json.MAPPER.createArrayNode();
        for (Image image : list) {
            ObjectNode node = Json.object();
            node.set("image", Wire.image(image));
            node.put("children", counts.getOrDefault(image.uuid(), 0));
            OperationGlance op = image.operationUuid() == null ? null : ops.get(image.operationUuid());
            node.set("operation", op == null ? null : operation(op));
            out.add(node);
        }
        return out;
    }

    /**
     * What a node shows of an operation: the command (an import's source) and the outcome at a glance: {@code import},
     * {@code ok} (exit 0), {@code nonzero}, {@code timed_out}, {@code failed}, {@code cancelled} or {@code running}.
     */
    static ObjectNode operation(OperationGlance op) {
        ObjectNode o = Json.object();
        o.put("uuid", op.uuid());
        o.put("kind", op.kind().wire);
        o.put("status", op.status().name());
        o.put("image_uuid", op.imageUuid());
        o.put("result_image_uuid", op.resultImageUuid());
        o.put("created_at", Wire.time(op.createdAt()));
        switch (op.request()) {
            case OperationGlance.Execution e -> {
                o.put("command", e.command());
                ArrayNode args = o.putArray("args");
                e.args().forEach(args::add);
                o.put("shell", e.shell());
                o.put("disposable", e.disposable());
            }
            case OperationGlance.Import i -> o.put("command", "import " + i.url());
            case null -> o.putNull("command");
        }
        OperationGlance.Exit exit = op.exit();
        if (exit != null) {
            o.put("exit_code", exit.exitCode());
            o.put("signal", exit.signal());
            o.put("timed_out", exit.timedOut());
        }
        String outcome;
        if (!op.status().terminal()) outcome = "running";
        else if (op.status() == OperationStatus.FAILED) outcome = "failed";
        else if (op.status() == OperationStatus.CANCELLED) outcome = "cancelled";
        else if (op.request() instanceof OperationGlance.Import) outcome = "import";
        else if (exit != null && exit.timedOut()) outcome = "timed_out";
        else if (exit != null && exit.exitCode() == 0) outcome = "ok";
        else outcome = "nonzero";
        o.put("outcome", outcome);
        if (op.error() != null) o.put("error", HostPaths.scrub(op.error()));
        return o;
    }
}
