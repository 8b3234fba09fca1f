package dev.contree.api;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.images.Image;
import dev.contree.instances.InstanceService;
import dev.contree.instances.InstanceSpec;
import dev.contree.operations.Operation;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;

/** {@code POST /v1/instances}: validate, resolve, queue; answers 202 with the operation id at once. */
final class InstancesRoutes {
    private final InstanceService instances;
    private final long maxJsonBytes;
    private final int maxTimeout;

    InstancesRoutes(InstanceService instances, long maxJsonBytes, int maxTimeout) {
        this.instances = instances;
        this.maxJsonBytes = maxJsonBytes;
        this.maxTimeout = maxTimeout;
    }

    void register(RoutesConfig r) {
        r.post("/v1/instances", this::spawn);
    }

    private void spawn(Context ctx) {
        String account = Auth.account(ctx);
        InstanceSpec spec = InstanceRequests.parse(Json.readObject(ctx, maxJsonBytes), maxTimeout);
        Image image = instances.resolveImage(account, spec.imageRef(), Params::isUuid)
                .orElseThrow(() -> ApiException.notFound("image not found: " + spec.imageRef()));
        Operation op;
        try {
            op = instances.spawn(account, spec, image);
        } catch (dev.contree.operations.RequestRejected e) {
            throw ApiException.rejected(ctx, e);
        }
        accepted(ctx, op);
    }

    /** 202 + Location + {"uuid", "status": "PENDING", …request echo}, as spawn and import answer. */
    static void accepted(Context ctx, Operation op) {
        String operationUuid = op.uuid();
        ObjectNode echo = OperationMetadata.request(op.request());
        ObjectNode body = Json.object();
        body.put("uuid", operationUuid);
        body.put("status", "PENDING");
        echo.fields().forEachRemaining(e -> { if (!body.has(e.getKey())) body.set(e.getKey(), e.getValue()); });
        ctx.header("Location", "/v1/operations/" + operationUuid);
        Json.send(ctx, 202, body);
    }
}
