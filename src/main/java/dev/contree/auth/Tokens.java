package dev.contree.auth;

import dev.contree.store.Database;
import dev.contree.store.Sql;
import dev.contree.store.Times;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.UUID;

/**
 * API tokens: issue, verify, list, revoke. Tokens are random secrets shown once; the database keeps
 * only their SHA-256, so a leaked database does not leak credentials.
 */
public final class Tokens {
    private static final SecureRandom RANDOM = new SecureRandom();
    /** Verified tokens are remembered this long, so polling clients do not hit the database on every request. */
    private static final long CACHE_NANOS = 2_000_000_000L;
    private final Database db;
    private final java.util.concurrent.ConcurrentHashMap<String, Cached> cache = new java.util.concurrent.ConcurrentHashMap<>();

    private record Cached(Token token, long until) {}

    public Tokens(Database db) {
        this.db = db;
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
        String hash = hash(secret);
        Instant now = Times.now();
        Token token = db.write(c -> {
            Token existing = Sql.one(c, SELECT + " WHERE t.token_hash = ?", Tokens::row, hash);
            if (existing != null) return existing;
            String accountId = Sql.one(c, "SELECT id FROM accounts WHERE name = ?", rs -> rs.getString(1), accountName);
            if (accountId == null) {
                accountId = UUID.randomUUID().toString();
                Sql.update(c, "INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)",
                        accountId, accountName, Times.toMicros(now));
            }
            String uuid = UUID.randomUUID().toString();
            Sql.update(c, "INSERT INTO tokens (uuid, account_id, name, token_hash, created_at, expires_at) VALUES (?,?,?,?,?,?)",
                    uuid, accountId, tokenName, hash, Times.toMicros(now), expiresAt == null ? null : Times.toMicros(expiresAt));
            return Sql.one(c, SELECT + " WHERE t.uuid = ?", Tokens::row, uuid);
        });
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
            t = db.read(c -> Sql.one(c, SELECT + " WHERE t.token_hash = ?", Tokens::row, hash));
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
        return db.read(c -> Sql.one(c, "SELECT COUNT(DISTINCT account_id) FROM tokens WHERE revoked_at IS NULL",
                rs -> rs.getInt(1)));
    }

    public List<Token> list() {
        return db.read(c -> Sql.query(c, SELECT + " ORDER BY t.created_at", Tokens::row));
    }

    /**
     * Revokes by token uuid or name; returns how many tokens were revoked. Takes effect at once in
     * this process, within {@link #CACHE_NANOS} in a server that had the token cached.
     */
    public int revoke(String uuidOrName) {
        long now = Times.toMicros(Times.now());
        int n = db.write(c -> Sql.update(c,
                "UPDATE tokens SET revoked_at = ? WHERE (uuid = ? OR name = ?) AND revoked_at IS NULL", now, uuidOrName, uuidOrName));
        cache.clear();
        return n;
    }

    private static final String SELECT = "SELECT t.*, a.name AS account_name FROM tokens t JOIN accounts a ON a.id = t.account_id";

    private static Token row(java.sql.ResultSet rs) throws java.sql.SQLException {
        return new Token(rs.getString("uuid"), rs.getString("account_id"), rs.getString("account_name"), rs.getString("name"),
                Sql.instant(rs, "created_at"), Sql.instant(rs, "expires_at"), Sql.instant(rs, "revoked_at"));
    }

    static String hash(String secret) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(secret.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
