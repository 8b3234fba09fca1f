package dev.contree.imports;

import dev.contree.files.FileRecord;
import dev.contree.files.FileService;
import dev.contree.images.ImageConfig;

import java.io.InputStream;
import java.util.List;

/** Import sources backed by an uploaded file. */
final class FileSources {
    private FileSources() {}

    /** A plain root filesystem tarball (optionally gzip/zstd): one layer, no whiteouts. */
    static ImportSource rootfs(FileService files, FileRecord file) {
        ImportSource.Layer layer = new ImportSource.Layer() {
            @Override public String digest() { return "rootfs:sha256:" + file.sha256(); }
            @Override public InputStream open() throws java.io.IOException { return files.open(file); }
            @Override public boolean ociWhiteouts() { return false; }
            // The digest is the sha256 of a file this account uploaded (the blob store hashed it on the way in).
            @Override public boolean accountHoldsBytes() { return true; }
        };
        return cancel -> new ImportSource.Resolved(List.of(layer), ImageConfig.EMPTY);
    }
}
