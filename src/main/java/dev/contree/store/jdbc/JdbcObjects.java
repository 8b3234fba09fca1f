package dev.contree.store.jdbc;

import dev.contree.store.ObjectRecords;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/** {@link ObjectRecords} over {@code object_marks}, {@code layer_objects}, {@code image_layers} and {@code files}. */
public final class JdbcObjects implements ObjectRecords {
    static final String LAYERS = "layers/";
    static final String FILES = "files/";
    /** The scope of {@link Engine#lock} on an object's key. */
    private static final String LOCK = "object";

    private final Engine db;

    public JdbcObjects(Engine db) {
        this.db = db;
    }

    @Override
    public Marking mark(List<Seen> seen) {
        if (seen.isEmpty()) return new Marking(0, 0);
        return db.write(c -> {
            Set<String> named = named(c, seen.stream().map(Seen::key).toList());
            long now = db.nowMicros(c);
            int marked = 0, unmarked = 0;
            for (Seen s : seen) {
                if (!s.key().startsWith(LAYERS) && !s.key().startsWith(FILES)) continue; // not ours: never touched
                if (named.contains(s.key())) {
                    unmarked += Sql.update(c, "DELETE FROM object_marks WHERE object_key = ?", s.key());
                } else {
                    marked += Sql.update(c, "INSERT INTO object_marks (object_key, bytes, marked_at) VALUES (?,?,?) ON CONFLICT DO NOTHING",
                            s.key(), s.bytes(), now);
                }
            }
            return new Marking(marked, unmarked);
        });
    }

    /** The keys among {@code keys} that something names now: an image's layer's pack, or an uploaded file's record. */
    private static Set<String> named(Connection c, List<String> keys) throws SQLException {
        List<String> layers = new ArrayList<>(), files = new ArrayList<>();
        for (String k : keys) {
            if (k.startsWith(LAYERS)) layers.add(k.substring(LAYERS.length()));
            else if (k.startsWith(FILES)) files.add(k.substring(FILES.length()));
        }
        Set<String> out = new HashSet<>();
        if (!layers.isEmpty()) {
            out.addAll(Sql.query(c, "SELECT DISTINCT lo.sha256 FROM layer_objects lo JOIN image_layers il ON il.layer_id = lo.layer_id"
                    + " WHERE lo.sha256 IN (" + Sql.placeholders(layers.size()) + ")", rs -> LAYERS + rs.getString(1), layers.toArray()));
        }
        if (!files.isEmpty()) {
            out.addAll(Sql.query(c, "SELECT DISTINCT sha256 FROM files WHERE sha256 IN (" + Sql.placeholders(files.size()) + ")",
                    rs -> FILES + rs.getString(1), files.toArray()));
        }
        return out;
    }

    @Override
    public List<Mark> due(long graceMicros, int limit) {
        return db.read(c -> Sql.query(c, "SELECT object_key, bytes, marked_at FROM object_marks WHERE marked_at < ?"
                + " ORDER BY marked_at, object_key LIMIT ?", JdbcObjects::row, db.nowMicros(c) - graceMicros, limit));
    }

    @Override
    public List<Mark> sweep(List<Mark> marks, long graceMicros, Deleter deleter) throws IOException {
        if (marks.isEmpty()) return List.of();
        try {
            return db.write(c -> {
                long cutoff = db.nowMicros(c) - graceMicros;
                List<Mark> doomed = new ArrayList<>();
                // Sorted: two transactions locking several keys take them in one order.
                for (String key : new TreeSet<>(marks.stream().map(Mark::key).toList())) {
                    db.lock(c, LOCK, key);
                    // Read again under the lock: a reuser may have removed the mark, an image may name the object now.
                    Mark m = Sql.one(c, "SELECT object_key, bytes, marked_at FROM object_marks WHERE object_key = ?", JdbcObjects::row, key);
                    if (m == null || m.markedAt() >= cutoff) continue;
                    if (!named(c, List.of(key)).isEmpty()) {
                        Sql.update(c, "DELETE FROM object_marks WHERE object_key = ?", key);
                        continue;
                    }
                    if (key.startsWith(LAYERS)) forgetLayersPackedAs(c, key.substring(LAYERS.length()));
                    Sql.update(c, "DELETE FROM object_marks WHERE object_key = ?", key);
                    doomed.add(m);
                }
                // Before the commit: until it, every reuser of these keys waits on their locks; if this fails, nothing changed.
                if (!doomed.isEmpty()) {
                    try {
                        deleter.delete(doomed.stream().map(Mark::key).toList());
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                }
                return doomed;
            });
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    /** The records of the layers (no image uses any of them) whose pack is {@code sha256}: the pack is going. */
    private static void forgetLayersPackedAs(Connection c, String sha256) throws SQLException {
        for (String id : Sql.query(c, "SELECT layer_id FROM layer_objects WHERE sha256 = ?", rs -> rs.getString(1), sha256)) {
            Sql.update(c, "DELETE FROM layer_objects WHERE layer_id = ?", id);
            Sql.update(c, "DELETE FROM layers WHERE id = ? AND NOT EXISTS (SELECT 1 FROM image_layers WHERE layer_id = ?)", id, id);
        }
    }

    @Override
    public List<String> marked(List<String> keys) {
        if (keys.isEmpty()) return List.of();
        return db.read(c -> Sql.query(c, "SELECT object_key FROM object_marks WHERE object_key IN (" + Sql.placeholders(keys.size()) + ")",
                rs -> rs.getString(1), keys.toArray()));
    }

    @Override
    public List<String> unmark(List<String> keys, Reviver reviver) throws IOException {
        List<String> out = new ArrayList<>();
        for (String key : new TreeSet<>(keys)) {
            try {
                boolean revived = db.write(c -> {
                    db.lock(c, LOCK, key); // waits for a collector deleting it now; afterwards it is unmarked (gone) or marked
                    if (Sql.one(c, "SELECT 1 FROM object_marks WHERE object_key = ?", rs -> Boolean.TRUE, key) == null) return false;
                    try {
                        reviver.revive(key);
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                    Sql.update(c, "DELETE FROM object_marks WHERE object_key = ?", key);
                    return true;
                });
                if (revived) out.add(key);
            } catch (UncheckedIOException e) {
                throw e.getCause();
            }
        }
        return out;
    }

    @Override
    public List<LayerPack> packs(List<String> layerIds) {
        if (layerIds.isEmpty()) return List.of();
        List<String> ids = List.copyOf(new java.util.LinkedHashSet<>(layerIds));
        return db.read(c -> Sql.query(c, "SELECT lo.layer_id, lo.sha256, m.object_key FROM layer_objects lo"
                + " LEFT JOIN object_marks m ON m.object_key = 'layers/' || lo.sha256 WHERE lo.layer_id IN (" + Sql.placeholders(ids.size()) + ")",
                rs -> new LayerPack(rs.getString(1), rs.getString(2), rs.getString(3) != null), ids.toArray()));
    }

    @Override
    public boolean exclusive(Runnable work) {
        return db.exclusive("object-gc", work);
    }

    @Override
    public long markCount() {
        return db.read(c -> Sql.one(c, "SELECT COUNT(*) FROM object_marks", rs -> rs.getLong(1)));
    }

    @Override
    public List<Mark> marks() {
        return db.read(c -> Sql.query(c, "SELECT object_key, bytes, marked_at FROM object_marks ORDER BY object_key", JdbcObjects::row));
    }

    private static Mark row(java.sql.ResultSet rs) throws SQLException {
        return new Mark(rs.getString(1), rs.getLong(2), rs.getLong(3));
    }
}
