package dev.contree.store;

import dev.contree.files.FileRecord;

import java.util.List;
import java.util.Optional;

/** Per-account records of uploaded files over content-addressed blobs; one record per account and sha256. */
public interface FileRecords {
    /** The account's record for these bytes: the existing one (its {@code updatedAt} moved to now), else a new one. */
    FileRecord put(String accountId, String sha256, long size);

    Optional<FileRecord> bySha256(String accountId, String sha256);

    Optional<FileRecord> byUuid(String accountId, String uuid);

    /** The account's files, newest first. */
    List<FileRecord> list(String accountId, TimeRange range, Page page);

    /** Every file of every account, by sha256 then uuid (for fsck). */
    List<FileRecord> all();

    void delete(String uuid);
}
