package dev.contree.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.contree.auth.Principal;
import dev.contree.instances.InstanceSpec;
import dev.contree.operations.OperationService;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;

import java.util.LinkedHashMap;
import java.util.Map;

/** {@code GET /v1/whoami}: the token, what it may do, the server's limits and the account's operation counts. */
final class WhoamiRoute {
    private static final String[] PERMISSIONS = {"list", "spawn", "spawn_disposable", "import", "cancel", "set_image_tag"};
    private final ApiConfig.Limits limits;
    private final java.util.function.IntSupplier concurrencyNow;
    private final OperationService operations;

    /** @param concurrencyNow the executions the server could run at once right now ({@code instance_max_concurrency}) */
    WhoamiRoute(ApiConfig.Limits limits, java.util.function.IntSupplier concurrencyNow, OperationService operations) {
        this.limits = limits;
        this.concurrencyNow = concurrencyNow;
        this.operations = operations;
    }

    void register(RoutesConfig r) {
        r.get("/v1/whoami", this::whoami);
    }

    /** The body: the token, its permissions (all of them), the server's limits, the account's operations by status. */
    record Whoami(String tokenUuid, Long tokenExpiration, Map<String, Boolean> permissions, Limits limits,
                  Map<String, Long> operationsStat) {}

    /** {@code account_max_bytes} only when the server caps an account's bytes. */
    record Limits(int instanceMaxTimeout, int instanceMaxConcurrency, int imagesImportMaxTimeout, long maxUploadBytes,
                  long instanceMemoryBytes, long instancePids, long instanceCpuMillis, long instanceMaxLayerBytes,
                  int accountMaxConcurrency, long imagesImportMaxBytes,
                  @JsonInclude(JsonInclude.Include.NON_NULL) Long accountMaxBytes) {}

    private void whoami(Context ctx) {
        Principal p = Auth.principal(ctx);
        Json.send(ctx, 200, Json.tree(body(p, limits.withInstanceConcurrency(concurrencyNow.getAsInt()),
                operations.countByStatus(p.accountId()))));
    }

    static Whoami body(Principal p, ApiConfig.Limits limits, Map<String, Long> operationCounts) {
        Map<String, Boolean> permissions = new LinkedHashMap<>();
        for (String perm : PERMISSIONS) permissions.put(perm, true);
        Limits shown = new Limits(limits.instanceMaxTimeout(), limits.instanceConcurrency(), limits.importMaxTimeout(),
                limits.maxUploadBytes(), limits.instanceMemoryBytes(), limits.instancePids(),
                Math.round(limits.instanceCpus() * 1000), InstanceSpec.MAX_LAYER_BYTES, limits.accountConcurrency(),
                limits.maxImportBytes(), limits.maxAccountBytes() == Long.MAX_VALUE ? null : limits.maxAccountBytes());
        Long expiration = p.tokenExpiration() == null ? null : p.tokenExpiration().getEpochSecond();
        return new Whoami(p.tokenUuid(), expiration, permissions, shown, operationCounts);
    }
}
