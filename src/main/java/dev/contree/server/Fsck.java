package dev.contree.server;

import dev.contree.images.LayerIndex;
import dev.contree.layers.LayerStore;
import dev.contree.layers.LayerStoreConfig;
import dev.contree.operations.OperationService;
import dev.contree.operations.Scheduler;
import dev.contree.store.Database;
import dev.contree.store.Sql;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Checks a (stopped) server's data dir against its database and, with {@code repair}, fixes what can
 * be fixed safely: unreferenced layers and blobs, stale temp files, operations left active, index
 * rows for layers that are gone. What cannot be fixed (an image whose layer is missing) is reported.
 */
public final class Fsck {
    /** What a check found. */
    public record Report(List<String> problems, List<String> repaired, int errors) {
        public boolean clean() {
            return problems.isEmpty();
        }
    }

    private Fsck() {}

    public static Report run(Path dataDir, boolean repair, PrintStream out) throws IOException {
        Path data = DataDir.prepare(dataDir);
        List<String> problems = new ArrayList<>();
        List<String> repaired = new ArrayList<>();
        int errors = 0;
        try (DataDir.Lock lock = DataDir.lock(data);
             Database db = Database.open(data.resolve("contree.db"));
             LayerStore store = LayerStore.open(data.resolve("layers"), LayerStoreConfig.defaults())) {
            String integrity = db.read(c -> Sql.one(c, "PRAGMA integrity_check", rs -> rs.getString(1)));
            if (!"ok".equals(integrity)) {
                problems.add("database integrity check: " + integrity);
                errors++;
            }

            // Images must have all their layers.
            LayerIndex index = new LayerIndex(db);
            Set<String> onDisk = new HashSet<>(store.layerIds());
            Set<String> referenced = index.referenced();
            for (String[] row : db.read(c -> Sql.query(c, "SELECT uuid, layers FROM images", rs -> new String[]{rs.getString(1), rs.getString(2)}))) {
                for (String layer : row[1].replaceAll("[\\[\\]\"]", "").split(",")) {
                    if (!layer.isBlank() && !onDisk.contains(layer.trim())) {
                        problems.add("image " + row[0] + " references missing layer " + layer.trim());
                        errors++;
                    }
                }
            }
            for (String id : onDisk) {
                if (referenced.contains(id)) continue;
                problems.add("layer " + id + " is referenced by no image");
                if (repair) {
                    store.remove(id);
                    index.forget(id);
                    repaired.add("removed unreferenced layer " + id);
                }
            }
            for (String id : db.read(c -> Sql.query(c, "SELECT id FROM layers", rs -> rs.getString(1)))) {
                if (onDisk.contains(id)) continue;
                problems.add("layer index row " + id + " has no layer on disk");
                if (repair) {
                    index.forget(id);
                    repaired.add("dropped layer index row " + id);
                }
            }

            // Files need their blobs; blobs nobody references are garbage; temp files are leftovers.
            Path blobs = data.resolve("blobs");
            Set<String> shas = new HashSet<>();
            for (String[] row : db.read(c -> Sql.query(c, "SELECT uuid, sha256 FROM files", rs -> new String[]{rs.getString(1), rs.getString(2)}))) {
                shas.add(row[1]);
                if (!Files.isRegularFile(blobs.resolve("sha256").resolve(row[1].substring(0, 2)).resolve(row[1]))) {
                    problems.add("file " + row[0] + " has no blob " + row[1]);
                    if (repair) {
                        db.write(c -> Sql.update(c, "DELETE FROM files WHERE uuid = ?", row[0]));
                        repaired.add("dropped file record " + row[0] + " (its content is gone)");
                    } else {
                        errors++;
                    }
                }
            }
            if (Files.isDirectory(blobs.resolve("sha256"))) {
                try (var walk = Files.walk(blobs.resolve("sha256"))) {
                    for (Path p : walk.filter(Files::isRegularFile).toList()) {
                        if (shas.contains(p.getFileName().toString())) continue;
                        problems.add("blob " + p.getFileName() + " is referenced by no file");
                        if (repair) {
                            Files.delete(p);
                            repaired.add("removed unreferenced blob " + p.getFileName());
                        }
                    }
                }
            }
            if (Files.isDirectory(blobs.resolve("tmp"))) {
                try (var tmp = Files.list(blobs.resolve("tmp"))) {
                    for (Path p : tmp.toList()) {
                        problems.add("partial upload " + p.getFileName());
                        if (repair) {
                            Files.delete(p);
                            repaired.add("removed partial upload " + p.getFileName());
                        }
                    }
                }
            }

            // Operations cannot still be running when no server is.
            OperationService operations = new OperationService(db);
            int active = operations.active().size();
            if (active > 0) {
                problems.add(active + " operation(s) still marked active");
                if (repair) repaired.add("marked " + Scheduler.failLeftovers(operations) + " interrupted operation(s) FAILED");
            }
        }
        problems.forEach(p -> out.println("problem: " + p));
        repaired.forEach(r -> out.println("repaired: " + r));
        out.println(problems.isEmpty() ? "fsck: clean" : "fsck: " + problems.size() + " problem(s), " + repaired.size() + " repaired, "
                + errors + " that need attention");
        return new Report(problems, repaired, errors);
    }
}
