package dev.contree.api;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.images.Image;
import dev.contree.images.ImageService;
import dev.contree.images.TagRules;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;

/** {@code /v1/images}: listing and tags. */
final class ImagesRoutes {
    private final ImageService images;
    private final long maxJsonBytes;

    ImagesRoutes(ImageService images, long maxJsonBytes) {
        this.images = images;
        this.maxJsonBytes = maxJsonBytes;
    }

    void register(RoutesConfig r) {
        r.get("/v1/images", this::list);
        r.patch("/v1/images/{uuid}/tag", this::setTag);
        r.delete("/v1/images/{uuid}/tag", this::removeTag);
    }

    private void list(Context ctx) {
        String uuid = ctx.queryParam("uuid");
        var query = new ImageService.Query(Params.bool(ctx, "tagged"), ctx.queryParam("tag"),
                uuid == null || uuid.isEmpty() ? null : Params.uuid(uuid, "image"), Params.timeRange(ctx));
        ArrayNode list = Json.MAPPER.createArrayNode();
        images.list(Auth.account(ctx), query, Params.page(ctx)).forEach(i -> list.add(Wire.image(i)));
        ObjectNode body = Json.object();
        body.set("images", list);
        Json.send(ctx, 200, body);
    }

    private void setTag(Context ctx) {
        String uuid = Params.uuid(ctx.pathParam("uuid"), "image");
        String tag = Fields.requiredString(Json.readObject(ctx, maxJsonBytes), "tag");
        String problem = TagRules.problem(tag);
        if (problem != null) throw ApiException.badRequest(problem);
        Image image = images.setTag(Auth.account(ctx), uuid, tag).orElseThrow(() -> ApiException.notFound("image not found"));
        Json.send(ctx, 200, Wire.image(image));
    }

    private void removeTag(Context ctx) {
        String uuid = Params.uuid(ctx.pathParam("uuid"), "image");
        String tag = ctx.queryParam("tag");
        switch (images.removeTag(Auth.account(ctx), uuid, tag == null || tag.isEmpty() ? null : tag)) {
            case ImageService.Untag.Done d -> Json.send(ctx, 200, Wire.image(d.image()));
            case ImageService.Untag.NoSuchImage n -> throw ApiException.notFound("image not found");
            case ImageService.Untag.TagNotOnImage t -> throw ApiException.conflict("image does not carry tag '" + t.tag() + "'");
        }
    }
}
