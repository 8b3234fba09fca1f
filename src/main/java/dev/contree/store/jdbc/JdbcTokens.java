package dev.contree.store.jdbc;

import dev.contree.auth.Token;
import dev.contree.store.TokenRecords;

import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.UUID;

public final class JdbcTokens implements TokenRecords {
    private static final String SELECT = "SELECT t.*, a.name AS account_name FROM tokens t JOIN accounts a ON a.id = t.account_id";
    private final Engine db;

    public JdbcTokens(Engine db) {
        this.db = db;
    }

    @Override
    public Token register(String tokenHash, String accountName, String tokenName, Instant expiresAt) {
        long now = Times.toMicros(Times.now());
        return db.write(c -> {
            Token existing = Sql.one(c, SELECT + " WHERE t.token_hash = ?", JdbcTokens::row, tokenHash);
            if (existing != null) return existing;
            // Inserts that lose to a concurrent twin do nothing; the rows read back are the winners'.
            Sql.update(c, "INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    UUID.randomUUID().toString(), accountName, now);
            String accountId = Sql.one(c, "SELECT id FROM accounts WHERE name = ?", rs -> rs.getString(1), accountName);
            Sql.update(c, "INSERT INTO tokens (uuid, account_id, name, token_hash, created_at, expires_at) VALUES (?,?,?,?,?,?)"
                            + " ON CONFLICT DO NOTHING",
                    UUID.randomUUID().toString(), accountId, tokenName, tokenHash, now, Sql.micros(expiresAt));
            return Sql.one(c, SELECT + " WHERE t.token_hash = ?", JdbcTokens::row, tokenHash);
        });
    }

    @Override
    public Optional<Token> byHash(String tokenHash) {
        return Optional.ofNullable(db.read(c -> Sql.one(c, SELECT + " WHERE t.token_hash = ?", JdbcTokens::row, tokenHash)));
    }

    @Override
    public List<Token> list() {
        return db.read(c -> Sql.query(c, SELECT + " ORDER BY t.created_at, t.uuid", JdbcTokens::row));
    }

    @Override
    public int revoke(String uuidOrName) {
        long now = Times.toMicros(Times.now());
        return db.write(c -> Sql.update(c, "UPDATE tokens SET revoked_at = ? WHERE (uuid = ? OR name = ?) AND revoked_at IS NULL",
                now, uuidOrName, uuidOrName));
    }

    @Override
    public int accountsWithTokens() {
        return db.read(c -> Sql.one(c, "SELECT COUNT(DISTINCT account_id) FROM tokens WHERE revoked_at IS NULL", rs -> rs.getInt(1)));
    }

    private static Token row(ResultSet rs) throws SQLException {
        return new Token(rs.getString("uuid"), rs.getString("account_id"), rs.getString("account_name"), rs.getString("name"),
                Sql.instant(rs, "created_at"), Sql.instant(rs, "expires_at"), Sql.instant(rs, "revoked_at"));
    }
}
