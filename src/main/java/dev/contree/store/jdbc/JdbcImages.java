package dev.contree.store.jdbc;

import dev.contree.images.Image;
import dev.contree.images.ImageService;
import dev.contree.store.ImageRecords;
import dev.contree.store.Page;
import dev.contree.store.codec.JsonColumns;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;

/** Images in {@code images}, their layer lists as rows of {@code image_layers} (position 0 is the top layer). */
public final class JdbcImages implements ImageRecords {
    /** Uuids per query when the layers of many images are read at once (well below every engine's bound-parameter limit). */
    private static final int BATCH = 500;

    /** The orders a listing may take: fixed SQL, each value in them bound. */
    private enum Order {
        NEWEST("created_at DESC, uuid DESC"),
        /** One bound value: the tag that sorts first. */
        EXACT_TAG_FIRST("(tag = ?) DESC, created_at DESC, uuid DESC");

        final String sql;

        Order(String sql) {
            this.sql = sql;
        }
    }

    private final Engine db;

    public JdbcImages(Engine db) {
        this.db = db;
    }

    /** An images row before its layers are attached. */
    private record Row(String uuid, String accountId, String tag, Instant createdAt, String operationUuid, String parentUuid,
                       String config, long size) {
        Image with(List<String> layers) {
            return new Image(uuid, accountId, tag, createdAt, operationUuid, parentUuid, layers, JsonColumns.config(config, uuid), size);
        }
    }

    @Override
    public Image create(ImageService.NewImage image) {
        return db.write(c -> insert(c, image));
    }

    /** {@link #create} inside a caller's transaction. */
    Image insert(Connection c, ImageService.NewImage n) throws SQLException {
        String config = JsonColumns.config(n.config());
        if (n.reuseIdentical() && n.parentUuid() == null) {
            // Two identical imports at once must not both miss the other's image.
            db.lock(c, n.accountId(), "identical root");
            String same = identicalRoot(c, n, config);
            if (same != null) {
                if (n.tag() != null) moveTag(c, n.accountId(), same, n.tag());
                return get(c, n.accountId(), same);
            }
        }
        String uuid = UUID.randomUUID().toString();
        Instant created = Times.now();
        Sql.update(c, "INSERT INTO images (uuid, account_id, created_at, operation_uuid, parent_uuid, config, size) VALUES (?,?,?,?,?,?,?)",
                uuid, n.accountId(), Times.toMicros(created), n.operationUuid(), n.parentUuid(), config, n.size());
        writeLayers(c, uuid, n.layers());
        if (n.tag() != null) moveTag(c, n.accountId(), uuid, n.tag());
        // What a read of the rows would give, without reading them back.
        return new Image(uuid, n.accountId(), n.tag(), created, n.operationUuid(), n.parentUuid(), List.copyOf(n.layers()), n.config(), n.size());
    }

    /** The newest root image of the account with this config and exactly these layers, or null. */
    private static String identicalRoot(Connection c, ImageService.NewImage n, String config) throws SQLException {
        // Candidates share the config and the top layer (or have none); their full lists are compared here.
        String top = n.layers().isEmpty()
                ? " AND NOT EXISTS (SELECT 1 FROM image_layers l WHERE l.image_uuid = i.uuid)"
                : " AND EXISTS (SELECT 1 FROM image_layers l WHERE l.image_uuid = i.uuid AND l.position = 0 AND l.layer_id = ?)";
        List<Object> params = new ArrayList<>(List.of(n.accountId(), config));
        if (!n.layers().isEmpty()) params.add(n.layers().getFirst());
        List<String> candidates = Sql.query(c, "SELECT i.uuid FROM images i WHERE i.account_id = ? AND i.parent_uuid IS NULL AND i.config = ?"
                + top + " ORDER BY i.created_at DESC, i.uuid DESC", rs -> rs.getString(1), params.toArray());
        for (String uuid : candidates) {
            if (layers(c, uuid).equals(n.layers())) return uuid;
        }
        return null;
    }

    static void writeLayers(Connection c, String imageUuid, List<String> layersTopFirst) throws SQLException {
        for (int i = 0; i < layersTopFirst.size(); i++) {
            Sql.update(c, "INSERT INTO image_layers (image_uuid, position, layer_id) VALUES (?,?,?)", imageUuid, i, layersTopFirst.get(i));
        }
    }

    static List<String> layers(Connection c, String imageUuid) throws SQLException {
        return Sql.query(c, "SELECT layer_id FROM image_layers WHERE image_uuid = ? ORDER BY position", rs -> rs.getString(1), imageUuid);
    }

    @Override
    public Optional<Image> get(String accountId, String uuid) {
        return Optional.ofNullable(db.read(c -> get(c, accountId, uuid)));
    }

    @Override
    public Optional<Image> byTag(String accountId, String tag) {
        return db.read(c -> images(c, "SELECT * FROM images WHERE account_id = ? AND tag = ?", accountId, tag)).stream().findFirst();
    }

    @Override
    public List<Image> list(String accountId, ImageService.Query q, Page page) {
        Where where = new Where().and("account_id = ?", accountId);
        if (Boolean.TRUE.equals(q.tagged())) where.and("tag IS NOT NULL");
        if (Boolean.FALSE.equals(q.tagged())) where.and("tag IS NULL");
        if (q.uuid() != null) where.and("uuid = ?", q.uuid());
        boolean prefix = q.tagPrefix() != null && !q.tagPrefix().isEmpty();
        if (prefix) where.and("substr(tag, 1, ?) = ?", q.tagPrefix().length(), q.tagPrefix());
        where.range("created_at", q.range());
        Order order = prefix ? Order.EXACT_TAG_FIRST : Order.NEWEST;
        Object[] params = prefix ? where.params(q.tagPrefix(), page.limit(), page.offset()) : where.params(page.limit(), page.offset());
        String sql = "SELECT * FROM images WHERE " + where.sql() + " ORDER BY " + order.sql + " LIMIT ? OFFSET ?";
        return db.read(c -> images(c, sql, params));
    }

    @Override
    public Optional<Image> setTag(String accountId, String uuid, String tag) {
        return Optional.ofNullable(db.write(c -> {
            if (get(c, accountId, uuid) == null) return null;
            moveTag(c, accountId, uuid, tag);
            return get(c, accountId, uuid);
        }));
    }

    @Override
    public boolean clearTag(String accountId, String uuid, String expectedTag) {
        String sql = "UPDATE images SET tag = NULL WHERE account_id = ? AND uuid = ?";
        return db.write(c -> expectedTag == null ? Sql.update(c, sql, accountId, uuid)
                : Sql.update(c, sql + " AND tag = ?", accountId, uuid, expectedTag)) == 1;
    }

    @Override
    public List<Image> children(String accountId, String uuid) {
        return db.read(c -> images(c, "SELECT * FROM images WHERE account_id = ? AND parent_uuid = ? ORDER BY created_at, uuid",
                accountId, uuid));
    }

    @Override
    public List<Image> children(String accountId, String uuid, Page page) {
        return db.read(c -> images(c, "SELECT * FROM images WHERE account_id = ? AND parent_uuid = ? ORDER BY created_at, uuid"
                + " LIMIT ? OFFSET ?", accountId, uuid, page.limit(), page.offset()));
    }

    @Override
    public List<Image> roots(String accountId, Page page) {
        return db.read(c -> images(c, "SELECT * FROM images i WHERE i.account_id = ? AND (i.parent_uuid IS NULL OR NOT EXISTS"
                        + " (SELECT 1 FROM images p WHERE p.uuid = i.parent_uuid AND p.account_id = i.account_id))"
                        + " ORDER BY i.created_at DESC, i.uuid DESC LIMIT ? OFFSET ?",
                accountId, page.limit(), page.offset()));
    }

    @Override
    public Map<String, Integer> childCounts(String accountId, java.util.Collection<String> uuids) {
        List<String> all = List.copyOf(uuids);
        Map<String, Integer> counts = new HashMap<>();
        if (all.isEmpty()) return counts;
        db.read(c -> {
            for (int from = 0; from < all.size(); from += BATCH) {
                List<String> batch = all.subList(from, Math.min(all.size(), from + BATCH));
                Object[] params = new Object[batch.size() + 1];
                params[0] = accountId;
                for (int i = 0; i < batch.size(); i++) params[i + 1] = batch.get(i);
                Sql.query(c, "SELECT parent_uuid, COUNT(*) FROM images WHERE account_id = ? AND parent_uuid IN ("
                                + Sql.placeholders(batch.size()) + ") GROUP BY parent_uuid",
                        rs -> counts.put(rs.getString(1), rs.getInt(2)), params);
            }
            return null;
        });
        return counts;
    }

    @Override
    public List<Image> search(String accountId, String prefix, int limit) {
        return db.read(c -> images(c, "SELECT * FROM images WHERE account_id = ? AND (substr(tag, 1, ?) = ? OR substr(uuid, 1, ?) = ?)"
                        + " ORDER BY CASE WHEN tag = ? THEN 0 ELSE 1 END, created_at DESC, uuid DESC LIMIT ?",
                accountId, prefix.length(), prefix, prefix.length(), prefix, prefix, limit));
    }

    @Override
    public void delete(String uuid) {
        db.write(c -> {
            Sql.update(c, "DELETE FROM image_layers WHERE image_uuid = ?", uuid);
            return Sql.update(c, "DELETE FROM images WHERE uuid = ?", uuid);
        });
    }

    /** Takes {@code tag} from whichever image of the account carries it; moves of one tag are ordered by a lock. */
    private void moveTag(Connection c, String accountId, String uuid, String tag) throws SQLException {
        db.lock(c, accountId, "tag " + tag);
        Sql.update(c, "UPDATE images SET tag = NULL WHERE account_id = ? AND tag = ?", accountId, tag);
        Sql.update(c, "UPDATE images SET tag = ? WHERE uuid = ?", tag, uuid);
    }

    private static Image get(Connection c, String accountId, String uuid) throws SQLException {
        List<Image> found = images(c, "SELECT * FROM images WHERE account_id = ? AND uuid = ?", accountId, uuid);
        return found.isEmpty() ? null : found.getFirst();
    }

    /** The images an {@code images} query selects, in its order, each with its layers. */
    private static List<Image> images(Connection c, String sql, Object... params) throws SQLException {
        List<Row> rows = Sql.query(c, sql, JdbcImages::row, params);
        Map<String, List<String>> layers = new HashMap<>();
        for (int from = 0; from < rows.size(); from += BATCH) {
            List<Row> batch = rows.subList(from, Math.min(rows.size(), from + BATCH));
            Sql.query(c, "SELECT image_uuid, layer_id FROM image_layers WHERE image_uuid IN (" + Sql.placeholders(batch.size())
                            + ") ORDER BY image_uuid, position",
                    rs -> layers.computeIfAbsent(rs.getString(1), k -> new ArrayList<>()).add(rs.getString(2)),
                    batch.stream().map(Row::uuid).toArray());
        }
        List<Image> out = new ArrayList<>(rows.size());
        for (Row r : rows) out.add(r.with(List.copyOf(layers.getOrDefault(r.uuid(), List.of()))));
        return out;
    }

    private static Row row(ResultSet rs) throws SQLException {
        return new Row(rs.getString("uuid"), rs.getString("account_id"), rs.getString("tag"), Sql.instant(rs, "created_at"),
                rs.getString("operation_uuid"), rs.getString("parent_uuid"), rs.getString("config"), rs.getLong("size"));
    }
}
