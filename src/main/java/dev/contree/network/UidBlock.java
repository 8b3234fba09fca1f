package dev.contree.network;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.BitSet;

/**
 * The host uids one server gives its uplink helpers: one per networked sandbox, so no helper can signal, trace or
 * share a socket owner with another's, and so the firewall can tell their connections from every other process's.
 *
 * <p>All servers on a host draw from the reserved range (uids 0x7C000000-0x7FFFFFFF: no distribution allocates them),
 * each from a block of 65,536 of its own: the one its data dir hashes to, or the next one free ({@link #claim}), held
 * by a lock file under {@code /run/contree/uplink-uids} for as long as the server runs, so two live servers never
 * share a block and a restarted one gets its block back (and with it its crashed predecessor's leftovers to
 * remove). Sandboxes may not take a uid in the reserved range
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

    /** Where servers claim their blocks: one lock file per block, naming the data dir of the server that holds it. */
    static final Path CLAIMS = Path.of("/run/contree/uplink-uids");

    /** The block the server whose data dir is {@code dataDir} tries first. */
    public static UidBlock forDataDir(Path dataDir) {
        byte[] h = sha256(dataDir.toAbsolutePath().normalize().toString());
        return of(((h[0] & 0xFF) << 8 | (h[1] & 0xFF)) % BLOCKS);
    }

    static UidBlock of(int index) {
        return new UidBlock((int) (BASE + (long) index * BLOCK), BLOCK);
    }

    /** A block held by this server until {@link #close}. */
    record Claim(UidBlock block, FileChannel file, FileLock lock) implements AutoCloseable {
        @Override public void close() throws IOException {
            lock.release();
            file.close();
        }
    }

    /** Locks the first free block from the data dir's own on: a crash frees it, a restart takes the same again. */
    static Claim claim(Path dataDir) throws IOException {
        Files.createDirectories(CLAIMS, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        int first = forDataDir(dataDir).index();
        for (int i = 0; i < BLOCKS; i++) {
            int index = (first + i) % BLOCKS;
            FileChannel f = FileChannel.open(CLAIMS.resolve(Integer.toString(index)), StandardOpenOption.CREATE,
                    StandardOpenOption.READ, StandardOpenOption.WRITE);
            FileLock lock;
            try {
                lock = f.tryLock();
            } catch (OverlappingFileLockException e) {
                lock = null; // held by another server in this JVM
            }
            if (lock == null) {
                f.close();
                continue;
            }
            f.truncate(0);
            f.write(java.nio.ByteBuffer.wrap((dataDir.toAbsolutePath().normalize() + "\n").getBytes(StandardCharsets.UTF_8)));
            f.force(true);
            return new Claim(of(index), f, lock);
        }
        throw new IOException("all " + BLOCKS + " uplink uid blocks are held by running servers");
    }

    /** The block the server of {@code dataDir} holds or last held (for tests and diagnostics); null when none. */
    public static UidBlock claimedBy(Path dataDir) throws IOException {
        String want = dataDir.toAbsolutePath().normalize().toString();
        if (!Files.isDirectory(CLAIMS)) return null;
        try (var files = Files.list(CLAIMS)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                if (Files.readString(p, StandardCharsets.UTF_8).strip().equals(want)) return of(Integer.parseInt(p.getFileName().toString()));
            }
        }
        return null;
    }

    public int index() { return (int) ((first - BASE) / BLOCK); }

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
