package dev.contree.files;

import java.time.Instant;

/** An uploaded file as an account sees it: a stable uuid over content-addressed bytes. */
public record FileRecord(String uuid, String accountId, String sha256, long size, Instant createdAt, Instant updatedAt) {}
