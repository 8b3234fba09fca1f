package dev.contree.inspect;

import dev.contree.inspect.InspectException.Kind;
import dev.contree.linux.Dir;
import dev.contree.linux.Linux;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.ref.Cleaner;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.Iterator;
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
 * targets relative to the image root, {@code ..} clamped at {@code /}). On the host nothing is ever
 * resolved from a path string below a layer root: each layer root is an open {@link Dir}, host dirs
 * are reached with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) and every entry is statx'ed,
 * opened (O_NOFOLLOW) or read relative to its parent's descriptor. Names are bytes, carried in
 * strings losslessly by {@link Names}.
 *
 * <p>Thread-safe; caches small directory listings per instance (bounded LRU). Holds one descriptor
 * per layer: close it (a cleaner closes forgotten views).
 */
public final class MergedView implements AutoCloseable {

    public static final int MAX_PATH_BYTES = 4096;
    /**
     * Levels below / that inspect reads (a sandbox can make any number). With paths of at most
     * {@link #MAX_PATH_BYTES} it keeps every host directory one openat2 away from its layer root and a walk's
     * cost linear in what it visits; deeper: 413 naming the limit.
     */
    public static final int MAX_DEPTH = 1024;
    public static final int MAX_SYMLINK_HOPS = 40;
    static final String OPAQUE_XATTR = "trusted.overlay.opaque";
    private static final int LISTING_CACHE_DIRS = 256;
    /** Listings bigger than this are not cached (the cache must stay small whatever the image holds). */
    private static final int LISTING_CACHE_MAX_ENTRIES = 4096;
    private static final int ID_FILE_MAX_BYTES = 4 << 20;
    private static final int O_NONBLOCK = 04000; // a fifo swapped in must never block an open
    private static final Cleaner CLEANER = Cleaner.create();

    public enum Type { FILE, DIR, SYMLINK, CHAR, BLOCK, FIFO, SOCKET }

    /**
     * One entry of the merged view. {@code path} is the absolute image path of the entry (its
     * parent canonicalised), {@code owner}/{@code group} are names from the image's own
     * /etc/passwd and /etc/group, or the decimal id. Names and paths carry raw bytes as
     * {@link Names} strings: use {@link Names#display} / {@link Names#encode} at the edges.
     */
    public record Entry(String name, String path, Type type, long size, int mode, int uid, int gid,
                        String owner, String group, long mtime, long nlink, String symlinkTarget,
                        long rdev) {
        public boolean isDir() { return type == Type.DIR; }
        public boolean isRegular() { return type == Type.FILE; }
        public boolean isSymlink() { return type == Type.SYMLINK; }
        public int rdevMajor() { return Linux.major(rdev); }
        public int rdevMinor() { return Linux.minor(rdev); }
        /** Whether {@code owner} is a resolved name (API: string) rather than a numeric fallback (API: int). */
        public boolean ownerResolved() { return !owner.equals(Integer.toUnsignedString(uid)); }
        public boolean groupResolved() { return !group.equals(Integer.toUnsignedString(gid)); }
    }

    /** One page of a directory listing: {@code total} entries in all, these from {@code offset}. */
    public record Page(String path, List<Entry> entries, int offset, int total) {}

    /** A layer root: its trusted host path (identity only, never resolved again) and its open descriptor. */
    record Layer(Path path, Dir dir) {
        @Override public boolean equals(Object o) { return o instanceof Layer l && l.path.equals(path); }
        @Override public int hashCode() { return path.hashCode(); }
    }

    /** A host entry: a layer and the path bytes below its root ("" for the root itself). */
    record HostRef(Layer layer, byte[] rel) {
        @Override public boolean equals(Object o) {
            return o instanceof HostRef h && h.layer.equals(layer) && Arrays.equals(h.rel, rel);
        }
        @Override public int hashCode() { return layer.hashCode() * 31 + Arrays.hashCode(rel); }

        HostRef child(Dir.Name n) {
            if (rel.length == 0) return new HostRef(layer, n.bytes());
            byte[] r = Arrays.copyOf(rel, rel.length + 1 + n.bytes().length);
            r[rel.length] = '/';
            System.arraycopy(n.bytes(), 0, r, rel.length + 1, n.bytes().length);
            return new HostRef(layer, r);
        }

        private int slash() {
            for (int i = rel.length - 1; i >= 0; i--) if (rel[i] == '/') return i;
            return -1;
        }

        HostRef parent() { int i = slash(); return new HostRef(layer, i < 0 ? new byte[0] : Arrays.copyOf(rel, i)); }
        Dir.Name name() { return new Dir.Name(Arrays.copyOfRange(rel, slash() + 1, rel.length)); }
    }

    /**
     * Internal merged node: the top stat plus, for directories, every host directory that
     * contributes to it (top first; ends at an opaque dir, a whiteout or a non-directory).
     */
    record Node(String name, String path, Linux.Stat st, HostRef host, List<HostRef> dirs, String target) {
        boolean isDir() { return st.isDir(); }
        boolean isSymlink() { return st.isSymlink(); }
        long nlink() { return isDir() && dirs.size() > 1 ? 1 : st.nlink(); } // overlayfs: merged dirs report 1
    }

    /** An open regular file of a layer: the descriptor (for SEEK_DATA/SEEK_HOLE) and a channel on it. */
    record HostFile(int fd, FileChannel channel) implements AutoCloseable {
        @Override public void close() throws IOException {
            try {
                channel.close();
            } finally {
                Linux.close(fd);
            }
        }
    }

    private final List<Layer> layers;
    private final List<Path> layerPaths;
    private final Node root;
    private final Cleaner.Cleanable closer;
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
        List<Layer> open = new ArrayList<>();
        try {
            for (Path p : layerDirsTopFirst) open.add(new Layer(p, Dir.open(p, "/")));
        } catch (IOException e) {
            for (Layer l : open) l.dir().close();
            // The cause names the host path: logs only. Clients get a message without it.
            throw new LayerUnavailableException(e);
        }
        this.layers = List.copyOf(open);
        this.layerPaths = List.copyOf(layerDirsTopFirst);
        List<Dir> dirs = open.stream().map(Layer::dir).toList();
        this.closer = CLEANER.register(this, () -> dirs.forEach(Dir::close));
        List<HostRef> roots = layers.stream().map(l -> new HostRef(l, new byte[0])).toList();
        this.root = new Node("", "/", layers.getFirst().dir().stat(), roots.getFirst(), roots, null);
    }

    /** A layer directory could not be opened (removed, or not a directory); the message has no host path. */
    public static final class LayerUnavailableException extends IOException {
        public LayerUnavailableException(IOException cause) {
            super("a layer of this image is not available", cause);
        }
    }

    public List<Path> layers() { return layerPaths; }

    /** Closes the layer descriptors. */
    @Override
    public void close() {
        closer.clean();
    }

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

    /** Entries of the directory at {@code dir} (a final symlink is followed), sorted by name bytes. */
    public List<Entry> list(String dir) throws IOException {
        return list(dir, 0, Integer.MAX_VALUE, Budget.unlimited()).entries();
    }

    /**
     * One page of the directory at {@code dir}: entries {@code offset .. offset+limit-1} in name-byte
     * order. Reading the directory counts against {@code budget} (its directory-size limit: 413).
     */
    public Page list(String dir, int offset, int limit, Budget budget) throws IOException {
        Node n = resolve(dir, true);
        if (!n.isDir()) throw new InspectException(Kind.NOT_A_DIRECTORY, n.path(), "not a directory: " + display(n.path()));
        Map<String, Node> all = listing(n, budget);
        List<Entry> out = new ArrayList<>();
        int i = 0;
        for (Node c : all.values()) {
            if (i >= offset && out.size() < limit) out.add(entry(c));
            i++;
        }
        return new Page(n.path(), out, offset, all.size());
    }

    /** Contents of the regular file at {@code path} (a final symlink is followed). Caller closes. */
    public InputStream open(String path) throws IOException {
        Node n = resolve(path, true);
        if (n.isDir()) throw new InspectException(Kind.IS_A_DIRECTORY, n.path(), "is a directory: " + display(n.path()));
        if (!n.st().isRegular()) throw new InspectException(Kind.NOT_A_REGULAR_FILE, n.path(), "not a regular file: " + display(n.path()));
        HostFile f = openFile(n);
        Linux.close(f.fd()); // the channel holds its own descriptor on the same open file
        return Channels.newInputStream(f.channel());
    }

    /** The canonical absolute image path of {@code path} (symlinks resolved inside the image). */
    public String realPath(String path) throws IOException {
        return resolve(path, true).path();
    }

    /** Streams a POSIX PAX tar of the subtree at {@code path}; see {@link TarExporter}. */
    public void writeTar(String path, OutputStream out) throws IOException {
        writeTar(path, out, Budget.unlimited());
    }

    /** {@link #writeTar(String, OutputStream)} within {@code budget} (entries and file bytes). */
    public void writeTar(String path, OutputStream out, Budget budget) throws IOException {
        new TarExporter(this, budget).write(resolve(path, false), out);
    }

    /**
     * Entries and file bytes an archive of {@code path} would hold, counted against {@code budget}
     * without reading any file: lets the API refuse (413) before it sends a byte.
     */
    public void sizeTar(String path, Budget budget) throws IOException {
        new TarExporter(this, budget).measure(resolve(path, false));
    }

    /** ripgrep-like search; see {@link Grep}. */
    public GrepResult grep(GrepQuery q) throws IOException {
        return grep(q, Budget.unlimited());
    }

    /** {@link #grep(GrepQuery)} within {@code budget}: past its limits the result is truncated. */
    public GrepResult grep(GrepQuery q, Budget budget) throws IOException {
        return new Grep(this, q, budget).run();
    }

    /** Added / modified / deleted paths going from image {@code a} to image {@code b}; see {@link Differ}. */
    public static DiffResult diff(MergedView a, MergedView b) throws IOException {
        return diff(a, b, Budget.unlimited());
    }

    /** {@link #diff(MergedView, MergedView)} within {@code budget} (entries, content bytes, changes). */
    public static DiffResult diff(MergedView a, MergedView b, Budget budget) throws IOException {
        return new Differ(a, b, budget).run();
    }

    /** ... and at most {@code maxChanges} changed paths (413 past it). */
    public static DiffResult diff(MergedView a, MergedView b, Budget budget, int maxChanges) throws IOException {
        return new Differ(a, b, budget, maxChanges).run();
    }

    /** {@code ls -l}-like text listing of {@code dir} (the API's {@code ?text} variant). */
    public String textListing(String dir) throws IOException {
        return TextListing.render(list(dir));
    }

    /** Text listing of one page (the API caps what it renders). */
    public static String textListing(List<Entry> entries) {
        return TextListing.render(entries);
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
            if (!cur.isDir()) throw new InspectException(Kind.NOT_A_DIRECTORY, cur.path(), "not a directory: " + display(cur.path()));
            Node child = lookup(cur, c);
            if (child == null) throw new InspectException(Kind.NOT_FOUND, join(cur.path(), c), "not found: " + display(path));
            if (child.isSymlink() && (!todo.isEmpty() || followFinal)) {
                if (++hops > MAX_SYMLINK_HOPS) throw new InspectException(Kind.LOOP, display(path), "too many levels of symbolic links: " + display(path));
                String t = child.target();
                if (t.isEmpty() || t.indexOf('\0') >= 0) throw new InspectException(Kind.NOT_FOUND, child.path(), "dangling symlink: " + display(child.path()));
                if (t.startsWith("/")) {
                    stack.clear();
                    stack.push(root);
                }
                pushComponents(todo, t);
                continue;
            }
            if (stack.size() > MAX_DEPTH || !fits(child.path())) throw tooDeep(cur.path());
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
        if (path.length() > MAX_PATH_BYTES || Names.encode(path).length > MAX_PATH_BYTES)
            throw new InspectException(Kind.INVALID_PATH, null, "path longer than " + MAX_PATH_BYTES + " bytes");
    }

    /** Whether an image path is within {@link #MAX_PATH_BYTES} (chars never outnumber its bytes). */
    private static boolean fits(String path) {
        return path.length() <= MAX_PATH_BYTES / 4 || Names.encode(path).length <= MAX_PATH_BYTES;
    }

    /** 413: entries below {@code dir} lie deeper than inspect reads. */
    static InspectException tooDeep(String dir) {
        return new InspectException(Kind.TOO_LARGE, display(dir), "directory tree deeper than inspect reads (at most "
                + MAX_DEPTH + " levels and " + MAX_PATH_BYTES + "-byte paths; the server's limit) below " + display(dir));
    }

    /** Levels below / of a canonical image path. */
    static int depth(String path) {
        if (path.equals("/")) return 0;
        int n = 0;
        for (int i = 0; i < path.length(); i++) if (path.charAt(i) == '/') n++;
        return n;
    }

    /** An image path as clients may see it: escaped bytes as \xHH, NUL as '?', at most 256 chars. */
    public static String display(String path) {
        String p = Names.display(path.replace('\0', '?'));
        return p.length() > 256 ? p.substring(0, 256) + "…" : p;
    }

    static String join(String dir, String name) {
        return dir.equals("/") ? "/" + name : dir + "/" + name;
    }

    private static Dir open(HostRef h) throws IOException {
        if (h.rel().length == 0) return h.layer().dir().openDir("");
        return h.layer().dir().openDir(h.rel(), Names.display(Names.decode(h.rel())));
    }

    /** The merged child {@code name} of directory {@code dir}, or null. */
    Node lookup(Node dir, String name) throws IOException {
        Map<String, Node> cached;
        synchronized (listingCache) {
            cached = listingCache.get(dir.path());
        }
        if (cached != null) return cached.get(name);
        Dir.Name nm;
        try {
            nm = new Dir.Name(Names.encode(name));
        } catch (IllegalArgumentException e) {
            return null; // longer than 255 bytes: no such name can exist
        }
        List<HostRef> dirs = null;
        Node first = null;
        for (int i = 0; i < dir.dirs().size(); i++) {
            HostRef h = dir.dirs().get(i);
            try (Dir d = open(h)) {
                Linux.Stat st = d.statOrNull(nm);
                if (st == null) continue;
                if (st.isWhiteout()) break;
                if (!st.isDir()) {
                    if (first == null) first = node(dir, d, nm, st, h.child(nm), null);
                    break;
                }
                if (first == null) {
                    dirs = new ArrayList<>();
                    first = node(dir, d, nm, st, h.child(nm), dirs);
                }
                dirs.add(h.child(nm));
                if (i < dir.dirs().size() - 1 && isOpaque(d, nm)) break;
            }
        }
        return first;
    }

    private static Node node(Node parent, Dir d, Dir.Name nm, Linux.Stat st, HostRef host, List<HostRef> dirs) throws IOException {
        String target = st.isSymlink() ? Names.decode(d.readlink(nm)) : null;
        String name = Names.decode(nm.bytes());
        return new Node(name, join(parent.path(), name), st, host, dirs, target);
    }

    private static boolean isOpaque(Dir d, Dir.Name nm) throws IOException {
        byte[] v = d.getxattr(nm, OPAQUE_XATTR);
        return v != null && v.length == 1 && v[0] == 'y';
    }

    /** Cached listing of a merged directory (for interactive use: list, lookups). */
    Map<String, Node> listing(Node dir) throws IOException {
        return listing(dir, Budget.unlimited());
    }

    private Map<String, Node> listing(Node dir, Budget budget) throws IOException {
        synchronized (listingCache) {
            Map<String, Node> m = listingCache.get(dir.path());
            if (m != null) return m;
        }
        Map<String, Node> m = readDir(dir, budget);
        if (m.size() <= LISTING_CACHE_MAX_ENTRIES) {
            synchronized (listingCache) {
                listingCache.put(dir.path(), m);
            }
        }
        return m;
    }

    Map<String, Node> readDir(Node dir) throws IOException {
        return readDir(dir, Budget.unlimited());
    }

    /** What {@link #walk} does with one entry; returns whether to descend into it when it is a directory. */
    interface Visitor {
        boolean visit(Node n) throws IOException;
    }

    /**
     * Depth-first, children by name bytes, with an explicit stack (a hostile tree is deeper than any thread's
     * stack); {@link #readDir} refuses to go deeper than {@link #MAX_DEPTH}. {@code start} itself is visited
     * first when {@code includeStart}, else only what is below it.
     */
    void walk(Node start, boolean includeStart, Budget budget, Visitor visitor) throws IOException {
        Deque<Iterator<Node>> stack = new ArrayDeque<>();
        stack.push((includeStart ? List.of(start) : readDir(start, budget).values()).iterator());
        while (!stack.isEmpty()) {
            Iterator<Node> it = stack.peek();
            if (!it.hasNext()) {
                stack.pop();
                continue;
            }
            Node n = it.next();
            if (visitor.visit(n) && n.isDir()) stack.push(readDir(n, budget).values().iterator());
        }
    }

    /**
     * Reads a merged directory, one statx per host entry: walks the contributing host dirs top
     * first; a name is settled by its first whiteout or non-directory, or by an opaque directory.
     * Entries are sorted by name bytes. Not cached (tree walks would flood the cache). At most
     * {@link Budget#maxDirEntries()} host entries are read (413 past it); the merged entries count
     * against the budget's entries.
     */
    Map<String, Node> readDir(Node dir, Budget budget) throws IOException {
        record Acc(Linux.Stat st, HostRef host, List<HostRef> dirs, boolean whiteout, boolean[] closed, String target) {}
        dirReads.incrementAndGet();
        budget.check();
        if (depth(dir.path()) >= MAX_DEPTH) throw tooDeep(dir.path());
        int dirBytes = dir.path().equals("/") ? 0 : Names.encode(dir.path()).length;
        Map<Dir.Name, Acc> acc = new TreeMap<>();
        List<HostRef> dirs = dir.dirs();
        int seen = 0, max = budget.maxDirEntries();
        for (int i = 0; i < dirs.size(); i++) {
            boolean last = i == dirs.size() - 1;
            HostRef h = dirs.get(i);
            try (Dir d = open(h)) {
                List<Dir.Name> names = d.listAtMost(max - seen + 1);
                seen += names.size();
                if (seen > max) throw new InspectException(Kind.TOO_LARGE, dir.path(), "directory " + display(dir.path())
                        + " has more than " + max + " entries (the server's limit for one directory)");
                int k = 0;
                for (Dir.Name nm : names) {
                    if ((++k & 1023) == 0) budget.check();
                    if (dirBytes + 1 + nm.bytes().length > MAX_PATH_BYTES) throw tooDeep(dir.path());
                    Acc a = acc.get(nm);
                    if (a != null && a.closed()[0]) continue;
                    Linux.Stat st = d.statOrNull(nm);
                    if (st == null) continue;
                    if (st.isWhiteout() || !st.isDir()) {
                        if (a == null) acc.put(nm, new Acc(st, h.child(nm), null, st.isWhiteout(), new boolean[] {true},
                                st.isSymlink() ? Names.decode(d.readlink(nm)) : null));
                        else a.closed()[0] = true;
                        continue;
                    }
                    if (a == null) {
                        a = new Acc(st, h.child(nm), new ArrayList<>(), false, new boolean[] {false}, null);
                        acc.put(nm, a);
                    }
                    a.dirs().add(h.child(nm));
                    if (!last && isOpaque(d, nm)) a.closed()[0] = true;
                }
            }
        }
        Map<String, Node> out = new LinkedHashMap<>();
        for (Map.Entry<Dir.Name, Acc> e : acc.entrySet()) {
            Acc a = e.getValue();
            if (a.whiteout()) continue;
            String name = Names.decode(e.getKey().bytes());
            out.put(name, new Node(name, join(dir.path(), name), a.st(), a.host(), a.dirs(), a.target()));
        }
        budget.countEntries(out.size());
        return Collections.unmodifiableMap(out);
    }

    /** Merged directory reads so far (tests check that diffs skip shared subtrees). */
    long dirReads() { return dirReads.get(); }

    /** Opens the regular file behind {@code n}, never through a symlink, and checks it is the inode listed. */
    HostFile openFile(Node n) throws IOException {
        try (Dir parent = open(n.host().parent())) {
            int fd = parent.openFile(n.host().name(), Linux.O_RDONLY | O_NONBLOCK, 0);
            try {
                Linux.Stat st = Dir.fstat(fd);
                if (!st.isRegular() || st.ino() != n.st().ino() || st.dev() != n.st().dev())
                    throw new IOException("file changed while inspected: " + display(n.path()));
                return new HostFile(fd, Dir.channel(fd, StandardOpenOption.READ));
            } catch (IOException | RuntimeException e) {
                Linux.close(fd);
                throw e;
            }
        }
    }

    /** Extended attribute names of the host entry behind {@code n}. */
    List<String> xattrNames(Node n) throws IOException {
        if (n.host().rel().length == 0) return Linux.llistxattr(n.host().layer().path()); // a trusted layer root
        try (Dir parent = open(n.host().parent())) {
            return parent.listxattr(n.host().name());
        }
    }

    /** One extended attribute of the host entry behind {@code n}; null when absent. */
    byte[] xattr(Node n, String attr) throws IOException {
        if (n.host().rel().length == 0) return Linux.lgetxattr(n.host().layer().path(), attr);
        try (Dir parent = open(n.host().parent())) {
            return parent.getxattr(n.host().name(), attr);
        }
    }

    Entry entry(Node n) throws IOException {
        Linux.Stat st = n.st();
        Type type = typeOf(st.mode());
        int uid = st.uid(), gid = st.gid();
        String owner = userName(uid).orElse(Integer.toUnsignedString(uid));
        String group = groupName(gid).orElse(Integer.toUnsignedString(gid));
        return new Entry(n.name(), n.path(), type, st.size(), st.mode(), uid, gid, owner, group,
                st.mtimeSec(), n.nlink(), n.target() == null ? "" : n.target(), st.rdev());
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
        try (HostFile f = openFile(n); InputStream in = Channels.newInputStream(f.channel())) {
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
