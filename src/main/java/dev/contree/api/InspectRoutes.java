package dev.contree.api;

import dev.contree.images.Image;
import dev.contree.images.ImageService;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;

/** {@code /v1/inspect}: find an image by tag, read an image record. */
final class InspectRoutes {
    private final ImageService images;

    InspectRoutes(ImageService images) {
        this.images = images;
    }

    void register(RoutesConfig r) {
        // Trailing slashes are ignored by the router, so /v1/inspect and /v1/inspect/ both land here.
        r.get("/v1/inspect", this::byTag);
        r.get("/v1/inspect/{uuid}", ctx -> Json.send(ctx, 200, Wire.image(image(ctx))));
    }

    private void byTag(Context ctx) {
        String tag = ctx.queryParam("tag");
        if (tag == null || tag.isEmpty()) throw ApiException.badRequest("tag is required");
        Image image = images.byTag(Auth.account(ctx), tag).orElseThrow(() -> ApiException.notFound("no image tagged '" + tag + "'"));
        // Relative to /v1/inspect/ as the hosted API does; from the slash-less form the base lacks "inspect/".
        String location = (ctx.path().endsWith("/") ? "" : "inspect/") + image.uuid() + "/";
        ctx.status(302).header("Location", location);
    }

    Image image(Context ctx) {
        String uuid = Params.uuid(ctx.pathParam("uuid"), "image");
        return images.get(Auth.account(ctx), uuid).orElseThrow(() -> ApiException.notFound("image not found"));
    }
}
