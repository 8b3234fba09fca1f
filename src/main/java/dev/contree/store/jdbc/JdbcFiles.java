package dev.contree.store.jdbc;

import dev.contree.files.FileRecord;
import dev.contree.store.FileRecords;
import dev.contree.store.Page;
import dev.contree.store.TimeRange;

import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.List;
import java.util.Optional;
import java.util.UUID;

public final class JdbcFiles implements FileRecords {
    private final Engine db;

    public JdbcFiles(Engine db) {
        this.db = db;
    }

    @Override
    public FileRecord put(String accountId, String sha256, long size) {
        long now = Times.toMicros(Times.now());
        // One statement, so two uploads of the same bytes at once leave one record on any engine.
        return db.write(c -> {
            Sql.update(c, "INSERT INTO files (uuid, account_id, sha256, size, created_at, updated_at) VALUES (?,?,?,?,?,?)"
                            + " ON CONFLICT (account_id, sha256) DO UPDATE SET updated_at = excluded.updated_at",
                    UUID.randomUUID().toString(), accountId, sha256, size, now, now);
            return Sql.one(c, "SELECT * FROM files WHERE account_id = ? AND sha256 = ?", JdbcFiles::row, accountId, sha256);
        });
    }

    @Override
    public Optional<FileRecord> bySha256(String accountId, String sha256) {
        return Optional.ofNullable(db.read(c -> Sql.one(c,
                "SELECT * FROM files WHERE account_id = ? AND sha256 = ?", JdbcFiles::row, accountId, sha256)));
    }

    @Override
    public Optional<FileRecord> byUuid(String accountId, String uuid) {
        return Optional.ofNullable(db.read(c -> Sql.one(c,
                "SELECT * FROM files WHERE account_id = ? AND uuid = ?", JdbcFiles::row, accountId, uuid)));
    }

    @Override
    public List<FileRecord> list(String accountId, TimeRange range, Page page) {
        Where where = new Where().and("account_id = ?", accountId).range("created_at", range);
        return db.read(c -> Sql.query(c, "SELECT * FROM files WHERE " + where.sql() + " ORDER BY created_at DESC, uuid DESC LIMIT ? OFFSET ?",
                JdbcFiles::row, where.params(page.limit(), page.offset())));
    }

    @Override
    public List<FileRecord> all() {
        return db.read(c -> Sql.query(c, "SELECT * FROM files ORDER BY sha256, uuid", JdbcFiles::row));
    }

    @Override
    public void delete(String uuid) {
        db.write(c -> Sql.update(c, "DELETE FROM files WHERE uuid = ?", uuid));
    }

    private static FileRecord row(ResultSet rs) throws SQLException {
        return new FileRecord(rs.getString("uuid"), rs.getString("account_id"), rs.getString("sha256"), rs.getLong("size"),
                Sql.instant(rs, "created_at"), Sql.instant(rs, "updated_at"));
    }
}
