package dev.contree.files;

import dev.contree.store.FileRecords;
import dev.contree.store.Page;
import dev.contree.store.TimeRange;

import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Optional;

/** Uploads and lookups of files. Same bytes uploaded again by the same account → the same uuid. */
public final class FileService {
    private final FileRecords records;
    private final BlobStore blobs;
    private final long maxUploadBytes;
    private final dev.contree.images.AccountStorage storage;

    public FileService(FileRecords records, BlobStore blobs, long maxUploadBytes, dev.contree.images.AccountStorage storage) {
        this.records = records;
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
        return records.put(accountId, stored.sha256(), stored.size());
    }

    public Optional<FileRecord> bySha256(String accountId, String sha256) {
        return records.bySha256(accountId, sha256).filter(f -> blobs.exists(f.sha256()));
    }

    public Optional<FileRecord> byUuid(String accountId, String uuid) {
        return records.byUuid(accountId, uuid).filter(f -> blobs.exists(f.sha256()));
    }

    public List<FileRecord> list(String accountId, TimeRange range, Page page) {
        return records.list(accountId, range, page);
    }

    public InputStream open(FileRecord file) throws IOException {
        return blobs.open(file.sha256());
    }

    public java.nio.file.Path blobPath(FileRecord file) {
        return blobs.path(file.sha256());
    }
}
