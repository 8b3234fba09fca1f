-- Layers known to the metadata store. Imported layers keep their OCI diff digest so images that share
-- a base share storage and a re-import is a no-op.
CREATE TABLE layers (
  id          TEXT PRIMARY KEY,
  digest      TEXT UNIQUE,
  size        INTEGER NOT NULL DEFAULT 0,
  created_at  INTEGER NOT NULL
);
