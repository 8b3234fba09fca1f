package dev.contree.images;

import dev.contree.store.Database;
import dev.contree.store.Sql;

import java.util.Collection;
import java.util.HashSet;
import java.util.Set;

/**
 * What an account stores, against the operator's per-account bound ({@code serve --max-account-bytes}): the layers
 * its images reference (each counted once per account, also when another account shares it) plus its uploaded files.
 * Layers shared between accounts are charged to each, so one account can never grow its share by another's data.
 */
public final class AccountStorage {
    /** No bound. */
    public static final long UNLIMITED = Long.MAX_VALUE;

    private final Database db;
    private final long capBytes;

    public AccountStorage(Database db, long capBytes) {
        this.db = db;
        this.capBytes = capBytes;
    }

    public long cap() {
        return capBytes;
    }

    public boolean bounded() {
        return capBytes != UNLIMITED;
    }

    /** Bytes the account stores now. */
    public long used(String accountId) {
        return usedWith(accountId, Set.of());
    }

    /** Bytes the account would store if its images also referenced {@code moreLayers}. */
    public long usedWith(String accountId, Collection<String> moreLayers) {
        return db.read(c -> {
            Set<String> layers = new HashSet<>(Sql.query(c,
                    "SELECT DISTINCT j.value FROM images i, json_each(i.layers) j WHERE i.account_id = ?", rs -> rs.getString(1), accountId));
            layers.addAll(moreLayers);
            long total = 0;
            for (String id : layers) {
                Long size = Sql.one(c, "SELECT size FROM layers WHERE id = ?", rs -> rs.getLong(1), id);
                if (size != null) total += size;
            }
            Long files = Sql.one(c, "SELECT COALESCE(SUM(size), 0) FROM files WHERE account_id = ?", rs -> rs.getLong(1), accountId);
            return total + (files == null ? 0 : files);
        });
    }

    /** Bytes the account may still add; {@link #UNLIMITED} without a bound. */
    public long remaining(String accountId) {
        if (!bounded()) return UNLIMITED;
        return Math.max(0, capBytes - used(accountId));
    }

    /** The refusal text when an account is at or over its bound. */
    public String overMessage(String accountId) {
        return "the account stores " + used(accountId) + " bytes, at its storage limit of " + capBytes
                + " bytes (set by the server operator with --max-account-bytes); nothing new can be stored";
    }
}
