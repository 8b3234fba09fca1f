package dev.contree.api;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.images.Image;
import dev.contree.images.ImageService;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;

import java.util.HashSet;
import java.util.Set;

/** {@code GET /v1/images/{uuid}/lineage}: ancestors up to the root and direct children (beyond the hosted API). */
final class LineageRoute {
    private static final int MAX_ANCESTORS = 100_000;
    private final ImageService images;

    LineageRoute(ImageService images) {
        this.images = images;
    }

    void register(RoutesConfig r) {
        r.get("/v1/images/{uuid}/lineage", this::lineage);
    }

    private void lineage(Context ctx) {
        String account = Auth.account(ctx);
        Image image = images.get(account, Params.uuid(ctx.pathParam("uuid"), "image"))
                .orElseThrow(() -> ApiException.notFound("image not found"));
        ObjectNode body = Json.object();
        body.set("image", Wire.imageWithConfig(image));
        ArrayNode ancestors = body.putArray("ancestors");
        Set<String> seen = new HashSet<>();
        Image current = image;
        while (current.parentUuid() != null && seen.add(current.parentUuid()) && seen.size() <= MAX_ANCESTORS) {
            Image parent = images.get(account, current.parentUuid()).orElse(null);
            if (parent == null) break;
            ancestors.add(Wire.image(parent));
            current = parent;
        }
        ArrayNode children = body.putArray("children");
        images.children(account, image.uuid()).forEach(c -> children.add(Wire.image(c)));
        Json.send(ctx, 200, body);
    }
}
