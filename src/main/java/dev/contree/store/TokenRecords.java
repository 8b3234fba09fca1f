package dev.contree.store;

import dev.contree.auth.Token;

import java.time.Instant;
import java.util.List;
import java.util.Optional;

/** Accounts and their API tokens; a token is known by the hash of its secret only. */
public interface TokenRecords {
    /** The token with {@code tokenHash}, else a new one for {@code accountName}, creating that account if it is new. */
    Token register(String tokenHash, String accountName, String tokenName, Instant expiresAt);

    Optional<Token> byHash(String tokenHash);

    /** Every token, oldest first. */
    List<Token> list();

    /** Revokes the unrevoked tokens whose uuid or name is {@code uuidOrName}; returns how many. */
    int revoke(String uuidOrName);

    /** How many accounts hold at least one unrevoked token. */
    int accountsWithTokens();
}
