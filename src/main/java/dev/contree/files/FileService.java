package dev.contree.files;

import dev.contree.objects.ObjectKey;
import dev.contree.objects.ObjectStore;
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
    /** The cluster's object store (null on a single node): every uploaded file is there before its record is. */
    private final ObjectStore objects;

    public FileService(FileRecords records, BlobStore blobs, long maxUploadBytes, dev.contree.images.AccountStorage storage) {
        this(records, blobs, maxUploadBytes, storage, null);
    }

    /**
     * With an object store, an upload is stored there by its sha256 as well as in this node's blob store (which then
     * serves as this node's cache: the node that took an upload is the likeliest to inject it); a node that needs a
     * file it lacks fetches it and checks its sha256 before it lands in the blob store.
     */
    public FileService(FileRecords records, BlobStore blobs, long maxUploadBytes, dev.contree.images.AccountStorage storage,
                       ObjectStore objects) {
        this.records = records;
        this.blobs = blobs;
        this.maxUploadBytes = maxUploadBytes;
        this.storage = storage;
        this.objects = objects;
    }

    /** Thrown when the account is at its storage bound; nothing is read or stored. */
    public static final class StorageFullException extends IOException {
        StorageFullException(String message) { super(message); }
    }

    /** The upload arrived but could not be stored in the object store; no record was made (the client may retry). */
    public static final class SharingFailedException extends IOException {
        SharingFailedException(IOException cause) { super("the file could not be stored in the object store: " + cause.getMessage(), cause); }
    }

    public FileRecord upload(String accountId, InputStream body) throws IOException {
        if (storage.remaining(accountId) <= 0) throw new StorageFullException(storage.overMessage(accountId));
        BlobStore.Stored stored = blobs.put(body, maxUploadBytes);
        if (objects != null) { // before the record: a file every node may be asked to inject
            try {
                objects.put(ObjectKey.file(stored.sha256()), blobs.path(stored.sha256()));
            } catch (IOException e) {
                throw new SharingFailedException(e);
            }
        }
        return records.put(accountId, stored.sha256(), stored.size());
    }

    public Optional<FileRecord> bySha256(String accountId, String sha256) {
        return records.bySha256(accountId, sha256).filter(this::available);
    }

    public Optional<FileRecord> byUuid(String accountId, String uuid) {
        return records.byUuid(accountId, uuid).filter(this::available);
    }

    /** Uploads go to an object store every node reads (cluster mode), not only to this node's disk. */
    public boolean shared() {
        return objects != null;
    }

    /** A record's bytes are here, or (cluster) in the object store, where every upload went before its record. */
    public boolean available(FileRecord f) {
        return objects != null || blobs.exists(f.sha256());
    }

    /** Makes the file's bytes present in this node's blob store, fetching and checking them if needed. */
    private void ensureLocal(FileRecord file) throws IOException {
        if (blobs.exists(file.sha256()) || objects == null) return;
        try (InputStream in = objects.open(ObjectKey.file(file.sha256()))) {
            blobs.putVerified(in, file.sha256(), Math.max(maxUploadBytes, file.size()));
        } catch (BlobStore.MismatchException e) {
            throw new IOException("file " + file.uuid() + " cannot be fetched from the object store: " + e.getMessage(), e);
        }
    }

    public List<FileRecord> list(String accountId, TimeRange range, Page page) {
        return records.list(accountId, range, page);
    }

    public InputStream open(FileRecord file) throws IOException {
        ensureLocal(file);
        return blobs.open(file.sha256());
    }

    /** The file's bytes on this node's disk (fetched first if needed). */
    public java.nio.file.Path localPath(FileRecord file) throws IOException {
        ensureLocal(file);
        return blobs.path(file.sha256());
    }
}
