package dev.contree.store.sqlite;

import dev.contree.images.Image;
import dev.contree.images.ImageService;
import dev.contree.operations.JobOutcome;
import dev.contree.store.FileRecords;
import dev.contree.store.ImageRecords;
import dev.contree.store.LayerRecords;
import dev.contree.store.MetadataStore;
import dev.contree.store.OperationRecords;
import dev.contree.store.TokenRecords;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;

/**
 * The metadata store in one embedded SQLite file (WAL): see {@link Database} for its connections and
 * {@link Migrations} for its schema. Everything SQLite-specific stays in this package.
 */
public final class SqliteStore implements MetadataStore {
    private final Database db;
    private final SqliteTokens tokens;
    private final SqliteFiles files;
    private final SqliteImages images;
    private final SqliteLayers layers;
    private final SqliteOperations operations;

    private SqliteStore(Database db) {
        this.db = db;
        this.tokens = new SqliteTokens(db);
        this.files = new SqliteFiles(db);
        this.images = new SqliteImages(db);
        this.layers = new SqliteLayers(db);
        this.operations = new SqliteOperations(db);
    }

    /** Opens (creating it if needed) and migrates the database at {@code file}. */
    public static SqliteStore open(Path file) {
        return new SqliteStore(Database.open(file));
    }

    /**
     * Opens an existing database without changing anything on disk (for fsck); refuses a schema version other
     * than {@link #schemaVersion()}. Every write fails.
     */
    public static SqliteStore openReadOnly(Path file) {
        return new SqliteStore(Database.openReadOnly(file));
    }

    /** The schema version this code writes and expects. */
    public static int schemaVersion() {
        return Migrations.current();
    }

    @Override public TokenRecords tokens() { return tokens; }
    @Override public FileRecords files() { return files; }
    @Override public ImageRecords images() { return images; }
    @Override public LayerRecords layers() { return layers; }
    @Override public OperationRecords operations() { return operations; }

    @Override
    public boolean finish(String operationUuid, JobOutcome outcome) {
        final class LostRace extends RuntimeException {
            LostRace() { super(null, null, false, false); }
        }
        try {
            return db.write(c -> {
                Image created = outcome instanceof JobOutcome.Succeeded done && done.image() instanceof JobOutcome.Created n
                        ? SqliteImages.insert(c, n.image()) : null;
                // Thrown, not returned: the rollback also undoes the image.
                if (operations.finish(c, operationUuid, outcome, created) == null) throw new LostRace();
                return true;
            });
        } catch (LostRace lost) {
            return false;
        }
    }

    @Override
    public long accountBytes(String accountId, Collection<String> moreLayers) {
        List<String> more = List.copyOf(new LinkedHashSet<>(moreLayers));
        List<Object> params = new ArrayList<>(List.of(accountId));
        params.addAll(more);
        params.add(accountId);
        String alsoMore = more.isEmpty() ? "" : " OR id IN (" + Sql.placeholders(more.size()) + ")";
        return db.read(c -> Sql.one(c, "SELECT"
                + " (SELECT COALESCE(SUM(size), 0) FROM layers WHERE id IN (SELECT l.layer_id FROM image_layers l"
                + "   JOIN images i ON i.uuid = l.image_uuid WHERE i.account_id = ?)" + alsoMore + ")"
                + " + (SELECT COALESCE(SUM(size), 0) FROM files WHERE account_id = ?)", rs -> rs.getLong(1), params.toArray()));
    }

    @Override
    public Optional<String> integrityProblem() {
        String result = db.read(c -> Sql.one(c, "PRAGMA integrity_check", rs -> rs.getString(1)));
        return "ok".equals(result) ? Optional.empty() : Optional.of(String.valueOf(result));
    }

    @Override
    public void close() {
        db.close();
    }
}
