package dev.contree.images;

import dev.contree.store.MetadataStore;

import java.util.Collection;
import java.util.Set;

/**
 * What an account stores, against the operator's per-account bound ({@code serve --max-account-bytes}): the layers
 * its images reference (each counted once per account, also when another account shares it) plus its uploaded files.
 * Layers shared between accounts are charged to each, so one account can never grow its share by another's data.
 */
public final class AccountStorage {
    /** No bound. */
    public static final long UNLIMITED = Long.MAX_VALUE;

    private final MetadataStore store;
    private final long capBytes;

    public AccountStorage(MetadataStore store, long capBytes) {
        this.store = store;
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
        return store.accountBytes(accountId, moreLayers);
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
