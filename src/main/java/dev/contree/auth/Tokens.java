package dev.contree.auth;

import dev.contree.store.TokenRecords;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

/**
 * API tokens: issue, verify, list, revoke. Tokens are random secrets shown once; the database keeps
 * only their SHA-256, so a leaked database does not leak credentials.
 */
public final class Tokens {
    private static final SecureRandom RANDOM = new SecureRandom();
    /** Verified tokens are remembered this long, so polling clients do not hit the database on every request. */
    private static final long CACHE_NANOS = 2_000_000_000L;
    private final TokenRecords records;
    private final java.util.concurrent.ConcurrentHashMap<String, Cached> cache = new java.util.concurrent.ConcurrentHashMap<>();

    private record Cached(Token token, long until) {}

    public Tokens(TokenRecords records) {
        this.records = records;
    }

    /** A freshly issued token: the secret (shown once) and its record. */
    public record Issued(String secret, Token token) {}

    /** Issues a token for {@code accountName}, creating the account if needed. */
    public Issued issue(String accountName, String tokenName, Instant expiresAt) {
        byte[] raw = new byte[32];
        RANDOM.nextBytes(raw);
        return register("ct_" + Base64.getUrlEncoder().withoutPadding().encodeToString(raw), accountName, tokenName, expiresAt);
    }

    /** Registers a caller-chosen secret (e.g. from {@code --token}); idempotent for the same secret. */
    public Issued register(String secret, String accountName, String tokenName, Instant expiresAt) {
        if (secret.isBlank() || secret.chars().anyMatch(ch -> ch <= ' ' || ch > '~')) {
            throw new IllegalArgumentException("a token must be non-empty printable ASCII without spaces");
        }
        Token token = records.register(hash(secret), accountName, tokenName, expiresAt);
        return new Issued(secret, token);
    }

    /** The principal for a presented secret, if it is a known, unrevoked, unexpired token. */
    public Optional<Principal> verify(String secret) {
        String hash = hash(secret);
        Cached cached = cache.get(hash);
        Token t;
        if (cached != null && cached.until() - System.nanoTime() > 0) {
            t = cached.token();
        } else {
            t = records.byHash(hash).orElse(null);
            if (t != null) {
                if (cache.size() > 10_000) cache.clear();
                cache.put(hash, new Cached(t, System.nanoTime() + CACHE_NANOS));
            }
        }
        if (t == null || !t.activeAt(Instant.now())) return Optional.empty();
        return Optional.of(new Principal(t.accountId(), t.uuid(), t.expiresAt()));
    }

    /** How many accounts hold at least one unrevoked token: the tenants that can submit work. */
    public int accountsWithTokens() {
        return records.accountsWithTokens();
    }

    public List<Token> list() {
        return records.list();
    }

    /**
     * Revokes by token uuid or name; returns how many tokens were revoked. Takes effect at once in
     * this process, within {@link #CACHE_NANOS} in a server that had the token cached.
     */
    public int revoke(String uuidOrName) {
        int n = records.revoke(uuidOrName);
        cache.clear();
        return n;
    }

    static String hash(String secret) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(secret.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
