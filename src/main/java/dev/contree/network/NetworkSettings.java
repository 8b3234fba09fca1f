package dev.contree.network;

import java.nio.file.Path;
import java.util.List;

/**
 * The operator's networking choice ({@code serve --network on|off}, {@code --network-allow}, {@code --network-deny},
 * {@code --network-dns}, and the deprecated {@code --network-namespace}).
 *
 * @param enabled         built-in networking: a namespace and uplink of its own for each networked sandbox
 * @param allow           ranges, addresses and host names sandboxes may reach although built-in rules deny them
 * @param deny            ranges and addresses they may not reach
 * @param dns             resolvers the sandboxes' DNS queries go to; empty: the host's {@code /etc/resolv.conf}
 * @param sharedNamespace deprecated: one operator-prepared namespace every networked sandbox joins (no policy)
 */
public record NetworkSettings(boolean enabled, List<String> allow, List<String> deny, List<String> dns, Path sharedNamespace) {
    public static final NetworkSettings OFF = new NetworkSettings(false, List.of(), List.of(), List.of(), null);

    public NetworkSettings {
        allow = allow == null ? List.of() : List.copyOf(allow);
        deny = deny == null ? List.of() : List.copyOf(deny);
        dns = dns == null ? List.of() : List.copyOf(dns);
        if (enabled && sharedNamespace != null)
            throw new IllegalArgumentException("--network on and --network-namespace exclude each other (--network on gives each sandbox its own namespace)");
        if (!enabled && (!allow.isEmpty() || !deny.isEmpty() || !dns.isEmpty()))
            throw new IllegalArgumentException("--network-allow, --network-deny and --network-dns need --network on");
    }

    /** Built-in networking under the given policy lists. */
    public static NetworkSettings on(List<String> allow, List<String> deny, List<String> dns) {
        return new NetworkSettings(true, allow, deny, dns, null);
    }

    /** The deprecated shared namespace. */
    public static NetworkSettings sharedNamespace(Path path) {
        return new NetworkSettings(false, List.of(), List.of(), List.of(), path);
    }

    /** Whether executions may ask for {@code networking.enabled}. */
    public boolean available() {
        return enabled || sharedNamespace != null;
    }
}
