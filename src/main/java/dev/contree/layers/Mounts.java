package dev.contree.layers;

import dev.contree.linux.Linux;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/** overlay mount/umount via mount(2)/umount2(2), and reading /proc/self/mountinfo. */
final class Mounts {
    static final long MS_RDONLY = 1, MS_NOSUID = 2, MS_NODEV = 4;
    static final int MNT_DETACH = 2;
    /** mount(2) copies at most one page of option data. */
    static final int MAX_OPTIONS = 4095;

    /**
     * Options that keep the upper dir a plain, portable overlay upper: no index, no metacopy-only inodes,
     * no redirect xattrs (a directory rename copies the tree instead), no xino bits in inode numbers and
     * no uuid xattr on the upper root. The kernel still writes trusted.overlay.origin/impure on copy-up;
     * readers ignore them and compaction drops them. xino is moot: btrfs subvolumes share one superblock,
     * so overlay runs in "same fs" mode and reports real inode numbers, which can repeat across layers.
     */
    static final String PORTABLE_OPTIONS = "index=off,metacopy=off,redirect_dir=off,xino=off,uuid=null";
    /**
     * Writable mounts are volatile: no sync of the upper fs on syncfs/fsync/umount. Without it umount
     * syncs the whole btrfs (4-250 ms, growing with everyone's dirty data). An unclean shutdown marks the
     * work dir so the upper cannot be remounted; uncommitted layers are deleted on open anyway, and a
     * committed layer's durability comes from btrfs transactions.
     */
    static final String VOLATILE = "volatile";

    private Mounts() {}

    static String overlayOptions(List<Path> lowerTopFirst, Path upper, Path work) {
        StringBuilder sb = new StringBuilder("lowerdir=");
        for (int i = 0; i < lowerTopFirst.size(); i++) {
            if (i > 0) sb.append(':');
            sb.append(escape(lowerTopFirst.get(i).toString()));
        }
        if (upper != null) sb.append(",upperdir=").append(escape(upper.toString()))
                .append(",workdir=").append(escape(work.toString())).append(',').append(VOLATILE);
        return sb.append(',').append(PORTABLE_OPTIONS).toString();
    }

    private static String escape(String p) {
        if (p.indexOf(':') >= 0 || p.indexOf(',') >= 0 || p.indexOf('\\') >= 0) {
            throw new IllegalArgumentException("overlay path must not contain ':', ',' or '\\': " + p);
        }
        return p;
    }

    /**
     * Mounts an overlay with nosuid+nodev (its content is untrusted: on the host a setuid file or device node
     * in it must mean nothing; inside a sandbox noNewPrivileges already ignores setuid and the runtime supplies
     * /dev). upper==null gives a read-only view (needs at least two lowers).
     */
    static void mountOverlay(List<Path> lowerTopFirst, Path upper, Path work, Path target) throws IOException {
        String opts = overlayOptions(lowerTopFirst, upper, work);
        if (opts.length() > MAX_OPTIONS) {
            throw new IOException("overlay options for " + lowerTopFirst.size() + " lower layers are " + opts.length()
                    + " bytes, more than one page; compact the layer chain first");
        }
        long flags = MS_NOSUID | MS_NODEV | (upper == null ? MS_RDONLY : 0);
        Linux.mount("overlay", target, "overlay", flags, opts);
    }

    static void unmount(Path target) throws IOException {
        try {
            Linux.umount2(target, 0);
        } catch (Linux.ErrnoException e) {
            if (e.errno() != Linux.EBUSY) throw e;
            // Someone still has a file open or cwd inside: detach so the namespace is clean; the kernel
            // finishes once the last reference goes.
            Linux.umount2(target, MNT_DETACH);
        }
    }

    static boolean isMountPoint(Path p) throws IOException {
        String s = p.toAbsolutePath().normalize().toString();
        for (String[] m : mountinfo()) if (m[4].equals(s)) return true;
        return false;
    }

    /** Mount points strictly below {@code dir}, deepest first (so they can be unmounted in order). */
    static List<Path> mountsUnder(Path dir) throws IOException {
        String prefix = dir.toAbsolutePath().normalize() + "/";
        List<Path> out = new ArrayList<>();
        for (String[] m : mountinfo()) if (m[4].startsWith(prefix)) out.add(Path.of(m[4]));
        out.sort(Comparator.comparingInt((Path p) -> p.getNameCount()).reversed());
        return out;
    }

    private static List<String[]> mountinfo() throws IOException {
        List<String[]> out = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            String[] f = line.split(" ");
            if (f.length < 5) continue;
            f[4] = unescape(f[4]);
            out.add(f);
        }
        return out;
    }

    private static String unescape(String s) {
        if (s.indexOf('\\') < 0) return s;
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 3 < s.length()) {
                sb.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }
}
