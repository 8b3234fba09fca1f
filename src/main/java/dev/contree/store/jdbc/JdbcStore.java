package dev.contree.store.jdbc;

import dev.contree.images.Image;
import dev.contree.operations.JobOutcome;
import dev.contree.operations.OperationEvent;
import dev.contree.store.FileRecords;
import dev.contree.store.ImageRecords;
import dev.contree.store.LayerRecords;
import dev.contree.store.MetadataStore;
import dev.contree.store.ObjectRecords;
import dev.contree.store.OperationRecords;
import dev.contree.store.TokenRecords;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;

/**
 * The metadata store over an SQL engine: the record stores and the writes that span them, one SQL text for every
 * engine (the schemas differ in types only). An engine's store adds how it connects, its migrations, how events are
 * numbered ({@link JdbcOperations#append}) and its own consistency check.
 */
public abstract class JdbcStore implements MetadataStore {
    private final Engine db;
    private final TokenRecords tokens;
    private final FileRecords files;
    private final JdbcImages images;
    private final LayerRecords layers;
    private final JdbcOperations operations;
    private final JdbcObjects objects;

    protected JdbcStore(Engine db, JdbcOperations operations) {
        this.db = db;
        this.tokens = new JdbcTokens(db);
        this.files = new JdbcFiles(db);
        this.images = new JdbcImages(db);
        this.layers = new JdbcLayers(db);
        this.operations = operations;
        this.objects = new JdbcObjects(db);
    }

    @Override public TokenRecords tokens() { return tokens; }
    @Override public FileRecords files() { return files; }
    @Override public ImageRecords images() { return images; }
    @Override public LayerRecords layers() { return layers; }
    @Override public OperationRecords operations() { return operations; }
    @Override public ObjectRecords objects() { return objects; }

    @Override
    public boolean finish(String operationUuid, JobOutcome outcome) {
        final class LostRace extends RuntimeException {
            LostRace() { super(null, null, false, false); }
        }
        OperationEvent completion;
        try {
            completion = db.write(c -> {
                Image created = outcome instanceof JobOutcome.Succeeded done && done.image() instanceof JobOutcome.Created n
                        ? images.insert(c, n.image()) : null;
                OperationEvent event = operations.finish(c, operationUuid, outcome, created);
                // Thrown, not returned: the rollback also undoes the image.
                if (event == null) throw new LostRace();
                return event;
            });
        } catch (LostRace lost) {
            return false;
        }
        // After the commit; every earlier event of the log was announced by then (committed before or with it).
        operations.announce(completion);
        return true;
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
    public void close() {
        db.close();
    }
}
