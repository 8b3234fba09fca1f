package dev.contree.images;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.store.Database;
import dev.contree.store.Page;
import dev.contree.store.Sql;
import dev.contree.store.TimeRange;
import dev.contree.store.Times;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;

/** Image records and tags. Tags are unique per account; setting a tag moves it. */
public final class ImageService {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Database db;

    public ImageService(Database db) {
        this.db = db;
    }

    /**
     * Values of a new image; the service assigns uuid and created_at. With {@code reuseIdentical}, a root
     * image of the account with the same layers and config is returned (and tagged) instead of a new one,
     * so importing an unchanged image again yields the same image.
     */
    public record NewImage(String accountId, String operationUuid, String parentUuid, List<String> layers,
                           ImageConfig config, long size, String tag, boolean reuseIdentical) {
        public NewImage(String accountId, String operationUuid, String parentUuid, List<String> layers,
                        ImageConfig config, long size, String tag) {
            this(accountId, operationUuid, parentUuid, layers, config, size, tag, false);
        }
    }

    public Image create(NewImage n) {
        return db.write(c -> insert(c, n));
    }

    /** Inserts inside a caller's transaction (so an operation and its result image land together). */
    public Image insert(Connection c, NewImage n) throws SQLException {
        if (n.reuseIdentical() && n.parentUuid() == null) {
            String same = Sql.one(c, "SELECT uuid FROM images WHERE account_id = ? AND parent_uuid IS NULL AND layers = ? AND config = ?"
                    + " ORDER BY created_at DESC, uuid DESC LIMIT 1", rs -> rs.getString(1), n.accountId(), json(n.layers()), json(n.config()));
            if (same != null) {
                if (n.tag() != null) moveTag(c, n.accountId(), same, n.tag());
                return get(c, n.accountId(), same);
            }
        }
        String uuid = UUID.randomUUID().toString();
        Sql.update(c, "INSERT INTO images (uuid, account_id, created_at, operation_uuid, parent_uuid, layers, config, size) VALUES (?,?,?,?,?,?,?,?)",
                uuid, n.accountId(), Times.toMicros(Times.now()), n.operationUuid(), n.parentUuid(),
                json(n.layers()), json(n.config()), n.size());
        if (n.tag() != null) moveTag(c, n.accountId(), uuid, n.tag());
        return get(c, n.accountId(), uuid);
    }

    public Optional<Image> get(String accountId, String uuid) {
        return Optional.ofNullable(db.read(c -> get(c, accountId, uuid)));
    }

    public Optional<Image> byTag(String accountId, String tag) {
        return Optional.ofNullable(db.read(c -> Sql.one(c,
                "SELECT * FROM images WHERE account_id = ? AND tag = ?", ImageService::row, accountId, tag)));
    }

    /** Filters of {@link #list}. {@code tagPrefix}: tags starting with it, the exact match first. */
    public record Query(Boolean tagged, String tagPrefix, String uuid, TimeRange range) {}

    public List<Image> list(String accountId, Query q, Page page) {
        StringBuilder where = new StringBuilder("account_id = ?");
        List<Object> params = new ArrayList<>(List.of(accountId));
        if (Boolean.TRUE.equals(q.tagged())) where.append(" AND tag IS NOT NULL");
        if (Boolean.FALSE.equals(q.tagged())) where.append(" AND tag IS NULL");
        if (q.uuid() != null) {
            where.append(" AND uuid = ?");
            params.add(q.uuid());
        }
        String order = "created_at DESC, uuid DESC";
        if (q.tagPrefix() != null && !q.tagPrefix().isEmpty()) {
            where.append(" AND substr(tag, 1, ?) = ?");
            params.add(q.tagPrefix().length());
            params.add(q.tagPrefix());
            order = "(tag = " + quote(q.tagPrefix()) + ") DESC, " + order;
        }
        q.range().appendTo("created_at", where, params);
        params.add(page.limit());
        params.add(page.offset());
        String sql = "SELECT * FROM images WHERE " + where + " ORDER BY " + order + " LIMIT ? OFFSET ?";
        return db.read(c -> Sql.query(c, sql, ImageService::row, params.toArray()));
    }

    /** Sets {@code tag} on the image, taking it from whichever image of the account had it. */
    public Optional<Image> setTag(String accountId, String uuid, String tag) {
        return Optional.ofNullable(db.write(c -> {
            if (get(c, accountId, uuid) == null) return null;
            moveTag(c, accountId, uuid, tag);
            return get(c, accountId, uuid);
        }));
    }

    /** Outcome of {@link #removeTag}. */
    public sealed interface Untag {
        record Done(Image image) implements Untag {}
        record NoSuchImage() implements Untag {}
        record TagNotOnImage(String tag) implements Untag {}
    }

    /** Removes the image's tag; with {@code expected} non-null, only if the image carries exactly that tag. */
    public Untag removeTag(String accountId, String uuid, String expected) {
        return db.write(c -> {
            Image image = get(c, accountId, uuid);
            if (image == null) return new Untag.NoSuchImage();
            if (expected != null && !expected.equals(image.tag())) return new Untag.TagNotOnImage(expected);
            Sql.update(c, "UPDATE images SET tag = NULL WHERE uuid = ?", uuid);
            return new Untag.Done(get(c, accountId, uuid));
        });
    }

    public List<Image> children(String accountId, String uuid) {
        return db.read(c -> Sql.query(c, "SELECT * FROM images WHERE account_id = ? AND parent_uuid = ? ORDER BY created_at, uuid",
                ImageService::row, accountId, uuid));
    }

    private static void moveTag(Connection c, String accountId, String uuid, String tag) throws SQLException {
        Sql.update(c, "UPDATE images SET tag = NULL WHERE account_id = ? AND tag = ?", accountId, tag);
        Sql.update(c, "UPDATE images SET tag = ? WHERE uuid = ?", tag, uuid);
    }

    private static Image get(Connection c, String accountId, String uuid) throws SQLException {
        return Sql.one(c, "SELECT * FROM images WHERE account_id = ? AND uuid = ?", ImageService::row, accountId, uuid);
    }

    private static String quote(String s) {
        return "'" + s.replace("'", "''") + "'";
    }

    private static String json(Object o) {
        try {
            return JSON.writeValueAsString(o);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static Image row(ResultSet rs) throws SQLException {
        try {
            return new Image(rs.getString("uuid"), rs.getString("account_id"), rs.getString("tag"), Sql.instant(rs, "created_at"),
                    rs.getString("operation_uuid"), rs.getString("parent_uuid"),
                    JSON.readValue(rs.getString("layers"), new TypeReference<List<String>>() {}),
                    JSON.readValue(rs.getString("config"), ImageConfig.class), rs.getLong("size"));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new SQLException("corrupt image row " + rs.getString("uuid"), e);
        }
    }
}
