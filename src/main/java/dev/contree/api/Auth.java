package dev.contree.api;

import dev.contree.auth.Principal;
import dev.contree.auth.Tokens;
import io.javalin.http.Context;

/** Bearer-token authentication for every {@code /v1} route. The {@code Project} header is accepted and ignored. */
final class Auth {
    private static final String PRINCIPAL = "contree.principal";

    private Auth() {}

    static void authenticate(Context ctx, Tokens tokens) {
        String header = ctx.header("Authorization");
        if (header == null || header.isBlank()) throw new ApiException(401, "missing Authorization: Bearer <token> header");
        String[] parts = header.trim().split("\\s+", 2);
        if (parts.length != 2 || !parts[0].equalsIgnoreCase("Bearer") || parts[1].isBlank()) {
            throw new ApiException(401, "malformed Authorization header: expected 'Bearer <token>'");
        }
        Principal p = tokens.verify(parts[1].trim()).orElseThrow(() -> new ApiException(401, "invalid, expired or revoked token"));
        ctx.attribute(PRINCIPAL, p);
    }

    static Principal principal(Context ctx) {
        Principal p = ctx.attribute(PRINCIPAL);
        if (p == null) throw new ApiException(401, "not authenticated");
        return p;
    }

    static String account(Context ctx) {
        return principal(ctx).accountId();
    }
}
