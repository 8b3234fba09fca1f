package dev.contree.network;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;

/**
 * An inclusive range of IPv4 addresses, each held as an unsigned 32-bit value in a long. Parsed from the
 * operator's {@code a.b.c.d} or {@code a.b.c.d/n}; written the way nft takes interval elements.
 */
public record Ipv4Range(long first, long last) implements Comparable<Ipv4Range> {
    static final long MAX = 0xFFFF_FFFFL;

    public Ipv4Range {
        if (first < 0 || last > MAX || first > last) throw new IllegalArgumentException("bad IPv4 range " + first + "-" + last);
    }

    /** {@code a.b.c.d/n} or a single {@code a.b.c.d}; the host bits of a CIDR must be zero (a typo otherwise). */
    public static Ipv4Range parse(String text) {
        String s = text.strip();
        int slash = s.indexOf('/');
        String addr = slash < 0 ? s : s.substring(0, slash);
        int bits = 32;
        if (slash >= 0) {
            try {
                bits = Integer.parseInt(s.substring(slash + 1));
            } catch (NumberFormatException e) {
                bits = -1;
            }
            if (bits < 0 || bits > 32) throw new IllegalArgumentException("'" + text + "': the prefix length must be 0 to 32");
        }
        long a = parseAddress(addr);
        if (a < 0) throw new IllegalArgumentException("'" + text + "' is not an IPv4 address or CIDR range"
                + (addr.contains(":") ? " (IPv6 is not supported: sandboxes get IPv4 only)" : ""));
        long size = 1L << (32 - bits);
        if ((a & (size - 1)) != 0)
            throw new IllegalArgumentException("'" + text + "' has host bits set; did you mean " + format(a & ~(size - 1) & MAX) + "/" + bits + "?");
        return new Ipv4Range(a, a + size - 1);
    }

    /** The dotted quad as a value, or -1 when it is not exactly four decimal octets. */
    static long parseAddress(String s) {
        String[] parts = s.split("\\.", -1);
        if (parts.length != 4) return -1;
        long v = 0;
        for (String p : parts) {
            if (p.isEmpty() || p.length() > 3 || !p.chars().allMatch(Character::isDigit)) return -1;
            int octet = Integer.parseInt(p);
            if (octet > 255) return -1;
            v = (v << 8) | octet;
        }
        return v;
    }

    public static Ipv4Range of(Inet4Address a) {
        long v = 0;
        for (byte b : a.getAddress()) v = (v << 8) | (b & 0xFF);
        return new Ipv4Range(v, v);
    }

    static String format(long v) {
        return ((v >>> 24) & 0xFF) + "." + ((v >>> 16) & 0xFF) + "." + ((v >>> 8) & 0xFF) + "." + (v & 0xFF);
    }

    public boolean single() { return first == last; }

    public boolean contains(long address) { return address >= first && address <= last; }

    /** The prefix length when this range is exactly one CIDR block, else -1. */
    int prefixLength() {
        long size = last - first + 1;
        if (Long.bitCount(size) != 1 || (first & (size - 1)) != 0) return -1;
        return 32 - Long.numberOfTrailingZeros(size);
    }

    public InetAddress firstAddress() {
        try {
            return InetAddress.getByAddress(new byte[] {(byte) (first >>> 24), (byte) (first >>> 16), (byte) (first >>> 8), (byte) first});
        } catch (UnknownHostException e) {
            throw new AssertionError(e);
        }
    }

    /** The smallest list of CIDR blocks that covers exactly this range. */
    List<String> cidrs() {
        List<String> out = new ArrayList<>();
        long a = first;
        while (a <= last) {
            int bits = a == 0 ? 32 : Long.numberOfTrailingZeros(a);
            while (bits > 0 && a + (1L << bits) - 1 > last) bits--;
            out.add(format(a) + "/" + (32 - bits));
            a += 1L << bits;
        }
        return out;
    }

    /** nft's element syntax: {@code a.b.c.d}, {@code a.b.c.d/n} or {@code a.b.c.d-e.f.g.h}. */
    String nft() {
        if (single()) return format(first);
        int p = prefixLength();
        return p >= 0 ? format(first) + "/" + p : format(first) + "-" + format(last);
    }

    @Override public int compareTo(Ipv4Range o) {
        return first != o.first ? Long.compare(first, o.first) : Long.compare(last, o.last);
    }

    @Override public String toString() { return nft(); }
}
