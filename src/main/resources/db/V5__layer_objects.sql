-- Layers packed into the object store (serve --object-store): the sha256 of the pack (tar, zstd) other nodes fetch
-- and check before they unpack it, and its size. Written before any image that uses the layer.
CREATE TABLE layer_objects (
  layer_id    TEXT PRIMARY KEY,
  sha256      TEXT NOT NULL,
  bytes       INTEGER NOT NULL,
  created_at  INTEGER NOT NULL
);
