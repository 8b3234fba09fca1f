package dev.contree.server;

import dev.contree.layers.LayerStore;
import dev.contree.layers.LayerStoreConfig;
import dev.contree.layers.PoolInspection;
import dev.contree.operations.Operation;
import dev.contree.operations.OperationService;
import dev.contree.operations.Scheduler;
import dev.contree.files.FileRecord;
import dev.contree.store.LayerRecords;
import dev.contree.store.MetadataStore;
import dev.contree.store.StoreException;
import dev.contree.store.sqlite.SqliteStore;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Checks a stopped server's data dir: the layer pool (what a crash leaves: pending subvolumes, mounts,
 * writable committed layers), blobs (present, hashing to their name), images against their layers,
 * operations left active, stale temp files. Without {@code repair} it changes nothing at all: the
 * database is opened read-only, the pool image mounted read-only elsewhere, nothing is created. With
 * {@code repair} it opens the data dir as a server would (whose layer store recovery fixes the pool) and
 * fixes the rest: unreferenced layers and blobs, corrupt or missing blobs (their file records go), images
 * whose layers are lost (they go), temp files, operations left active (failed).
 */
public final class Fsck {
    public static final int CLEAN = 0, PROBLEMS = 1, UNUSABLE = 2;

    /** What a check found and, with repair, what it did. {@code errors}: problems left unrepaired. */
    public record Report(List<String> problems, List<String> repaired, int errors) {
        public boolean clean() {
            return problems.isEmpty();
        }
    }

    /** The data dir cannot be checked at all (missing, never initialised, in use, unreadable database). */
    public static final class UnusableDataDir extends IOException {
        UnusableDataDir(String message, Throwable cause) {
            super(message, cause);
        }
    }

    private final Path data;
    private final boolean repair;
    private final List<String> problems = new ArrayList<>();
    private final List<String> repaired = new ArrayList<>();
    private int errors;

    private Fsck(Path data, boolean repair) {
        this.data = data;
        this.repair = repair;
    }

    /** Runs fsck for the command line: prints, and returns the exit code (0 clean, 1 problems, 2 unusable). */
    public static int exec(Path dataDir, boolean repair, PrintStream out, PrintStream err) throws IOException {
        Report r;
        try {
            r = run(dataDir, repair, out);
        } catch (UnusableDataDir e) {
            err.println("fsck: " + e.getMessage());
            return UNUSABLE;
        }
        return r.errors() > 0 || (!repair && !r.clean()) ? PROBLEMS : CLEAN;
    }

    public static Report run(Path dataDir, boolean repair, PrintStream out) throws IOException {
        Path data = dataDir.toAbsolutePath().normalize();
        if (!Files.isDirectory(data)) throw new UnusableDataDir("data dir " + data + " does not exist", null);
        if (!Files.isRegularFile(data.resolve("contree.db"))) {
            throw new UnusableDataDir(data + " is not a ConTree data dir (no contree.db: never initialised?)", null);
        }
        Fsck fsck = new Fsck(data, repair);
        try (DataDir.Lock lock = fsck.lock()) {
            fsck.check();
        }
        fsck.problems.forEach(p -> out.println("problem: " + p));
        fsck.repaired.forEach(r -> out.println("repaired: " + r));
        int n = fsck.problems.size();
        out.println(n == 0 ? "fsck: clean"
                : repair ? "fsck: " + n + " problem(s), " + fsck.repaired.size() + " repair(s), " + fsck.errors + " left that need attention"
                : "fsck: " + n + " problem(s); run with --repair to fix them");
        return new Report(List.copyOf(fsck.problems), List.copyOf(fsck.repaired), fsck.errors);
    }

    /** Check mode must not create the lock file: if there is none, no server ever ran here or runs now. */
    private DataDir.Lock lock() throws IOException {
        try {
            if (repair) return DataDir.lock(data);
            return DataDir.lockIfPresent(data).orElse(null);
        } catch (IOException e) {
            throw new UnusableDataDir(e.getMessage(), e);
        }
    }

    private void problem(String what) {
        problems.add(what);
        if (!repair) errors++;
    }

    private void check() throws IOException {
        Optional<String> elsewhere = MetadataStores.recorded(data);
        if (elsewhere.isPresent()) {
            throw new UnusableDataDir("the metadata of " + data + " is in " + elsewhere.get()
                    + ": fsck checks data dirs whose metadata is in SQLite (contree.db), for now", null);
        }
        MetadataStore db;
        try {
            db = repair ? SqliteStore.open(data.resolve("contree.db")) : SqliteStore.openReadOnly(data.resolve("contree.db"));
        } catch (StoreException e) {
            throw new UnusableDataDir(e.getMessage(), e);
        }
        try (db) {
            db.integrityProblem().ifPresent(integrity -> {
                problems.add("database integrity check: " + integrity);
                errors++;
            });
            PoolInspection.State pool = checkPool();
            Set<String> onDisk = new HashSet<>(pool.committed());
            if (repair) {
                try (LayerStore store = LayerStore.open(data.resolve("layers"), LayerStoreConfig.defaults())) {
                    store.recovered().forEach(repaired::add);
                    checkImages(db, onDisk, store);
                }
            } else {
                checkImages(db, onDisk, null);
            }
            checkBlobs(db);
            checkTempFiles();
            checkOperations(db);
        }
    }

    private PoolInspection.State checkPool() throws IOException {
        PoolInspection.State pool = PoolInspection.inspect(data.resolve("layers"));
        if (!pool.present()) problem("no layer pool (neither " + data.resolve("layers") + " on btrfs nor layers.img)");
        pool.pending().forEach(p -> problem("pending subvolume layers/" + p + " (an uncommitted layer)"));
        pool.staleMounts().forEach(m -> problem("stale mount " + m));
        pool.staleMountPoints().forEach(m -> problem("stale mount point layers/mnt/" + m));
        pool.writable().forEach(l -> problem("committed layer " + l + " is writable (not sealed read-only)"));
        pool.orphanSizes().forEach(s -> problem("size record layers/sizes/" + s + " of a layer that does not exist"));
        return pool;
    }

    /** Images need all their layers; layers no image uses are garbage; index rows need their layer. */
    private void checkImages(MetadataStore db, Set<String> onDisk, LayerStore store) throws IOException {
        LayerRecords index = db.layers();
        Map<String, List<String>> chains = index.chains();
        Set<String> referenced = new HashSet<>();
        for (var image : chains.entrySet()) {
            // A layer in the object store is not lost: this node fetches it when it needs it (and other nodes may hold it).
            List<String> lost = image.getValue().stream().filter(l -> !onDisk.contains(l) && index.packed(l).isEmpty()).toList();
            if (lost.isEmpty()) {
                referenced.addAll(image.getValue());
                continue;
            }
            problem("image " + image.getKey() + " references missing layer(s) " + String.join(", ", lost));
            if (store != null) {
                // Its content is gone for good: an image that cannot be mounted would only fail every run.
                db.images().delete(image.getKey());
                repaired.add("removed image " + image.getKey() + " (layer(s) " + String.join(", ", lost) + " lost)");
            } else {
                referenced.addAll(image.getValue());
            }
        }
        for (String id : onDisk.stream().sorted().toList()) {
            if (referenced.contains(id)) continue;
            if (store == null || chains.values().stream().noneMatch(c -> c.contains(id))) {
                problem("layer " + id + " is referenced by no image");
            }
            if (store != null) {
                boolean shared = index.packed(id).isPresent(); // other nodes' records: only this node's copy goes
                store.remove(id);
                if (!shared) index.forget(id);
                repaired.add("removed unreferenced layer " + id);
            }
        }
        for (String id : index.ids()) {
            if (onDisk.contains(id) || index.packed(id).isPresent()) continue;
            problem("layer index row " + id + " has no layer on disk");
            if (store != null) {
                index.forget(id);
                repaired.add("dropped layer index row " + id);
            }
        }
    }

    /** Files need their blob, with the bytes its name promises; blobs nobody references are garbage. */
    private void checkBlobs(MetadataStore db) throws IOException {
        Path sha256 = data.resolve("blobs").resolve("sha256");
        Map<String, List<String>> filesBySha = new LinkedHashMap<>();
        for (FileRecord f : db.files().all()) filesBySha.computeIfAbsent(f.sha256(), k -> new ArrayList<>()).add(f.uuid());
        for (var e : filesBySha.entrySet()) {
            String sha = e.getKey();
            Path blob = sha256.resolve(sha.substring(0, 2)).resolve(sha);
            String broken;
            if (!Files.isRegularFile(blob)) {
                broken = "missing";
            } else {
                String actual = hash(blob);
                if (actual.equals(sha)) continue;
                broken = "corrupt (its bytes hash to " + actual + ")";
            }
            problem("blob " + sha + " of file(s) " + String.join(", ", e.getValue()) + " is " + broken);
            if (repair) {
                Files.deleteIfExists(blob);
                for (String uuid : e.getValue()) db.files().delete(uuid);
                repaired.add("dropped file record(s) " + String.join(", ", e.getValue()) + " (their content is lost)");
            }
        }
        if (!Files.isDirectory(sha256)) return;
        try (var walk = Files.walk(sha256)) {
            for (Path p : walk.filter(Files::isRegularFile).sorted().toList()) {
                if (filesBySha.containsKey(p.getFileName().toString())) continue;
                problem("blob " + p.getFileName() + " is referenced by no file");
                if (repair) {
                    Files.delete(p);
                    repaired.add("removed unreferenced blob " + p.getFileName());
                }
            }
        }
    }

    /** Partial uploads and spooled stdin belong to requests and runs that ended with the server. */
    private void checkTempFiles() throws IOException {
        for (String dir : List.of("blobs/tmp", "spool")) {
            Path d = data.resolve(dir);
            if (!Files.isDirectory(d, java.nio.file.LinkOption.NOFOLLOW_LINKS)) continue;
            try (dev.contree.linux.Dir temp = dev.contree.linux.Dir.open(d, dir)) {
                for (dev.contree.linux.Dir.Name n : temp.listSorted()) {
                    problem("stale temp file " + dir + "/" + n);
                    if (repair) {
                        temp.deleteRecursively(n); // rm -rf that never follows a link
                        repaired.add("removed stale temp file " + dir + "/" + n);
                    }
                }
            }
        }
    }

    /** Operations cannot still be running when no server is. */
    private void checkOperations(MetadataStore db) {
        OperationService operations = new OperationService(db);
        List<Operation> active = operations.active();
        for (Operation op : active) problem("operation " + op.uuid() + " left " + op.status());
        if (repair && !active.isEmpty()) {
            Scheduler.failLeftovers(operations);
            for (Operation op : active) repaired.add("failed operation " + op.uuid() + " (was " + op.status() + "; the server stopped during it)");
        }
    }

    private static String hash(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

}
