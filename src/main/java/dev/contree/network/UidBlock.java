package dev.contree.network;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.BitSet;

/**
 * The host uids one server gives its uplink helpers: one per networked sandbox, so no helper can signal, trace or
 * share a socket owner with another's, and so the firewall can tell their connections from every other process's.
 *
 * <p>All servers on a host draw from {@link #RESERVED} (uids 0x7C000000-0x7FFFFFFF: no distribution allocates them),
 * each from its own block of 65,536 chosen by its data dir. Sandboxes may not take a uid in the reserved range
 * (the seccomp filter refuses setuid-family calls into it): a process whose effective uid owns a helper's user
 * namespace would hold every capability over the sandbox's network namespace.
 */
public record UidBlock(int first, int size) {
    /** Base and mask of the reserved range: {@code (uid & MASK) == BASE}. */
    public static final long BASE = 0x7C00_0000L, MASK = 0xFC00_0000L;
    public static final int BLOCK = 1 << 16;
    /** Blocks in the reserved range. */
    static final int BLOCKS = (int) ((~MASK & 0xFFFF_FFFFL) + 1) / BLOCK;

    public UidBlock {
        if (first < BASE || (long) first + size > BASE + (~MASK & 0xFFFF_FFFFL) + 1 || size <= 0)
            throw new IllegalArgumentException("uid block outside the reserved range");
    }

    /** The block of the server whose data dir is {@code dataDir} (the same after a restart: leftovers are found). */
    public static UidBlock forDataDir(Path dataDir) {
        byte[] h = sha256(dataDir.toAbsolutePath().normalize().toString());
        int index = ((h[0] & 0xFF) << 8 | (h[1] & 0xFF)) % BLOCKS;
        return new UidBlock((int) (BASE + (long) index * BLOCK), BLOCK);
    }

    public int last() { return first + size - 1; }

    public boolean contains(long uid) { return uid >= first && uid <= last(); }

    static byte[] sha256(String s) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    /** Hands out the block's uids, each to one live uplink at a time. */
    static final class Pool {
        private final UidBlock block;
        private final BitSet used = new BitSet();
        private int next;

        Pool(UidBlock block) { this.block = block; }

        synchronized int acquire() {
            int i = used.nextClearBit(next);
            if (i >= block.size()) i = used.nextClearBit(0);
            if (i >= block.size()) throw new IllegalStateException("all " + block.size() + " uplink uids are in use");
            used.set(i);
            next = (i + 1) % block.size(); // round robin: a uid just released is not handed out again at once
            return block.first() + i;
        }

        synchronized void release(int uid) {
            used.clear(uid - block.first());
        }
    }
}
