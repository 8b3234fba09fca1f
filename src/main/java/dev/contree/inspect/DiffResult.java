package dev.contree.inspect;

import java.util.List;

/** Paths (absolute image paths, walk order) that differ going from image a to image b. */
public record DiffResult(List<Change> added, List<Change> modified, List<Change> deleted) {

    /** {@code before} is null for an added path, {@code after} null for a deleted one. */
    public record Change(String path, MergedView.Entry before, MergedView.Entry after) {
        public MergedView.Type type() { return after != null ? after.type() : before.type(); }
        public long size() { return after != null ? after.size() : before.size(); }
    }
}
