package dev.contree.layers;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import dev.contree.linux.Dir;
import dev.contree.linux.Linux;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * The snapshot store: layers are btrfs subvolumes holding overlayfs upper dirs.
 *
 * <p>On-disk layout under {@code root} (a btrfs filesystem, loop-mounted from {@code <root>.img} if
 * {@code root} is not on btrfs already):
 * <pre>
 *   layers/&lt;id&gt;/diff             committed layer: read-only subvolume; diff is the upper-format tree
 *   sizes/&lt;id&gt;                 bytes of file data of a committed layer, measured once at commit
 *                              (outside the layer: a layer that filled its quota has no room left)
 *   layers/.pending-&lt;id&gt;/diff, work  writable subvolumes (prepare/create/compact in progress)
 *   mnt/&lt;id&gt;                   overlay mount point (rootfs) of a prepared layer
 *   empty/                     the lowerdir of a layer prepared with no lower layers
 * </pre>
 * A layer is committed (visible in {@link #layerIds()}) exactly when its subvolume is in {@code layers/},
 * by an atomic rename from {@code layers/.pending-<id>}; it is marked read-only in the background soon
 * after (see {@link QuietWork}): nothing writes it meanwhile, it is only ever an overlay lower. (The
 * rename stays inside one directory because the VFS refuses to move a read-only directory to another
 * parent: that would rewrite its "..".) On open every {@code .pending-*} subvolume and every mount
 * below root is removed, and a committed layer still writable is marked read-only.
 *
 * <p>Layer content and a prepared rootfs are hostile trees (a sandbox or an image wrote them): every walk
 * of them goes through {@link Dir} (no symlink followed, names as bytes); only the store's own
 * directories above ({@code layers/}, {@code mnt/}, {@code sizes/}) are handled as paths. What
 * {@link #secureMountPoints} replaced is remembered in memory only: a crash before commit deletes the
 * pending layer anyway.
 *
 * <p>Thread-safe: operations on different layers may run concurrently.
 */
public final class LayerStore implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(LayerStore.class);
    private static final Pattern ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,127}");
    private static final SecureRandom RANDOM = new SecureRandom();
    /** Compacted layers: sum of the policy weights of their sources, so merged layers grow like LSM tiers. */
    private static final String WEIGHT = "compaction-weight";
    private static final Dir.Name DIFF = Dir.Name.of("diff");
    /**
     * Levels a layer's tree may have (a sandbox can make any number): deeper, the commit fails and nothing is
     * kept. It bounds the size walk and compaction (names on the path, descriptors: see {@link dev.contree.linux.DirStack})
     * and is 4x the depth at which paths outgrow PATH_MAX, which ordinary software never reaches.
     */
    public static final int MAX_TREE_DEPTH = 8192;

    private final Path root;
    private final LayerStoreConfig config;
    private static final String PENDING = ".pending-";
    private final Path layersDir, mntDir, emptyDir, sizesDir;
    private final boolean mountedImage;
    private final boolean quotasEnforced;
    private final Set<Prepared> active = ConcurrentHashMap.newKeySet();
    private final List<String> recovered = new ArrayList<>();
    /** Seals committed and deletes discarded layers in the background, when the store is quiet. */
    private final QuietWork background;
    private volatile boolean closed;

    private LayerStore(Path root, LayerStoreConfig config, boolean mountedImage, boolean quotasEnforced) {
        this.root = root;
        this.config = config;
        this.layersDir = root.resolve("layers");
        this.mntDir = root.resolve("mnt");
        this.emptyDir = root.resolve("empty");
        this.sizesDir = root.resolve("sizes");
        this.mountedImage = mountedImage;
        this.quotasEnforced = quotasEnforced;
        this.background = new QuietWork(100, 10_000);
    }

    /**
     * Opens (and if needed creates, formats and loop-mounts) the store at {@code root}, enables btrfs
     * simple quotas, and cleans up what a crash left behind: mounts below root and uncommitted layers.
     */
    public static LayerStore open(Path root, LayerStoreConfig config) throws IOException {
        root = root.toAbsolutePath().normalize();
        Files.createDirectories(root);
        boolean mounted = false;
        if (!Btrfs.isBtrfs(root)) {
            Path img = root.resolveSibling(root.getFileName() + ".img");
            if (!Files.exists(img)) {
                Path tmp = root.resolveSibling(root.getFileName() + ".img.tmp");
                try (RandomAccessFile f = new RandomAccessFile(tmp.toFile(), "rw")) {
                    f.setLength(config.imageSizeBytes()); // sparse
                }
                run("mkfs.btrfs", "-q", "-f", tmp.toString());
                Files.move(tmp, img, StandardCopyOption.ATOMIC_MOVE);
                log.info("created btrfs image {} ({} bytes, sparse)", img, config.imageSizeBytes());
            }
            // Layers hold whatever sandboxes wrote (setuid binaries, device nodes): inert on the host.
            run("mount", "-o", "loop,nosuid,nodev", img.toString(), root.toString());
            mounted = true;
            if (!Btrfs.isBtrfs(root)) throw new IOException(root + " is not btrfs after mounting " + img);
        }
        boolean quotas;
        try {
            Btrfs.quotaCtl(root, Btrfs.QUOTA_CTL_ENABLE_SIMPLE_QUOTA);
            quotas = true;
        } catch (IOException e) {
            log.warn("btrfs simple quotas unavailable ({}); writable layers are NOT size-capped "
                    + "(simple quotas need Linux >= 6.7)", e.getMessage());
            quotas = false;
        }
        LayerStore store = new LayerStore(root, config, mounted, quotas);
        try {
            store.recover();
        } catch (IOException | RuntimeException e) {
            store.close();
            throw e;
        }
        return store;
    }

    private void recover() throws IOException {
        for (Path d : List.of(layersDir, mntDir, emptyDir, sizesDir)) Files.createDirectories(d);
        for (Path m : Mounts.mountsUnder(root)) {
            recovered("unmounted stale mount " + m);
            Linux.umount2(m, Mounts.MNT_DETACH);
        }
        for (String name : UpperDir.list(layersDir)) {
            if (!name.startsWith(PENDING)) continue;
            deletePending(name.substring(PENDING.length()));
            recovered("deleted uncommitted layer " + name);
        }
        for (String name : UpperDir.list(mntDir)) {
            UpperDir.deleteRecursively(mntDir.resolve(name));
            recovered("removed stale mount point mnt/" + name);
        }
        for (String name : UpperDir.list(layersDir)) {
            Path layer = layersDir.resolve(name);
            if (name.startsWith(".") || Btrfs.isReadOnly(layer)) continue;
            Btrfs.setReadOnly(layer, true);
            recovered("sealed layer " + name + " that a crash left writable");
        }
        for (String name : UpperDir.list(sizesDir)) {
            if (Files.isDirectory(layersDir.resolve(name))) continue;
            Files.delete(sizesDir.resolve(name)); // its layer never made it
            recovered("removed size record sizes/" + name + " of a layer that never made it");
        }
        try (Dir empty = Dir.open(emptyDir, "/")) {
            if (!empty.isEmpty()) throw new IOException(emptyDir + " must be empty");
        }
    }

    private void recovered(String what) {
        log.warn("{}", what);
        recovered.add(what);
    }

    /** What {@link #open}'s recovery changed, in order (fsck --repair reports it). */
    public List<String> recovered() {
        return List.copyOf(recovered);
    }

    /** Whether writable layers are capped (btrfs simple quotas are on). */
    public boolean quotasEnforced() {
        return quotasEnforced;
    }

    public Path root() {
        return root;
    }

    public LayerStoreConfig config() {
        return config;
    }

    /**
     * Creates a writable layer on top of {@code lowerLayerIdsTopFirst} (may be empty): a new subvolume
     * capped at {@code capBytes} (0 = no cap), with diff/ and work/, overlay-mounted (nodev) at a fresh
     * directory. Cost is independent of the number and size of layers.
     */
    public WritableLayer prepare(List<String> lowerLayerIdsTopFirst, long capBytes) throws IOException {
        background.activity();
        ensureOpen();
        if (capBytes < 0) throw new IllegalArgumentException("capBytes < 0");
        List<Path> lowers = new ArrayList<>();
        for (String l : lowerLayerIdsTopFirst) lowers.add(committedDiff(l));
        String id = newId();
        Path subvol = pendingSubvol(id);
        Btrfs.createSubvolume(layersDir, PENDING + id);
        Path rootfs = mntDir.resolve(id);
        try {
            if (capBytes > 0 && quotasEnforced) Btrfs.limit(subvol, capBytes);
            Path diff = Files.createDirectory(subvol.resolve("diff"));
            Path work = Files.createDirectory(subvol.resolve("work"));
            Files.createDirectory(rootfs);
            Mounts.mountOverlay(lowers.isEmpty() ? List.of(emptyDir) : lowers, diff, work, rootfs);
            Prepared p = new Prepared(id, rootfs, diff, capBytes, List.copyOf(lowerLayerIdsTopFirst));
            active.add(p);
            return p;
        } catch (IOException | RuntimeException e) {
            try {
                Files.deleteIfExists(rootfs);
                deletePending(id);
            } catch (IOException ce) {
                e.addSuppressed(ce);
            }
            throw e;
        }
    }

    /**
     * Unmounts the layer, drops work/ and the {@code scratchPaths} the runtime created, puts back what
     * {@link #secureMountPoints} replaced if the run left it empty (see {@link ScratchPaths}), and then: an empty upper dir returns empty ("unchanged"; the subvolume is
     * deleted in the background); otherwise the layer's size is recorded and the subvolume published under
     * its id (read-only soon after, in the background). On failure the layer is discarded.
     */
    public Optional<String> commit(WritableLayer layer, Collection<String> scratchPaths) throws IOException {
        background.activity();
        Prepared p = own(layer);
        try {
            unmountAndForget(p);
            UpperDir.deleteRecursively(pendingSubvol(p.id).resolve("work"));
            boolean empty;
            List<Dir> lowers = openDiffs(p.lowers);
            try (Dir diff = Dir.open(p.diff, "/")) {
                ScratchPaths.clean(diff, lowers, scratchPaths, p.replaced);
                empty = diff.isEmpty();
            } finally {
                closeAll(lowers);
            }
            if (empty) {
                background.add("deleting unchanged layer " + p.id, () -> deletePending(p.id));
                return Optional.empty();
            }
            publish(p.id, -1);
            return Optional.of(p.id);
        } catch (IOException | RuntimeException e) {
            try {
                deletePending(p.id);
            } catch (IOException ce) {
                e.addSuppressed(ce);
            }
            throw e;
        }
    }

    /**
     * Makes every path where the runtime will mount or create something ({@code dirs}: directories,
     * {@code files}: bind-mounted files; image paths like "/dev", "/.contree/init") real in the layer's
     * rootfs: a symlink or other non-directory on the way is replaced (see {@link MountPoints}), so the
     * runtime never resolves a link the image made. Call after writing into the rootfs, before the runtime
     * starts. What was replaced is put back at commit unless the run wrote into it.
     */
    public void secureMountPoints(WritableLayer layer, List<String> dirs, List<String> files) throws IOException {
        Prepared p = own(layer);
        try (Dir rootfs = Dir.open(p.rootfs, "/")) {
            p.replaced.addAll(MountPoints.secure(rootfs, dirs, files));
        }
    }

    /** Unmounts (if still mounted) and deletes a writable layer; the delete happens in the background. */
    public void discard(WritableLayer layer) throws IOException {
        background.activity();
        Prepared p = own(layer);
        unmountAndForget(p);
        background.add("deleting discarded layer " + p.id, () -> deletePending(p.id));
    }

    /** A new writable, unmounted, uncapped layer for imports; see {@link LayerBuilder}. */
    public LayerBuilder create() throws IOException {
        background.activity();
        ensureOpen();
        String id = newId();
        Btrfs.createSubvolume(layersDir, PENDING + id);
        try {
            Files.createDirectory(pendingDiff(id));
        } catch (IOException e) {
            deletePending(id);
            throw e;
        }
        return new LayerBuilder(this, id);
    }

    /**
     * Like {@link #create()}, for a layer whose id is already known (one fetched from the object store keeps the id
     * images name it by). Fails if a layer with that id is committed or being built.
     */
    public LayerBuilder create(String layerId) throws IOException {
        background.activity();
        ensureOpen();
        checkId(layerId);
        if (Files.exists(layersDir.resolve(layerId))) throw new java.nio.file.FileAlreadyExistsException("layer " + layerId);
        Btrfs.createSubvolume(layersDir, PENDING + layerId); // fails if a pending one exists: one builder per id
        try {
            Files.createDirectory(pendingDiff(layerId));
        } catch (IOException e) {
            deletePending(layerId);
            throw e;
        }
        return new LayerBuilder(this, layerId);
    }

    /** The committed layer's upper-format tree (read-only). */
    public Path diffDir(String layerId) {
        checkId(layerId);
        return layersDir.resolve(layerId).resolve("diff");
    }

    /** Whether {@code layerId} is a committed layer. */
    public boolean exists(String layerId) {
        return ID.matcher(layerId).matches() && Files.isDirectory(layersDir.resolve(layerId));
    }

    /** Deletes a committed layer. The caller makes sure no image and no mount still uses it. */
    public void remove(String layerId) throws IOException {
        checkId(layerId);
        if (!Files.isDirectory(layersDir.resolve(layerId))) throw new NoSuchFileException("layer " + layerId);
        Btrfs.deleteSubvolume(layersDir, layerId);
        Files.deleteIfExists(sizesDir.resolve(layerId));
    }

    /** All committed layers, in no particular order. */
    public List<String> layerIds() throws IOException {
        return UpperDir.list(layersDir).stream().filter(n -> !n.startsWith(".")).toList();
    }

    /**
     * Bytes of file data the layer holds, measured once when it was committed: each regular file's size
     * (its allocated blocks when fewer, so a sparse file counts what it holds), hard links once. A compacted
     * layer shares its extents with its sources; its size is the apparent size of what it merged. (The
     * squota usage would cost nothing to read but is only current after a btrfs transaction commit.)
     */
    public long sizeOf(String layerId) throws IOException {
        Path diff = committedDiff(layerId);
        Path recorded = sizesDir.resolve(layerId);
        if (Files.exists(recorded)) return Long.parseLong(Files.readString(recorded).trim());
        try (Dir d = Dir.open(diff, "/")) {
            return UpperDir.dataBytes(d);
        }
    }

    /**
     * Merges adjacent layers (top first) into one new committed layer equivalent to them stacked, not
     * knowing what lies below: whiteouts and opaque markers that could hide lower layers are kept.
     * Regular files are reflinked (no data copy). The source layers are left alone.
     */
    public String compact(List<String> layerIdsTopFirst) throws IOException {
        return compact(layerIdsTopFirst, null);
    }

    /**
     * Like {@link #compact(List)}, knowing the layers below the range ({@code belowTopFirst}, empty if the
     * range is the bottom of the image): whiteouts and opaque markers that hide nothing there are dropped.
     */
    public String compact(List<String> layerIdsTopFirst, List<String> belowTopFirst) throws IOException {
        ensureOpen();
        if (layerIdsTopFirst.isEmpty()) throw new IllegalArgumentException("nothing to compact");
        for (String l : layerIdsTopFirst) committedDiff(l);
        if (belowTopFirst != null) for (String l : belowTopFirst) committedDiff(l);
        String id = newId();
        Btrfs.createSubvolume(layersDir, PENDING + id);
        List<Dir> range = new ArrayList<>(), below = belowTopFirst == null ? null : new ArrayList<>();
        try {
            Files.createDirectory(pendingDiff(id));
            range.addAll(openDiffs(layerIdsTopFirst));
            if (below != null) below.addAll(openDiffs(belowTopFirst));
            long logical;
            try (Dir top = Dir.open(layersDir.resolve(layerIdsTopFirst.getFirst()), "/");
                 Dir out = Dir.open(pendingSubvol(id), "/")) {
                logical = new Compactor(range, below).run(top, DIFF, out, DIFF);
            }
            long weight = 0;
            for (String l : layerIdsTopFirst) weight += weight(l);
            Files.writeString(pendingSubvol(id).resolve(WEIGHT), Long.toString(weight));
            publish(id, logical);
            return id;
        } catch (IOException | RuntimeException e) {
            try {
                deletePending(id);
            } catch (IOException ce) {
                e.addSuppressed(ce);
            }
            throw e;
        } finally {
            closeAll(range);
            if (below != null) closeAll(below);
        }
    }

    /**
     * Applies the {@link CompactionPolicy} (max depth from the config) to an image's layer chain: returns
     * the chain unchanged when it is shallow enough, else a new chain whose top layers were merged into
     * one new layer. The caller records the new chain for the image (the old layers stay until removed).
     */
    public List<String> compactIfNeeded(List<String> layerIdsTopFirst) throws IOException {
        CompactionPolicy policy = new CompactionPolicy(config.maxMountDepth());
        if (layerIdsTopFirst.size() <= config.maxMountDepth()) return layerIdsTopFirst;
        List<Long> sizes = new ArrayList<>();
        for (String l : layerIdsTopFirst) sizes.add(weight(l));
        int k = policy.topLayersToMerge(sizes);
        if (k < 2) return layerIdsTopFirst;
        List<String> below = layerIdsTopFirst.subList(k, layerIdsTopFirst.size());
        String merged = compact(layerIdsTopFirst.subList(0, k), below);
        List<String> out = new ArrayList<>(below.size() + 1);
        out.add(merged);
        out.addAll(below);
        return List.copyOf(out);
    }

    /** Discards all still-prepared layers and unmounts the image if this store mounted it. */
    @Override
    public void close() throws IOException {
        if (closed) return;
        closed = true;
        IOException first = null;
        try {
            background.close();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (Prepared p : List.copyOf(active)) {
            try {
                unmountAndForget(p);
                deletePending(p.id);
            } catch (IOException e) {
                if (first == null) first = e;
            }
        }
        if (mountedImage && config.unmountImageOnClose()) {
            try {
                Mounts.unmount(root); // the loop device was set up with autoclear: it goes with the mount
            } catch (IOException e) {
                if (first == null) first = e;
            }
        }
        if (first != null) throw first;
    }

    /** Policy weight: sizeOf for written layers, the sum of the sources' weights for compacted ones. */
    private long weight(String layerId) throws IOException {
        Path w = layersDir.resolve(layerId).resolve(WEIGHT);
        if (Files.exists(w)) return Long.parseLong(Files.readString(w).trim());
        return sizeOf(layerId);
    }

    // ---- internals shared with LayerBuilder ----

    Path pendingDiff(String id) {
        return pendingSubvol(id).resolve("diff");
    }

    private Path pendingSubvol(String id) {
        return layersDir.resolve(PENDING + id);
    }

    /**
     * Records the layer's size ({@code size} if known, else measured now), then the atomic rename: whatever
     * is in layers/ is complete; the read-only flag follows in the background.
     */
    void publish(String id, long size) throws IOException {
        Path subvol = pendingSubvol(id);
        long bytes = size;
        if (bytes < 0) {
            try (Dir diff = Dir.open(subvol.resolve("diff"), "/")) {
                bytes = UpperDir.dataBytes(diff);
            }
        }
        Files.writeString(sizesDir.resolve(id), Long.toString(bytes));
        Path committed = layersDir.resolve(id);
        Files.move(subvol, committed, StandardCopyOption.ATOMIC_MOVE);
        background.add("marking layer " + id + " read-only", () -> {
            try {
                Btrfs.setReadOnly(committed, true);
            } catch (IOException e) {
                if (Files.exists(committed)) throw e; // else removed meanwhile (garbage collection): nothing to seal
            }
        });
    }

    /** Finishes the background work now: every layer committed so far is read-only, every discarded one gone. */
    public void awaitBackgroundWork() throws IOException {
        try {
            background.flush();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while sealing layers", e);
        }
    }

    void deletePending(String id) throws IOException {
        Path subvol = pendingSubvol(id);
        if (!Files.exists(subvol)) return;
        try {
            Btrfs.deleteSubvolume(layersDir, PENDING + id);
        } catch (Linux.ErrnoException e) {
            if (e.errno() != Linux.EINVAL && e.errno() != Linux.ENOTDIR) throw e;
            UpperDir.deleteRecursively(subvol); // not a subvolume (should not happen)
        }
    }

    private void unmountAndForget(Prepared p) throws IOException {
        if (p.mounted) {
            Mounts.unmount(p.rootfs);
            p.mounted = false;
        }
        Files.deleteIfExists(p.rootfs);
        active.remove(p);
    }

    private Prepared own(WritableLayer layer) {
        if (!(layer instanceof Prepared p) || !active.contains(p)) {
            throw new IllegalArgumentException("not an active writable layer of this store: " + layer.id());
        }
        return p;
    }

    /** The diff dirs of committed layers, opened (the caller closes them with {@link #closeAll}). */
    private List<Dir> openDiffs(List<String> ids) throws IOException {
        List<Dir> out = new ArrayList<>();
        try {
            for (String l : ids) out.add(Dir.open(committedDiff(l), "/"));
        } catch (IOException | RuntimeException e) {
            closeAll(out);
            throw e;
        }
        return out;
    }

    private static void closeAll(List<Dir> dirs) {
        for (Dir d : dirs) d.close();
    }

    private Path committedDiff(String id) throws IOException {
        Path d = diffDir(id);
        if (!Files.isDirectory(d)) throw new NoSuchFileException("layer " + id);
        return d;
    }

    private void ensureOpen() {
        if (closed) throw new IllegalStateException("layer store closed");
    }

    private static void checkId(String id) {
        if (id == null || !ID.matcher(id).matches()) throw new IllegalArgumentException("bad layer id: " + id);
    }

    private static String newId() {
        byte[] b = new byte[16];
        RANDOM.nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    static void run(String... cmd) throws IOException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try {
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException(String.join(" ", cmd) + ": timed out");
            }
            if (p.exitValue() != 0) throw new IOException(String.join(" ", cmd) + " failed (" + p.exitValue() + "): " + out.trim());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted: " + String.join(" ", cmd), e);
        }
    }

    private static final class Prepared implements WritableLayer {
        final String id;
        final Path rootfs, diff;
        final long cap;
        final List<String> lowers;
        /** Paths {@link #secureMountPoints} replaced (relative to the rootfs). */
        final Set<String> replaced = ConcurrentHashMap.newKeySet();
        volatile boolean mounted = true;

        Prepared(String id, Path rootfs, Path diff, long cap, List<String> lowers) {
            this.id = id;
            this.rootfs = rootfs;
            this.diff = diff;
            this.cap = cap;
            this.lowers = lowers;
        }

        @Override public String id() { return id; }
        @Override public Path rootfs() { return rootfs; }
        @Override public Path diffDir() { return diff; }
        @Override public long capBytes() { return cap; }
        @Override public List<String> lowerLayerIds() { return lowers; }
        @Override public String toString() { return "WritableLayer[" + id + " at " + rootfs + "]"; }
    }
}
