package dev.contree.api;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.auth.Principal;
import dev.contree.operations.OperationService;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;

/** {@code GET /v1/whoami}: the token, what it may do, the server's limits and the account's operation counts. */
final class WhoamiRoute {
    private static final String[] PERMISSIONS = {"list", "spawn", "spawn_disposable", "import", "cancel", "set_image_tag"};
    private final ApiConfig.Limits limits;
    private final OperationService operations;

    WhoamiRoute(ApiConfig.Limits limits, OperationService operations) {
        this.limits = limits;
        this.operations = operations;
    }

    void register(RoutesConfig r) {
        r.get("/v1/whoami", this::whoami);
    }

    private void whoami(Context ctx) {
        Principal p = Auth.principal(ctx);
        ObjectNode body = Json.object();
        body.put("token_uuid", p.tokenUuid());
        if (p.tokenExpiration() == null) body.putNull("token_expiration");
        else body.put("token_expiration", p.tokenExpiration().getEpochSecond());
        ObjectNode perms = body.putObject("permissions");
        for (String perm : PERMISSIONS) perms.put(perm, true);
        ObjectNode shown = body.putObject("limits");
        shown.put("instance_max_timeout", limits.instanceMaxTimeout());
        shown.put("instance_max_concurrency", limits.instanceConcurrency());
        shown.put("images_import_max_timeout", limits.importMaxTimeout());
        shown.put("max_upload_bytes", limits.maxUploadBytes());
        shown.put("instance_memory_bytes", limits.instanceMemoryBytes());
        shown.put("instance_pids", limits.instancePids());
        shown.put("instance_cpu_millis", Math.round(limits.instanceCpus() * 1000));
        shown.put("instance_max_layer_bytes", dev.contree.instances.InstanceSpec.MAX_LAYER_BYTES);
        shown.put("account_max_concurrency", limits.accountConcurrency());
        shown.put("images_import_max_bytes", limits.maxImportBytes());
        if (limits.maxAccountBytes() != Long.MAX_VALUE) shown.put("account_max_bytes", limits.maxAccountBytes());
        ObjectNode stats = body.putObject("operations_stat");
        operations.countByStatus(p.accountId()).forEach(stats::put);
        Json.send(ctx, 200, body);
    }
}
