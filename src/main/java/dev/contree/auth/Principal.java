package dev.contree.auth;

import java.time.Instant;

/** Who is calling: the account that owns everything they touch, and the token they used. */
public record Principal(String accountId, String tokenUuid, Instant tokenExpiration) {}
