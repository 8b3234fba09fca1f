package dev.contree.network;

import java.nio.file.Path;

/** One sandbox's network while it runs: what the runtime joins and mounts. {@link #close} removes what it made. */
public interface SandboxNetwork extends AutoCloseable {

    /** The network namespace the sandbox joins (a path a runtime can open). */
    Path namespace();

    /** A resolv.conf to bind read-only at {@code /etc/resolv.conf}; null: the image's own stays. */
    Path resolvConf();

    /**
     * Whether the namespace is this sandbox's alone, so a runtime may take its interfaces over (gVisor's netstack
     * removes the addresses from them); a namespace several sandboxes share must be left as it is.
     */
    boolean dedicated();

    /** Bytes sent and received so far. */
    NetworkUsage usage();

    @Override void close();
}
