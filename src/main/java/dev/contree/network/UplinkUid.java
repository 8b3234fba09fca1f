package dev.contree.network;

import java.nio.file.Path;

/**
 * A uid of the server's uplink block lent to a process that makes a sandbox's uplink itself instead of slirp4netns:
 * the vm runtime's QEMU, whose built-in libslirp ({@code -netdev user}) opens the guest's connections as ordinary
 * host sockets. Run as {@link #uid}, every socket it opens falls under the same egress policy as a slirp4netns
 * uplink's ({@link Firewall} matches the block's uids). {@link #close} returns the uid to the pool: only once no
 * process of it is left, so that no later sandbox shares a uid with a live one.
 */
public interface UplinkUid extends AutoCloseable {
    int uid();

    /**
     * The resolv.conf naming the policy's resolvers: what the process must see as {@code /etc/resolv.conf} (libslirp
     * forwards the guest's DNS queries to its first nameserver), bound there in a mount namespace of its own.
     */
    Path upstreamResolvConf();

    @Override void close();
}
