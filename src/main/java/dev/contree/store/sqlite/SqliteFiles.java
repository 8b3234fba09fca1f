package dev.contree.store.sqlite;

import dev.contree.files.FileRecord;
import dev.contree.store.FileRecords;
import dev.contree.store.Page;
import dev.contree.store.TimeRange;

import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.List;
import java.util.Optional;
import java.util.UUID;

final class SqliteFiles implements FileRecords {
    private final Database db;

    SqliteFiles(Database db) {
        this.db = db;
    }

    @Override
    public FileRecord put(String accountId, String sha256, long size) {
        long now = Times.toMicros(Times.now());
        return db.write(c -> {
            FileRecord existing = Sql.one(c, "SELECT * FROM files WHERE account_id = ? AND sha256 = ?", SqliteFiles::row, accountId, sha256);
            String uuid;
            if (existing != null) {
                uuid = existing.uuid();
                Sql.update(c, "UPDATE files SET updated_at = ? WHERE uuid = ?", now, uuid);
            } else {
                uuid = UUID.randomUUID().toString();
                Sql.update(c, "INSERT INTO files (uuid, account_id, sha256, size, created_at, updated_at) VALUES (?,?,?,?,?,?)",
                        uuid, accountId, sha256, size, now, now);
            }
            return Sql.one(c, "SELECT * FROM files WHERE uuid = ?", SqliteFiles::row, uuid);
        });
    }

    @Override
    public Optional<FileRecord> bySha256(String accountId, String sha256) {
        return Optional.ofNullable(db.read(c -> Sql.one(c,
                "SELECT * FROM files WHERE account_id = ? AND sha256 = ?", SqliteFiles::row, accountId, sha256)));
    }

    @Override
    public Optional<FileRecord> byUuid(String accountId, String uuid) {
        return Optional.ofNullable(db.read(c -> Sql.one(c,
                "SELECT * FROM files WHERE account_id = ? AND uuid = ?", SqliteFiles::row, accountId, uuid)));
    }

    @Override
    public List<FileRecord> list(String accountId, TimeRange range, Page page) {
        Where where = new Where().and("account_id = ?", accountId).range("created_at", range);
        return db.read(c -> Sql.query(c, "SELECT * FROM files WHERE " + where.sql() + " ORDER BY created_at DESC, uuid DESC LIMIT ? OFFSET ?",
                SqliteFiles::row, where.params(page.limit(), page.offset())));
    }

    @Override
    public List<FileRecord> all() {
        return db.read(c -> Sql.query(c, "SELECT * FROM files ORDER BY sha256, uuid", SqliteFiles::row));
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
