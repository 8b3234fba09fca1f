package dev.contree.store.jdbc;

import dev.contree.store.LayerRecords;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

public final class JdbcLayers implements LayerRecords {
    private final Engine db;

    public JdbcLayers(Engine db) {
        this.db = db;
    }

    @Override
    public Optional<String> byDigest(String digest) {
        return Optional.ofNullable(db.read(c -> Sql.one(c, "SELECT id FROM layers WHERE digest = ?", rs -> rs.getString(1), digest)));
    }

    @Override
    public void record(String layerId, String digest, long size) {
        db.write(insert(layerId, digest, size));
    }

    @Override
    public void recordLater(String layerId, String digest, long size) {
        db.writeLater(insert(layerId, digest, size));
    }

    private static Engine.Work<Integer> insert(String layerId, String digest, long size) {
        long now = Times.toMicros(Times.now());
        return c -> Sql.update(c, "INSERT INTO layers (id, digest, size, created_at) VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
                layerId, digest, size, now);
    }

    @Override
    public boolean proven(String accountId, String digest) {
        return db.read(c -> Sql.one(c, "SELECT 1 FROM digest_proofs WHERE account_id = ? AND digest = ?",
                rs -> Boolean.TRUE, accountId, digest)) != null;
    }

    @Override
    public void prove(String accountId, String digest) {
        db.write(c -> Sql.update(c, "INSERT INTO digest_proofs (account_id, digest, created_at) VALUES (?,?,?) ON CONFLICT DO NOTHING",
                accountId, digest, Times.toMicros(Times.now())));
    }

    @Override
    public Optional<Long> size(String layerId) {
        return Optional.ofNullable(db.read(c -> Sql.one(c, "SELECT size FROM layers WHERE id = ?", rs -> rs.getLong(1), layerId)));
    }

    @Override
    public void recordPacked(String layerId, Packed pack) {
        db.write(c -> Sql.update(c, "INSERT INTO layer_objects (layer_id, sha256, bytes, created_at) VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
                layerId, pack.sha256(), pack.bytes(), Times.toMicros(Times.now())));
    }

    @Override
    public Optional<Packed> packed(String layerId) {
        return Optional.ofNullable(db.read(c -> Sql.one(c, "SELECT sha256, bytes FROM layer_objects WHERE layer_id = ?",
                rs -> new Packed(rs.getString(1), rs.getLong(2)), layerId)));
    }

    @Override
    public void forget(String layerId) {
        db.write(c -> {
            Sql.update(c, "DELETE FROM layer_objects WHERE layer_id = ?", layerId);
            return Sql.update(c, "DELETE FROM layers WHERE id = ?", layerId);
        });
    }

    @Override
    public List<String> ids() {
        return db.read(c -> Sql.query(c, "SELECT id FROM layers ORDER BY id", rs -> rs.getString(1)));
    }

    @Override
    public Set<String> referenced() {
        return new HashSet<>(db.read(c -> Sql.query(c, "SELECT DISTINCT layer_id FROM image_layers", rs -> rs.getString(1))));
    }

    @Override
    public boolean isReferenced(String layerId) {
        return db.read(c -> Sql.one(c, "SELECT 1 FROM image_layers WHERE layer_id = ? LIMIT 1", rs -> Boolean.TRUE, layerId)) != null;
    }

    @Override
    public Map<String, List<String>> chains() {
        Map<String, List<String>> out = new LinkedHashMap<>();
        db.read(c -> Sql.query(c, "SELECT i.uuid, l.layer_id FROM images i LEFT JOIN image_layers l ON l.image_uuid = i.uuid"
                + " ORDER BY i.uuid, l.position", rs -> {
            List<String> chain = out.computeIfAbsent(rs.getString(1), k -> new ArrayList<>());
            String layer = rs.getString(2);
            if (layer != null) chain.add(layer);
            return null;
        }));
        out.replaceAll((k, v) -> List.copyOf(v));
        return out;
    }

    @Override
    public void replaceChain(String imageUuid, List<String> layersTopFirst) {
        db.write(c -> {
            if (Sql.one(c, "SELECT 1 FROM images WHERE uuid = ?", rs -> Boolean.TRUE, imageUuid) == null) return null;
            Sql.update(c, "DELETE FROM image_layers WHERE image_uuid = ?", imageUuid);
            JdbcImages.writeLayers(c, imageUuid, layersTopFirst);
            return null;
        });
    }
}
