package dev.contree.files;

import dev.contree.store.Database;
import dev.contree.store.Page;
import dev.contree.store.Sql;
import dev.contree.store.TimeRange;
import dev.contree.store.Times;

import java.io.IOException;
import java.io.InputStream;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;

/** Uploads and lookups of files. Same bytes uploaded again by the same account → the same uuid. */
public final class FileService {
    private final Database db;
    private final BlobStore blobs;
    private final long maxUploadBytes;
    private final dev.contree.images.AccountStorage storage;

    public FileService(Database db, BlobStore blobs, long maxUploadBytes, dev.contree.images.AccountStorage storage) {
        this.db = db;
        this.blobs = blobs;
        this.maxUploadBytes = maxUploadBytes;
        this.storage = storage;
    }

    /** Thrown when the account is at its storage bound; nothing is read or stored. */
    public static final class StorageFullException extends IOException {
        StorageFullException(String message) { super(message); }
    }

    public FileRecord upload(String accountId, InputStream body) throws IOException {
        if (storage.remaining(accountId) <= 0) throw new StorageFullException(storage.overMessage(accountId));
        BlobStore.Stored stored = blobs.put(body, maxUploadBytes);
        long now = Times.toMicros(Times.now());
        return db.write(c -> {
            FileRecord existing = Sql.one(c, "SELECT * FROM files WHERE account_id = ? AND sha256 = ?",
                    FileService::row, accountId, stored.sha256());
            if (existing != null) {
                Sql.update(c, "UPDATE files SET updated_at = ? WHERE uuid = ?", now, existing.uuid());
                return Sql.one(c, "SELECT * FROM files WHERE uuid = ?", FileService::row, existing.uuid());
            }
            String uuid = UUID.randomUUID().toString();
            Sql.update(c, "INSERT INTO files (uuid, account_id, sha256, size, created_at, updated_at) VALUES (?,?,?,?,?,?)",
                    uuid, accountId, stored.sha256(), stored.size(), now, now);
            return Sql.one(c, "SELECT * FROM files WHERE uuid = ?", FileService::row, uuid);
        });
    }

    public Optional<FileRecord> bySha256(String accountId, String sha256) {
        return Optional.ofNullable(db.read(c -> Sql.one(c,
                "SELECT * FROM files WHERE account_id = ? AND sha256 = ?", FileService::row, accountId, sha256)))
                .filter(f -> blobs.exists(f.sha256()));
    }

    public Optional<FileRecord> byUuid(String accountId, String uuid) {
        return Optional.ofNullable(db.read(c -> Sql.one(c,
                "SELECT * FROM files WHERE account_id = ? AND uuid = ?", FileService::row, accountId, uuid)))
                .filter(f -> blobs.exists(f.sha256()));
    }

    public List<FileRecord> list(String accountId, TimeRange range, Page page) {
        StringBuilder where = new StringBuilder("account_id = ?");
        List<Object> params = new ArrayList<>(List.of(accountId));
        range.appendTo("created_at", where, params);
        params.add(page.limit());
        params.add(page.offset());
        return db.read(c -> Sql.query(c, "SELECT * FROM files WHERE " + where
                + " ORDER BY created_at DESC, uuid DESC LIMIT ? OFFSET ?", FileService::row, params.toArray()));
    }

    public InputStream open(FileRecord file) throws IOException {
        return blobs.open(file.sha256());
    }

    public java.nio.file.Path blobPath(FileRecord file) {
        return blobs.path(file.sha256());
    }

    private static FileRecord row(ResultSet rs) throws SQLException {
        return new FileRecord(rs.getString("uuid"), rs.getString("account_id"), rs.getString("sha256"), rs.getLong("size"),
                Sql.instant(rs, "created_at"), Sql.instant(rs, "updated_at"));
    }
}
