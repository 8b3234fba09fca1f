package dev.contree.api;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.operations.Operation;
import dev.contree.operations.OperationKind;
import dev.contree.operations.OperationService;
import dev.contree.operations.OperationStatus;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;

/** {@code /v1/operations}: list (a bare array), get, cancel. */
final class OperationsRoutes {
    private final OperationService operations;
    private final EventStream events;

    OperationsRoutes(OperationService operations) {
        this.operations = operations;
        this.events = new EventStream(operations);
    }

    void register(RoutesConfig r) {
        r.get("/v1/operations", this::list);
        r.get("/v1/operations/{uuid}", this::get);
        r.delete("/v1/operations/{uuid}", this::cancel);
        r.get("/v1/operations/{uuid}/events", ctx -> events.serve(ctx, operation(ctx)));
    }

    private void list(Context ctx) {
        String status = ctx.queryParam("status");
        String kind = ctx.queryParam("kind");
        OperationStatus s = status == null || status.isEmpty() ? null : OperationStatus.parse(status.toUpperCase(java.util.Locale.ROOT));
        if (status != null && !status.isEmpty() && s == null) {
            throw ApiException.badRequest("unknown status '" + status + "': one of PENDING, ASSIGNED, EXECUTING, SUCCESS, FAILED, CANCELLED");
        }
        OperationKind k = kind == null || kind.isEmpty() ? null : OperationKind.parse(kind.toLowerCase(java.util.Locale.ROOT));
        if (kind != null && !kind.isEmpty() && k == null) throw ApiException.badRequest("unknown kind '" + kind + "': instance or image_import");
        ArrayNode list = Json.MAPPER.createArrayNode();
        operations.list(Auth.account(ctx), new OperationService.Query(s, k, Params.timeRange(ctx)), Params.page(ctx))
                .forEach(op -> list.add(Wire.operationSummary(op)));
        Json.send(ctx, 200, list);
    }

    private void get(Context ctx) {
        Json.send(ctx, 200, Wire.operation(operation(ctx)));
    }

    Operation operation(Context ctx) {
        String uuid = Params.uuid(ctx.pathParam("uuid"), "operation");
        return operations.get(Auth.account(ctx), uuid).orElseThrow(() -> ApiException.notFound("operation not found"));
    }

    private void cancel(Context ctx) {
        String uuid = Params.uuid(ctx.pathParam("uuid"), "operation");
        switch (operations.cancel(Auth.account(ctx), uuid)) {
            case NOT_FOUND -> throw ApiException.notFound("operation not found");
            case ALREADY_FINISHED -> throw ApiException.conflict("operation is not cancellable: it already finished");
            case CANCELLED -> {
                ObjectNode body = Json.object();
                body.put("uuid", uuid);
                body.put("status", OperationStatus.CANCELLED.name());
                Json.send(ctx, 202, body);
            }
        }
    }
}
