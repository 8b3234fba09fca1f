package dev.contree.auth;

import java.time.Instant;

/** A stored API token (only its hash is kept). */
public record Token(String uuid, String accountId, String accountName, String name,
                    Instant createdAt, Instant expiresAt, Instant revokedAt) {
    public boolean activeAt(Instant now) {
        return revokedAt == null && (expiresAt == null || expiresAt.isAfter(now));
    }
}
