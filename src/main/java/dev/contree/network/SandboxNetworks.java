package dev.contree.network;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Networking for sandboxes that ask for it: one {@link SandboxNetwork} per sandbox, attached before its runtime
 * starts and closed after the sandbox is gone. Thread-safe.
 */
public interface SandboxNetworks extends AutoCloseable {
    /**
     * Descriptors the server holds per networked sandbox on top of the sandbox's own: the uplink's two processes (a
     * pipe or two and a pidfd each) and the namespace; rounded up.
     */
    int FDS_PER_SANDBOX = 8;

    /** What the spawn event records as the network mode of a networked execution ({@code slirp4netns}, {@code namespace}). */
    String mode();

    /**
     * Whether each sandbox gets a namespace of its own with the server's resolv.conf ({@link SandboxNetwork#dedicated},
     * {@link SandboxNetwork#resolvConf}), as opposed to one shared namespace the operator prepared.
     */
    boolean dedicated();

    /**
     * A network for the sandbox {@code sandboxId} whose CPU quota is {@code cpus} (negative: none; the uplink's own
     * quota follows it); an IOException says why there is none (the run then fails).
     */
    SandboxNetwork attach(String sandboxId, double cpus) throws IOException;

    /**
     * A uid of the uplink block for a process that is its sandbox's uplink itself (the vm runtime's QEMU with
     * libslirp), under the same egress policy; an IOException when this mode has none (a shared namespace).
     */
    default UplinkUid reserveUplinkUid(String sandboxId) throws IOException {
        throw new IOException("network mode " + mode() + " has no uplink uids for the vm runtime (use --network on)");
    }

    /** Removes what a crashed server left (helper processes and their cgroups); how many processes. */
    int cleanupStale() throws IOException;

    /** Closes what is still attached and removes the server's firewall table. */
    @Override void close();

    /**
     * The operator's choice: null when networking is off; else started, leftovers of a crash removed.
     *
     * @param cgroupParent the sandboxes' cgroup parent: each uplink gets a cgroup of its own under it
     */
    static SandboxNetworks open(NetworkSettings settings, Path stateDir, Path dataDir, String cgroupParent) throws IOException {
        if (settings.sharedNamespace() != null) return new SharedNamespace(settings.sharedNamespace());
        if (!settings.enabled()) return null;
        return SlirpNetworks.start(settings, stateDir, dataDir, cgroupParent);
    }
}
