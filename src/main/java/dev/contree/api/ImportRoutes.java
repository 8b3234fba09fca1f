package dev.contree.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.images.TagRules;
import dev.contree.imports.ImportRequest;
import dev.contree.imports.ImportService;
import dev.contree.operations.Operation;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;

/** {@code POST /v1/images/import}: both the clients' shape and the older docs shape. */
final class ImportRoutes {
    private final ImportService imports;
    private final long maxJsonBytes;
    private final int maxTimeout;

    ImportRoutes(ImportService imports, long maxJsonBytes, int maxTimeout) {
        this.imports = imports;
        this.maxJsonBytes = maxJsonBytes;
        this.maxTimeout = maxTimeout;
    }

    void register(RoutesConfig r) {
        r.post("/v1/images/import", this::start);
    }

    private void start(Context ctx) {
        ImportRequest request = parse(Json.readObject(ctx, maxJsonBytes), maxTimeout);
        Operation op;
        try {
            op = imports.start(Auth.account(ctx), request);
        } catch (dev.contree.operations.RequestRejected e) {
            throw ApiException.rejected(ctx, e);
        }
        InstancesRoutes.accepted(ctx, op);
    }

    static ImportRequest parse(ObjectNode body, int maxTimeout) {
        JsonNode registry = body.get("registry");
        String url;
        ObjectNode credentials;
        if (registry != null && registry.isTextual()) {
            url = registry.textValue();
            credentials = Fields.object(body, "credentials");
        } else if (registry != null && registry.isObject()) {
            url = Fields.requiredString((ObjectNode) registry, "url");
            credentials = Fields.object((ObjectNode) registry, "credentials");
        } else {
            throw ApiException.badRequest("'registry' is required: {\"url\": \"docker://…\"} or an image reference string");
        }
        url = url.trim();
        if (url.isEmpty() || url.length() > 2048 || url.chars().anyMatch(c -> c < 0x21 || c == 0x7f)) {
            throw ApiException.badRequest("'registry.url' must be a non-empty image reference without spaces");
        }
        String user = credentials == null ? "" : Fields.string(credentials, "username", "");
        String password = credentials == null ? "" : Fields.string(credentials, "password", "");
        String tag = Fields.string(body, "tag", null);
        if (tag != null && tag.isEmpty()) tag = null;
        if (tag != null && TagRules.problem(tag) != null) throw ApiException.badRequest(TagRules.problem(tag));
        int timeout = (int) Fields.integer(body, "timeout", Math.min(ImportRequest.DEFAULT_TIMEOUT, maxTimeout), 1, maxTimeout);
        return new ImportRequest(url, user, password, tag, timeout);
    }
}
