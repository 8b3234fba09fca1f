package dev.contree.images;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.store.Database;
import dev.contree.store.Sql;
import dev.contree.store.Times;

import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * What the metadata store knows about layers: digests of imported layers, which accounts proved they hold the bytes
 * of a digest, and which layers images reference.
 */
public final class LayerIndex {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Database db;

    public LayerIndex(Database db) {
        this.db = db;
    }

    public void record(String layerId, String digest, long size) {
        db.write(c -> Sql.update(c, "INSERT OR IGNORE INTO layers (id, digest, size, created_at) VALUES (?,?,?,?)",
                layerId, digest, size, Times.toMicros(Times.now())));
    }

    public Optional<String> byDigest(String digest) {
        return Optional.ofNullable(db.read(c -> Sql.one(c, "SELECT id FROM layers WHERE digest = ?", rs -> rs.getString(1), digest)));
    }

    /**
     * Whether {@code accountId} proved it holds the bytes behind {@code digest}. Layers are shared by digest for
     * storage; reusing one by digest without this proof would hand an account another account's files.
     */
    public boolean proven(String accountId, String digest) {
        return db.read(c -> Sql.one(c, "SELECT 1 FROM digest_proofs WHERE account_id = ? AND digest = ?",
                rs -> Boolean.TRUE, accountId, digest)) != null;
    }

    /** Records that {@code accountId} downloaded (or uploaded) bytes that hashed to {@code digest}. */
    public void prove(String accountId, String digest) {
        db.write(c -> Sql.update(c, "INSERT OR IGNORE INTO digest_proofs (account_id, digest, created_at) VALUES (?,?,?)",
                accountId, digest, Times.toMicros(Times.now())));
    }

    /** The size recorded for a layer, if it was recorded. */
    public Optional<Long> size(String layerId) {
        return Optional.ofNullable(db.read(c -> Sql.one(c, "SELECT size FROM layers WHERE id = ?", rs -> rs.getLong(1), layerId)));
    }

    public void forget(String layerId) {
        db.write(c -> Sql.update(c, "DELETE FROM layers WHERE id = ?", layerId));
    }

    /** Every layer some image of any account uses. */
    public Set<String> referenced() {
        Set<String> out = new HashSet<>();
        chains().values().forEach(out::addAll);
        return out;
    }

    /** Every image's layer chain (top first), by image uuid. */
    public Map<String, List<String>> chains() {
        Map<String, List<String>> out = new LinkedHashMap<>();
        db.read(c -> Sql.query(c, "SELECT uuid, layers FROM images ORDER BY uuid", rs -> {
            try {
                out.put(rs.getString(1), JSON.readValue(rs.getString(2), new TypeReference<List<String>>() {}));
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new java.sql.SQLException("corrupt layer list of image " + rs.getString(1), e);
            }
            return null;
        }));
        return out;
    }

    /** Replaces an image's layer chain by an equivalent one (after compaction). */
    public void replaceChain(String imageUuid, List<String> layersTopFirst) {
        try {
            String json = JSON.writeValueAsString(layersTopFirst);
            db.write(c -> Sql.update(c, "UPDATE images SET layers = ? WHERE uuid = ?", json, imageUuid));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
