package dev.contree.inspect;

import dev.contree.inspect.InspectException.Kind;
import dev.contree.linux.Linux;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * A read-only merged view of an image, computed in Java from its overlayfs "upper"-format layer
 * directories (top first), without mounting anything. Whiteouts (char 0/0) and opaque
 * directories ({@code trusted.overlay.opaque=y}) are honoured the way overlayfs does.
 *
 * <p>Safety: image paths are resolved like a chroot (symlinks resolved inside the image, absolute
 * targets relative to the image root, {@code ..} clamped at {@code /}). On the host every access
 * is an lstat/O_NOFOLLOW of {@code layerDir/<components>} where each component is a plain name
 * (never "", ".", ".." or containing '/') and each parent was seen to be a real directory. Layers
 * are immutable while inspected; we do not defend against a layer being modified concurrently.
 *
 * <p>Thread-safe; caches directory listings per instance (bounded LRU).
 */
public final class MergedView {

    public static final int MAX_PATH_BYTES = 4096;
    public static final int MAX_SYMLINK_HOPS = 40;
    static final String OPAQUE_XATTR = "trusted.overlay.opaque";
    private static final int LISTING_CACHE_DIRS = 256;
    private static final int ID_FILE_MAX_BYTES = 4 << 20;

    public enum Type { FILE, DIR, SYMLINK, CHAR, BLOCK, FIFO, SOCKET }

    /**
     * One entry of the merged view. {@code path} is the absolute image path of the entry (its
     * parent canonicalised), {@code owner}/{@code group} are names from the image's own
     * /etc/passwd and /etc/group, or the decimal id. {@code host} is the top-most host file
     * backing it (for streaming; never expose it to clients).
     */
    public record Entry(String name, String path, Type type, long size, int mode, int uid, int gid,
                        String owner, String group, long mtime, long nlink, String symlinkTarget,
                        long rdev, Path host) {
        public boolean isDir() { return type == Type.DIR; }
        public boolean isRegular() { return type == Type.FILE; }
        public boolean isSymlink() { return type == Type.SYMLINK; }
        public int rdevMajor() { return Linux.major(rdev); }
        public int rdevMinor() { return Linux.minor(rdev); }
        /** Whether {@code owner} is a resolved name (API: string) rather than a numeric fallback (API: int). */
        public boolean ownerResolved() { return !owner.equals(Integer.toUnsignedString(uid)); }
        public boolean groupResolved() { return !group.equals(Integer.toUnsignedString(gid)); }
    }

    /**
     * Internal merged node: the top stat plus, for directories, every host directory that
     * contributes to it (top first; ends at an opaque dir, a whiteout or a non-directory).
     */
    record Node(String name, String path, Linux.Stat st, Path host, List<Path> dirs, String target) {
        boolean isDir() { return st.isDir(); }
        boolean isSymlink() { return st.isSymlink(); }
        long nlink() { return isDir() && dirs.size() > 1 ? 1 : st.nlink(); } // overlayfs: merged dirs report 1
    }

    private final List<Path> layers;
    private final Node root;
    private final Map<String, Map<String, Node>> listingCache =
            new LinkedHashMap<>(64, 0.75f, true) {
                @Override protected boolean removeEldestEntry(Map.Entry<String, Map<String, Node>> e) {
                    return size() > LISTING_CACHE_DIRS;
                }
            };
    private final java.util.concurrent.atomic.AtomicLong dirReads = new java.util.concurrent.atomic.AtomicLong();
    private volatile Map<Integer, String> users;
    private volatile Map<Integer, String> groups;

    /** @param layerDirsTopFirst layer directories, the top-most (newest) first; at least one. */
    public MergedView(List<Path> layerDirsTopFirst) throws IOException {
        if (layerDirsTopFirst.isEmpty()) throw new IllegalArgumentException("an image needs at least one layer");
        this.layers = List.copyOf(layerDirsTopFirst);
        for (Path l : layers) {
            Linux.Stat st = Linux.lstatOrNull(l);
            if (st == null || !st.isDir()) throw new IOException("layer is not a directory: " + l);
        }
        Path top = layers.getFirst();
        this.root = new Node("", "/", Linux.lstat(top), top, layers, null);
    }

    public List<Path> layers() { return layers; }

    // ------------------------------------------------------------------ public operations

    /**
     * Metadata of the entry at {@code path}; intermediate symlinks are always followed (inside the
     * image), the final one only when asked. Empty when nothing is there (ENOENT, or a
     * non-final component is not a directory).
     *
     * @throws InspectException INVALID_PATH or LOOP
     */
    public Optional<Entry> stat(String path, boolean followFinalSymlink) throws IOException {
        try {
            return Optional.of(entry(resolve(path, followFinalSymlink)));
        } catch (InspectException e) {
            if (e.kind() == Kind.NOT_FOUND || e.kind() == Kind.NOT_A_DIRECTORY) return Optional.empty();
            throw e;
        }
    }

    /** Entries of the directory at {@code dir} (a final symlink is followed), sorted by name. */
    public List<Entry> list(String dir) throws IOException {
        Node n = resolve(dir, true);
        if (!n.isDir()) throw new InspectException(Kind.NOT_A_DIRECTORY, n.path(), "not a directory: " + n.path());
        List<Entry> out = new ArrayList<>();
        for (Node c : listing(n).values()) out.add(entry(c));
        return out;
    }

    /** Contents of the regular file at {@code path} (a final symlink is followed). Caller closes. */
    public InputStream open(String path) throws IOException {
        Node n = resolve(path, true);
        if (n.isDir()) throw new InspectException(Kind.IS_A_DIRECTORY, n.path(), "is a directory: " + n.path());
        if (!n.st().isRegular()) throw new InspectException(Kind.NOT_A_REGULAR_FILE, n.path(), "not a regular file: " + n.path());
        return Files.newInputStream(n.host(), StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS);
    }

    /** The canonical absolute image path of {@code path} (symlinks resolved inside the image). */
    public String realPath(String path) throws IOException {
        return resolve(path, true).path();
    }

    /** Streams a POSIX PAX tar of the subtree at {@code path}; see {@link TarExporter}. */
    public void writeTar(String path, OutputStream out) throws IOException {
        new TarExporter(this).write(resolve(path, false), out);
    }

    /** ripgrep-like search; see {@link Grep}. */
    public GrepResult grep(GrepQuery q) throws IOException {
        return new Grep(this, q).run();
    }

    /** Added / modified / deleted paths going from image {@code a} to image {@code b}; see {@link Differ}. */
    public static DiffResult diff(MergedView a, MergedView b) throws IOException {
        return new Differ(a, b).run();
    }

    /** {@code ls -l}-like text listing of {@code dir} (the API's {@code ?text} variant). */
    public String textListing(String dir) throws IOException {
        return TextListing.render(list(dir));
    }

    /** Name of {@code uid} in the image's /etc/passwd, if any. */
    public Optional<String> userName(int uid) throws IOException {
        Map<Integer, String> m = users;
        if (m == null) users = m = readIdFile("/etc/passwd");
        return Optional.ofNullable(m.get(uid));
    }

    /** Name of {@code gid} in the image's /etc/group, if any. */
    public Optional<String> groupName(int gid) throws IOException {
        Map<Integer, String> m = groups;
        if (m == null) groups = m = readIdFile("/etc/group");
        return Optional.ofNullable(m.get(gid));
    }

    // ------------------------------------------------------------------ resolution

    Node root() { return root; }

    /** Chroot-like resolution of an image path. */
    Node resolve(String path, boolean followFinal) throws IOException {
        checkPath(path);
        Deque<String> todo = new ArrayDeque<>();
        pushComponents(todo, path);
        if (path.endsWith("/")) followFinal = true; // "link/" means the directory it points to
        Deque<Node> stack = new ArrayDeque<>();
        stack.push(root);
        int hops = 0;
        while (!todo.isEmpty()) {
            String c = todo.pop();
            if (c.equals("..")) {
                if (stack.size() > 1) stack.pop();
                continue;
            }
            Node cur = stack.peek();
            if (!cur.isDir()) throw new InspectException(Kind.NOT_A_DIRECTORY, cur.path(), "not a directory: " + cur.path());
            Node child = lookup(cur, c);
            if (child == null) throw new InspectException(Kind.NOT_FOUND, join(cur.path(), c), "not found: " + display(path));
            if (child.isSymlink() && (!todo.isEmpty() || followFinal)) {
                if (++hops > MAX_SYMLINK_HOPS) throw new InspectException(Kind.LOOP, display(path), "too many levels of symbolic links: " + display(path));
                String t = child.target();
                if (t.isEmpty() || t.indexOf('\0') >= 0) throw new InspectException(Kind.NOT_FOUND, child.path(), "dangling symlink: " + child.path());
                if (t.startsWith("/")) {
                    stack.clear();
                    stack.push(root);
                }
                pushComponents(todo, t);
                continue;
            }
            stack.push(child);
        }
        return stack.peek();
    }

    private static void pushComponents(Deque<String> todo, String path) {
        String[] parts = path.split("/");
        for (int i = parts.length - 1; i >= 0; i--) {
            String p = parts[i];
            if (!p.isEmpty() && !p.equals(".")) todo.push(p);
        }
    }

    static void checkPath(String path) {
        if (path == null) throw new InspectException(Kind.INVALID_PATH, null, "path is required");
        if (path.indexOf('\0') >= 0) throw new InspectException(Kind.INVALID_PATH, display(path), "path contains a NUL byte");
        if (path.length() > MAX_PATH_BYTES || path.getBytes(StandardCharsets.UTF_8).length > MAX_PATH_BYTES)
            throw new InspectException(Kind.INVALID_PATH, null, "path longer than " + MAX_PATH_BYTES + " bytes");
    }

    static String display(String path) {
        String p = path.replace('\0', '?');
        return p.length() > 256 ? p.substring(0, 256) + "…" : p;
    }

    static String join(String dir, String name) {
        return dir.equals("/") ? "/" + name : dir + "/" + name;
    }

    /** The merged child {@code name} of directory {@code dir}, or null. */
    Node lookup(Node dir, String name) throws IOException {
        Map<String, Node> cached;
        synchronized (listingCache) {
            cached = listingCache.get(dir.path());
        }
        if (cached != null) return cached.get(name);
        if (name.getBytes(StandardCharsets.UTF_8).length > 255) return null;
        List<Path> dirs = null;
        Node first = null;
        for (int i = 0; i < dir.dirs().size(); i++) {
            Path p = dir.dirs().get(i).resolve(name);
            Linux.Stat st = Linux.lstatOrNull(p);
            if (st == null) continue;
            if (st.isWhiteout()) break;
            if (!st.isDir()) {
                if (first == null) first = node(dir, name, st, p, null);
                break;
            }
            if (first == null) {
                dirs = new ArrayList<>();
                first = node(dir, name, st, p, dirs);
            }
            dirs.add(p);
            if (i < dir.dirs().size() - 1 && isOpaque(p)) break;
        }
        return first;
    }

    private Node node(Node parent, String name, Linux.Stat st, Path host, List<Path> dirs) throws IOException {
        String target = st.isSymlink() ? Files.readSymbolicLink(host).toString() : null;
        return new Node(name, join(parent.path(), name), st, host, dirs, target);
    }

    static boolean isOpaque(Path dir) throws IOException {
        byte[] v = Linux.lgetxattr(dir, OPAQUE_XATTR);
        return v != null && v.length == 1 && v[0] == 'y';
    }

    /** Cached listing of a merged directory (for interactive use: list, lookups). */
    Map<String, Node> listing(Node dir) throws IOException {
        synchronized (listingCache) {
            Map<String, Node> m = listingCache.get(dir.path());
            if (m != null) return m;
        }
        Map<String, Node> m = readDir(dir);
        synchronized (listingCache) {
            listingCache.put(dir.path(), m);
        }
        return m;
    }

    /**
     * Reads a merged directory, one lstat per host entry: walks the contributing host dirs top
     * first; a name is settled by its first whiteout or non-directory, or by an opaque directory.
     * Entries are sorted by name. Not cached (tree walks would flood the cache).
     */
    Map<String, Node> readDir(Node dir) throws IOException {
        record Acc(Linux.Stat st, Path host, List<Path> dirs, boolean whiteout, boolean[] closed) {}
        dirReads.incrementAndGet();
        Map<String, Acc> acc = new TreeMap<>();
        List<Path> dirs = dir.dirs();
        for (int i = 0; i < dirs.size(); i++) {
            boolean last = i == dirs.size() - 1;
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(dirs.get(i))) {
                for (Path p : ds) {
                    String name = p.getFileName().toString();
                    Acc a = acc.get(name);
                    if (a != null && a.closed()[0]) continue;
                    Linux.Stat st;
                    try {
                        st = Linux.lstatOrNull(p);
                    } catch (Linux.ErrnoException e) {
                        if (e.errno() == Linux.ENAMETOOLONG) continue;
                        throw e;
                    }
                    if (st == null) continue;
                    if (st.isWhiteout() || !st.isDir()) {
                        if (a == null) acc.put(name, new Acc(st, p, null, st.isWhiteout(), new boolean[] {true}));
                        else a.closed()[0] = true;
                        continue;
                    }
                    if (a == null) {
                        a = new Acc(st, p, new ArrayList<>(), false, new boolean[] {false});
                        acc.put(name, a);
                    }
                    a.dirs().add(p);
                    if (!last && isOpaque(p)) a.closed()[0] = true;
                }
            }
        }
        Map<String, Node> out = new LinkedHashMap<>();
        for (Map.Entry<String, Acc> e : acc.entrySet()) {
            Acc a = e.getValue();
            if (a.whiteout()) continue;
            out.put(e.getKey(), node(dir, e.getKey(), a.st(), a.host(), a.dirs()));
        }
        return Collections.unmodifiableMap(out);
    }

    /** Merged directory reads so far (tests check that diffs skip shared subtrees). */
    long dirReads() { return dirReads.get(); }

    Entry entry(Node n) throws IOException {
        Linux.Stat st = n.st();
        Type type = typeOf(st.mode());
        int uid = st.uid(), gid = st.gid();
        String owner = userName(uid).orElse(Integer.toUnsignedString(uid));
        String group = groupName(gid).orElse(Integer.toUnsignedString(gid));
        return new Entry(n.name(), n.path(), type, st.size(), st.mode(), uid, gid, owner, group,
                st.mtimeSec(), n.nlink(), n.target() == null ? "" : n.target(),
                st.rdev(), n.host());
    }

    static Type typeOf(int mode) {
        return switch (mode & Linux.S_IFMT) {
            case Linux.S_IFDIR -> Type.DIR;
            case Linux.S_IFLNK -> Type.SYMLINK;
            case Linux.S_IFCHR -> Type.CHAR;
            case Linux.S_IFBLK -> Type.BLOCK;
            case Linux.S_IFIFO -> Type.FIFO;
            case Linux.S_IFSOCK -> Type.SOCKET;
            default -> Type.FILE;
        };
    }

    /** Parses name:x:id:... lines (passwd and group share the shape); first name per id wins. */
    private Map<Integer, String> readIdFile(String path) throws IOException {
        Map<Integer, String> m = new HashMap<>();
        Node n;
        try {
            n = resolve(path, true);
        } catch (InspectException e) {
            return m;
        }
        if (!n.st().isRegular() || n.st().size() > ID_FILE_MAX_BYTES) return m;
        String text;
        try (InputStream in = Files.newInputStream(n.host(), LinkOption.NOFOLLOW_LINKS)) {
            text = new String(in.readNBytes(ID_FILE_MAX_BYTES), StandardCharsets.UTF_8);
        }
        for (String line : text.split("\n")) {
            String[] f = line.split(":", -1);
            if (f.length < 3 || f[0].isEmpty() || f[0].startsWith("#")) continue;
            try {
                m.putIfAbsent(Integer.parseUnsignedInt(f[2].trim()), f[0]);
            } catch (NumberFormatException ignored) {
                // malformed line: skip, like getpwuid would
            }
        }
        return m;
    }
}
