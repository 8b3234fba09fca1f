package dev.contree.network;

import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * Where a networked sandbox may connect: the operator's {@code --network-allow} and {@code --network-deny} over
 * built-in denials of every special-purpose IPv4 range (private, loopback, link-local with the cloud metadata
 * address, carrier-grade NAT, documentation, multicast, reserved). The most specific range decides; at equal
 * length the operator's deny beats the operator's allow, which beats a built-in deny; what no rule covers (the
 * public internet) is allowed. The host's own addresses are refused at packet time by the firewall whatever the
 * ranges say ({@link Firewall}), unless allowed by exactly that address ({@code /32}). DNS queries (port 53) to the
 * resolvers always pass: the uplink forwards the sandbox's queries there.
 *
 * @param rules     built-in rules first, then the operator's, in the order given
 * @param resolvers the upstream DNS servers
 */
public record EgressPolicy(List<Rule> rules, List<Ipv4Range> resolvers) {

    public enum Origin { BUILT_IN, ALLOW, DENY }

    /** One range and who put it there; {@code source} is what the operator wrote (a host name resolves to several). */
    public record Rule(Ipv4Range range, Origin origin, String source) {
        boolean allows() { return origin == Origin.ALLOW; }

        int prefix() {
            int p = range.prefixLength();
            return p >= 0 ? p : 32; // host names resolve to single addresses; a parsed range is always a block
        }
    }

    /** IANA's special-purpose IPv4 ranges (RFC 6890 and successors) a sandbox has no business reaching by default. */
    public static final List<Rule> BUILT_IN = List.of(
            builtIn("0.0.0.0/8", "this network"),
            builtIn("10.0.0.0/8", "private"),
            builtIn("100.64.0.0/10", "carrier-grade NAT"),
            builtIn("127.0.0.0/8", "loopback"),
            builtIn("169.254.0.0/16", "link-local, cloud metadata (169.254.169.254)"),
            builtIn("172.16.0.0/12", "private"),
            builtIn("192.0.0.0/24", "IETF protocol assignments"),
            builtIn("192.0.2.0/24", "documentation (TEST-NET-1)"),
            builtIn("192.88.99.0/24", "6to4 relay anycast"),
            builtIn("192.168.0.0/16", "private"),
            builtIn("198.18.0.0/15", "benchmarking"),
            builtIn("198.51.100.0/24", "documentation (TEST-NET-2)"),
            builtIn("203.0.113.0/24", "documentation (TEST-NET-3)"),
            builtIn("224.0.0.0/4", "multicast"),
            builtIn("240.0.0.0/4", "reserved, broadcast"));

    private static final Pattern HOST_NAME = Pattern.compile("(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\\.?");

    /** Resolves an allowed host name to its IPv4 addresses (once, at start-up). */
    @FunctionalInterface
    public interface Resolver {
        List<Inet4Address> resolve(String host) throws UnknownHostException;

        Resolver SYSTEM = host -> {
            List<Inet4Address> out = new ArrayList<>();
            for (InetAddress a : InetAddress.getAllByName(host)) if (a instanceof Inet4Address v4) out.add(v4);
            return out;
        };
    }

    public EgressPolicy {
        rules = List.copyOf(rules);
        resolvers = List.copyOf(resolvers);
    }

    /**
     * The policy from the operator's lists: {@code allow} takes CIDR ranges, addresses and host names (resolved now to
     * their IPv4 addresses), {@code deny} ranges and addresses, {@code dns} resolver addresses (none: the host's
     * {@code /etc/resolv.conf}). Anything else is an {@link IllegalArgumentException} naming the entry.
     */
    public static EgressPolicy of(List<String> allow, List<String> deny, List<String> dns, Resolver resolver) {
        List<Rule> rules = new ArrayList<>(BUILT_IN);
        for (String a : allow) {
            String s = a.strip();
            if (s.isEmpty()) continue;
            if (s.contains(":"))
                throw new IllegalArgumentException("--network-allow '" + s + "': IPv6 is not supported (sandboxes get IPv4 only)");
            if (looksNumeric(s)) {
                rules.add(new Rule(Ipv4Range.parse(s), Origin.ALLOW, s));
                continue;
            }
            if (!HOST_NAME.matcher(s).matches() || s.length() > 253)
                throw new IllegalArgumentException("--network-allow '" + s + "' is neither an IPv4 range nor a host name");
            List<Inet4Address> addresses;
            try {
                addresses = resolver.resolve(s);
            } catch (UnknownHostException e) {
                throw new IllegalArgumentException("--network-allow host '" + s + "' does not resolve: " + e.getMessage());
            }
            if (addresses.isEmpty()) throw new IllegalArgumentException("--network-allow host '" + s + "' has no IPv4 address");
            for (Inet4Address ip : addresses) rules.add(new Rule(Ipv4Range.of(ip), Origin.ALLOW, s));
        }
        for (String d : deny) {
            String s = d.strip();
            if (s.isEmpty()) continue;
            try {
                rules.add(new Rule(Ipv4Range.parse(s), Origin.DENY, s));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--network-deny " + e.getMessage() + " (it takes IPv4 ranges and addresses)");
            }
        }
        List<Ipv4Range> resolvers = new ArrayList<>();
        for (String r : dns) {
            String s = r.strip();
            if (s.isEmpty()) continue;
            Ipv4Range ip = Ipv4Range.parse(s);
            if (!ip.single()) throw new IllegalArgumentException("--network-dns '" + s + "' must be one IPv4 address");
            resolvers.add(ip);
        }
        return new EgressPolicy(rules, resolvers);
    }

    /** The IPv4 {@code nameserver} lines of a resolv.conf (the host's, when the operator names no resolver). */
    public static List<String> nameservers(Path resolvConf) {
        List<String> out = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(resolvConf, StandardCharsets.UTF_8)) {
                String[] f = line.strip().split("\\s+");
                if (f.length >= 2 && f[0].equals("nameserver") && Ipv4Range.parseAddress(f[1]) >= 0) out.add(f[1]);
            }
        } catch (IOException e) {
            // no resolv.conf: no resolver
        }
        return out;
    }

    private static boolean looksNumeric(String s) {
        return s.chars().allMatch(c -> Character.isDigit(c) || c == '.' || c == '/');
    }

    private static Rule builtIn(String cidr, String why) {
        return new Rule(Ipv4Range.parse(cidr), Origin.BUILT_IN, why);
    }

    /** Whether a connection to {@code address} (not one of the host's own) passes. */
    public boolean allows(long address) {
        Rule best = null;
        for (Rule r : rules) {
            if (!r.range().contains(address)) continue;
            if (best == null || r.prefix() > best.prefix() || (r.prefix() == best.prefix() && r.origin().compareTo(best.origin()) > 0)) best = r;
        }
        return best == null || best.allows();
    }

    /** Every denied address as sorted, disjoint, maximal ranges: the firewall's set. */
    public List<Ipv4Range> denied() {
        TreeSet<Long> cuts = new TreeSet<>();
        cuts.add(0L);
        for (Rule r : rules) {
            cuts.add(r.range().first());
            if (r.range().last() < Ipv4Range.MAX) cuts.add(r.range().last() + 1);
        }
        List<Ipv4Range> out = new ArrayList<>();
        Long start = null;
        List<Long> points = new ArrayList<>(cuts);
        for (int i = 0; i < points.size(); i++) {
            long from = points.get(i);
            long to = i + 1 < points.size() ? points.get(i + 1) - 1 : Ipv4Range.MAX;
            boolean denied = !allows(from); // every address of [from, to] is covered by the same rules
            if (denied && start == null) start = from;
            if (!denied && start != null) {
                out.add(new Ipv4Range(start, from - 1));
                start = null;
            }
            if (denied && i + 1 == points.size()) out.add(new Ipv4Range(start, to));
        }
        return out;
    }

    /** Single addresses the operator allowed explicitly: the only host addresses a sandbox may reach. */
    public List<Ipv4Range> allowedHostAddresses() {
        TreeSet<Ipv4Range> out = new TreeSet<>();
        for (Rule r : rules) if (r.allows() && r.range().single() && allows(r.range().first())) out.add(r.range());
        return List.copyOf(out);
    }
}
