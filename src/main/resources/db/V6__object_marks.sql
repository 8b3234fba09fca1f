-- Bucket-wide garbage collection (objects.BucketGarbageCollector): an object of the object store that nothing names
-- (no image's layer packs to it, no uploaded file's record has its sha256) is marked here when a pass first sees it
-- so; it is deleted only by a later pass, at least the grace period after marked_at, if it is still unnamed then.
-- Whoever reuses an object while it is marked removes the mark first (objects.ObjectGuard), after making sure the
-- object is still there. object_key: 'layers/<sha256>' or 'files/<sha256>'; marked_at: microseconds.
CREATE TABLE object_marks (
  object_key  TEXT PRIMARY KEY,
  bytes       INTEGER NOT NULL,
  marked_at   INTEGER NOT NULL
);
CREATE INDEX object_marks_marked_at ON object_marks (marked_at);
CREATE INDEX layer_objects_sha256 ON layer_objects (sha256);
CREATE INDEX files_sha256 ON files (sha256);
