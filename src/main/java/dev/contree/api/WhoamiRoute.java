package dev.contree.api;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.auth.Principal;
import dev.contree.operations.OperationService;
import dev.contree.server.ServerConfig;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;

/** {@code GET /v1/whoami}: the token, what it may do, the server's limits and the account's operation counts. */
final class WhoamiRoute {
    private static final String[] PERMISSIONS = {"list", "spawn", "spawn_disposable", "import", "cancel", "set_image_tag"};
    private final ServerConfig config;
    private final OperationService operations;

    WhoamiRoute(ServerConfig config, OperationService operations) {
        this.config = config;
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
        ObjectNode limits = body.putObject("limits");
        limits.put("instance_max_timeout", config.instanceMaxTimeout());
        limits.put("instance_max_concurrency", config.instanceConcurrency());
        limits.put("images_import_max_timeout", config.importMaxTimeout());
        limits.put("max_upload_bytes", config.maxUploadBytes());
        limits.put("instance_memory_bytes", config.sandbox().memoryBytes());
        limits.put("instance_pids", config.sandbox().pids());
        limits.put("instance_cpu_millis", Math.round(config.sandbox().cpus() * 1000));
        limits.put("instance_max_layer_bytes", dev.contree.instances.InstanceSpec.MAX_LAYER_BYTES);
        limits.put("account_max_concurrency", config.accountConcurrency());
        limits.put("images_import_max_bytes", config.maxImportBytes());
        if (config.maxAccountBytes() != Long.MAX_VALUE) limits.put("account_max_bytes", config.maxAccountBytes());
        ObjectNode stats = body.putObject("operations_stat");
        operations.countByStatus(p.accountId()).forEach(stats::put);
        Json.send(ctx, 200, body);
    }
}
