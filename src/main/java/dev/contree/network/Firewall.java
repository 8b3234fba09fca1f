package dev.contree.network;

import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.stream.Collectors;

/**
 * The egress policy as an nftables table in the host's own network namespace, where no sandbox can touch it. It
 * matches by socket owner: every connection an uplink helper makes on a sandbox's behalf is made by a process of
 * the server's {@link UidBlock}, so one static rule set covers all sandboxes and nothing changes per sandbox.
 *
 * <p>Per helper connection, in order: IPv6 is refused (sandboxes get IPv4 only); DNS to the resolvers passes; the
 * operator's explicitly allowed single addresses pass; the host's own addresses (any, at packet time, also ones
 * added later: loopback, the API's, every interface's), broadcast and multicast are refused; the policy's denied
 * ranges are refused; the rest passes. Refused TCP gets a reset and UDP an ICMP error, so a sandbox sees
 * "connection refused" at once instead of waiting for a timeout. Packets without a socket (the kernel's own, other
 * processes' forwarded traffic) never match the owner rule and are not touched.
 */
final class Firewall {
    private Firewall() {}

    private static final Duration NFT_TIMEOUT = Duration.ofSeconds(30);

    /**
     * The table of the server holding {@code uids}: named after the block, so a server that claims a block a crashed
     * one left replaces that one's table too.
     */
    static String tableName(UidBlock uids) {
        return "contree_uplinks_" + uids.index();
    }

    /** The nft script that (re)creates the table atomically: an older one is replaced in the same transaction. */
    static String script(String table, UidBlock uids, EgressPolicy policy) {
        StringBuilder s = new StringBuilder();
        s.append("table inet ").append(table).append(" {}\n");
        s.append("delete table inet ").append(table).append("\n");
        s.append("table inet ").append(table).append(" {\n");
        set(s, "resolvers", policy.resolvers());
        set(s, "allowed_host", policy.allowedHostAddresses());
        set(s, "denied", policy.denied());
        s.append("  chain refuse {\n");
        s.append("    meta l4proto tcp reject with tcp reset\n");
        s.append("    reject with icmpx admin-prohibited\n");
        s.append("  }\n");
        s.append("  chain uplink {\n");
        s.append("    meta nfproto ipv6 goto refuse\n");
        s.append("    ip daddr @resolvers meta l4proto { tcp, udp } th dport 53 accept\n");
        s.append("    ip daddr @allowed_host accept\n");
        s.append("    fib daddr type { local, broadcast, multicast } goto refuse\n");
        s.append("    ip daddr @denied goto refuse\n");
        s.append("    accept\n");
        s.append("  }\n");
        s.append("  chain output {\n");
        s.append("    type filter hook output priority filter; policy accept;\n");
        s.append("    meta skuid ").append(uids.first()).append("-").append(uids.last()).append(" jump uplink\n");
        s.append("  }\n");
        s.append("}\n");
        return s.toString();
    }

    private static void set(StringBuilder s, String name, List<Ipv4Range> ranges) {
        s.append("  set ").append(name).append(" {\n    type ipv4_addr; flags interval;\n");
        if (!ranges.isEmpty())
            s.append("    elements = { ").append(ranges.stream().map(Ipv4Range::nft).collect(Collectors.joining(", "))).append(" }\n");
        s.append("  }\n");
    }

    static void install(String table, UidBlock uids, EgressPolicy policy) throws IOException {
        Exec.check(List.of("nft", "-f", "-"), script(table, uids, policy), NFT_TIMEOUT);
    }

    /** Deletes the table; nothing when it is not there. */
    static void remove(String table) throws IOException {
        Exec.check(List.of("nft", "-f", "-"), "table inet " + table + " {}\ndelete table inet " + table + "\n", NFT_TIMEOUT);
    }

    /** {@code nft list table}: what the kernel holds now (tests compare it before and after). */
    static String list(String table) throws IOException {
        return Exec.check(List.of("nft", "list", "table", "inet", table), null, NFT_TIMEOUT);
    }
}
