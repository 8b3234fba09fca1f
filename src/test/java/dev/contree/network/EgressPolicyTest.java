package dev.contree.network;

import org.junit.jupiter.api.Test;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The policy's decisions and the firewall sets computed from them. */
class EgressPolicyTest {
    static final EgressPolicy.Resolver NO_NAMES = h -> { throw new UnknownHostException(h); };

    static EgressPolicy policy(List<String> allow, List<String> deny) {
        return EgressPolicy.of(allow, deny, List.of(), NO_NAMES);
    }

    static long ip(String a) {
        return Ipv4Range.parseAddress(a);
    }

    @Test
    void byDefaultThePublicInternetAndNothingSpecial() {
        EgressPolicy p = policy(List.of(), List.of());
        for (String ok : List.of("8.8.8.8", "1.1.1.1", "151.101.0.223", "9.255.255.255", "11.0.0.0", "172.32.0.1", "192.169.0.1"))
            assertThat(p.allows(ip(ok))).as(ok).isTrue();
        for (String no : List.of("10.1.2.3", "127.0.0.1", "127.255.255.254", "169.254.169.254", "172.16.0.1", "172.31.255.255",
                "192.168.1.1", "100.64.0.1", "0.0.0.0", "224.0.0.251", "239.255.255.250", "255.255.255.255", "192.0.2.7", "198.18.0.1"))
            assertThat(p.allows(ip(no))).as(no).isFalse();
    }

    @Test
    void theMostSpecificRangeDecidesAndADenyWinsATie() {
        EgressPolicy p = policy(List.of("10.0.0.0/8", "10.1.2.0/24", "172.16.0.0/12"), List.of("10.1.0.0/16", "172.16.0.0/12", "8.8.8.8"));
        assertThat(p.allows(ip("10.2.0.1"))).isTrue();      // allow /8 over the built-in /8
        assertThat(p.allows(ip("10.1.7.7"))).isFalse();     // deny /16 inside it
        assertThat(p.allows(ip("10.1.2.3"))).isTrue();      // allow /24 inside that
        assertThat(p.allows(ip("172.20.0.1"))).isFalse();   // allow and deny of the same range: deny
        assertThat(p.allows(ip("8.8.8.8"))).isFalse();
        assertThat(p.allows(ip("8.8.4.4"))).isTrue();
    }

    @Test
    void anAllowListIsADenyOfEverythingWithExceptions() {
        EgressPolicy p = policy(List.of("203.0.113.7", "151.101.0.0/16"), List.of("0.0.0.0/0"));
        assertThat(p.allows(ip("203.0.113.7"))).isTrue();
        assertThat(p.allows(ip("151.101.64.223"))).isTrue();
        assertThat(p.allows(ip("8.8.8.8"))).isFalse();
        assertThat(p.denied()).hasSize(3); // [0, 151.100.255.255], [151.102.0.0, 203.0.113.6], [203.0.113.8, max]
    }

    @Test
    void theDeniedSetIsExactlyTheDeniedAddressesAsFewDisjointRanges() {
        EgressPolicy p = policy(List.of("10.231.0.0/16", "192.168.7.7", "169.254.0.0/17"), List.of("10.231.3.0/24", "1.2.3.0/30"));
        List<Ipv4Range> denied = p.denied();
        for (int i = 1; i < denied.size(); i++)
            assertThat(denied.get(i).first()).as("sorted, disjoint, merged").isGreaterThan(denied.get(i - 1).last() + 1);
        Random r = new Random(7);
        for (int i = 0; i < 200_000; i++) {
            long a = r.nextInt() & 0xFFFF_FFFFL;
            if (i % 4 == 0) a = denied.get(r.nextInt(denied.size())).first() + (r.nextBoolean() ? 0 : -1); // the edges
            if (a < 0) continue;
            long addr = a;
            boolean inSet = denied.stream().anyMatch(d -> d.contains(addr));
            assertThat(inSet).as(Ipv4Range.format(addr)).isEqualTo(!p.allows(addr));
        }
        assertThat(p.allowedHostAddresses()).containsExactly(Ipv4Range.parse("192.168.7.7"));
    }

    @Test
    void hostNamesResolveOnceToTheirAddresses() throws Exception {
        Inet4Address a = (Inet4Address) InetAddress.getByName("10.9.9.9"), b = (Inet4Address) InetAddress.getByName("10.9.9.10");
        EgressPolicy p = EgressPolicy.of(List.of("mirror.internal"), List.of(), List.of(), h -> List.of(a, b));
        assertThat(p.allows(ip("10.9.9.9"))).isTrue();
        assertThat(p.allows(ip("10.9.9.10"))).isTrue();
        assertThat(p.allows(ip("10.9.9.11"))).isFalse();
        assertThatThrownBy(() -> EgressPolicy.of(List.of("nowhere.invalid"), List.of(), List.of(), NO_NAMES))
                .hasMessageContaining("nowhere.invalid").hasMessageContaining("does not resolve");
        assertThatThrownBy(() -> EgressPolicy.of(List.of("v6only.example"), List.of(), List.of(), h -> List.of()))
                .hasMessageContaining("no IPv4 address");
    }

    @Test
    void badEntriesAreRefusedNamingThem() {
        assertThatThrownBy(() -> policy(List.of("10.0.0.1/33"), List.of())).hasMessageContaining("10.0.0.1/33").hasMessageContaining("0 to 32");
        assertThatThrownBy(() -> policy(List.of("10.0.0.1/8"), List.of())).hasMessageContaining("host bits").hasMessageContaining("10.0.0.0/8");
        assertThatThrownBy(() -> policy(List.of("fd00::/8"), List.of())).hasMessageContaining("IPv6");
        assertThatThrownBy(() -> policy(List.of("300.1.1.1"), List.of())).hasMessageContaining("300.1.1.1");
        assertThatThrownBy(() -> policy(List.of("bad_host!"), List.of())).hasMessageContaining("bad_host!");
        assertThatThrownBy(() -> policy(List.of(), List.of("example.com"))).hasMessageContaining("--network-deny").hasMessageContaining("example.com");
        assertThatThrownBy(() -> EgressPolicy.of(List.of(), List.of(), List.of("10.0.0.0/24"), NO_NAMES)).hasMessageContaining("one IPv4 address");
        assertThatThrownBy(() -> new NetworkSettings(false, List.of("1.2.3.4"), List.of(), List.of(), null)).hasMessageContaining("--network on");
    }

    @Test
    void theHostsResolversAreItsIpv4Nameservers() throws Exception {
        Path f = Files.createTempFile("resolv", ".conf");
        try {
            Files.writeString(f, "# comment\nsearch example\nnameserver 10.255.255.53\nnameserver fd00::53\n  nameserver   1.1.1.1  \noptions edns0\n");
            assertThat(EgressPolicy.nameservers(f)).containsExactly("10.255.255.53", "1.1.1.1");
        } finally {
            Files.delete(f);
        }
    }

    @Test
    void rangesRoundTripAsCidrBlocks() {
        assertThat(new Ipv4Range(ip("10.0.0.0"), ip("10.231.199.255")).cidrs())
                .startsWith("10.0.0.0/9", "10.128.0.0/10", "10.192.0.0/11").endsWith("10.231.0.0/17", "10.231.128.0/18", "10.231.192.0/21");
        assertThat(Ipv4Range.parse("0.0.0.0/0").nft()).isEqualTo("0.0.0.0/0");
        assertThat(new Ipv4Range(ip("10.0.0.1"), ip("10.0.0.6")).nft()).isEqualTo("10.0.0.1-10.0.0.6");
    }

    @Test
    void twoServersNeverHoldTheSameBlockAndARestartGetsItsOwnBack() throws Exception {
        Path data = Path.of("/tmp/contree-claim-test-" + ProcessHandle.current().pid());
        try (UidBlock.Claim one = UidBlock.claim(data)) {
            assertThat(one.block()).isEqualTo(UidBlock.forDataDir(data));
            assertThat(UidBlock.claimedBy(data)).isEqualTo(one.block());
            try (UidBlock.Claim two = UidBlock.claim(data)) { // another server hashing to the same block
                assertThat(two.block()).isNotEqualTo(one.block());
                assertThat(two.block().index()).isEqualTo((one.block().index() + 1) % 1024);
            }
        }
        try (UidBlock.Claim again = UidBlock.claim(data)) {
            assertThat(again.block()).isEqualTo(UidBlock.forDataDir(data));
        }
    }

    /** The table nft would load for a real-sized policy: checked by nft itself (-c, nothing applied). */
    @Test
    void theFirewallScriptIsValidNft() throws Exception {
        EgressPolicy p = EgressPolicy.of(List.of("10.231.0.0/16", "192.168.7.7"), List.of("10.231.3.0/24"), List.of("10.255.255.53"), NO_NAMES);
        UidBlock uids = UidBlock.forDataDir(Path.of("/tmp/some/data"));
        String script = Firewall.script("contree_check", uids, p);
        assertThat(script).contains("meta skuid " + uids.first() + "-" + uids.last() + " jump uplink")
                .contains("fib daddr type { local, broadcast, multicast } goto refuse").contains("10.255.255.53").contains("192.168.7.7");
        Exec.check(List.of("nft", "-c", "-f", "-"), script, Duration.ofSeconds(30));
    }

    @Test
    void uidBlocksStayInTheReservedRangeAndDifferByDataDir() {
        UidBlock a = UidBlock.forDataDir(Path.of("/srv/contree/data")), b = UidBlock.forDataDir(Path.of("/srv/other/data"));
        for (UidBlock u : List.of(a, b)) {
            assertThat((u.first() & UidBlock.MASK)).isEqualTo(UidBlock.BASE);
            assertThat((u.last() & UidBlock.MASK)).isEqualTo(UidBlock.BASE);
        }
        assertThat(a).isNotEqualTo(b);
        assertThat(UidBlock.forDataDir(Path.of("/srv/contree/./data"))).isEqualTo(a);
        assertThat(UidBlock.of(a.index())).isEqualTo(a);
        UidBlock.Pool pool = new UidBlock.Pool(a);
        int x = pool.acquire(), y = pool.acquire();
        assertThat(x).isNotEqualTo(y);
        pool.release(x);
        assertThat(pool.acquire()).as("round robin: not the uid just released").isNotEqualTo(x);
    }
}
