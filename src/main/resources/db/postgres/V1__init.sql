-- ConTree's metadata in PostgreSQL: the same tables, columns and meaning as SQLite's schema after its V4
-- (src/main/resources/db/), so one SQL text serves both engines. Times are microseconds since the epoch
-- (BIGINT, as in SQLite: one row mapping; to_timestamp(created_at / 1e6) reads one by hand). Text compares
-- and sorts bytewise (COLLATE "C"), as in SQLite, whatever the database's locale.

-- Accounts own everything; a token belongs to one account.
CREATE TABLE accounts (
  id          TEXT COLLATE "C" PRIMARY KEY,
  name        TEXT COLLATE "C" NOT NULL UNIQUE,
  created_at  BIGINT NOT NULL
);

CREATE TABLE tokens (
  uuid        TEXT COLLATE "C" PRIMARY KEY,
  account_id  TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
  name        TEXT COLLATE "C" NOT NULL,
  token_hash  TEXT COLLATE "C" NOT NULL UNIQUE,
  created_at  BIGINT NOT NULL,
  expires_at  BIGINT,
  revoked_at  BIGINT
);

-- An uploaded file: per-account record over a content-addressed blob.
CREATE TABLE files (
  uuid        TEXT COLLATE "C" PRIMARY KEY,
  account_id  TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
  sha256      TEXT COLLATE "C" NOT NULL,
  size        BIGINT NOT NULL,
  created_at  BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL,
  UNIQUE (account_id, sha256)
);
CREATE INDEX files_by_time ON files (account_id, created_at DESC, uuid DESC);

-- An image: its layers (image_layers) plus the config executions start from. The config is the JSON text as
-- written (not jsonb), so identical configs compare equal as text, as in SQLite.
CREATE TABLE images (
  uuid            TEXT COLLATE "C" PRIMARY KEY,
  account_id      TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
  tag             TEXT COLLATE "C",
  created_at      BIGINT NOT NULL,
  operation_uuid  TEXT COLLATE "C",
  parent_uuid     TEXT COLLATE "C",
  config          TEXT COLLATE "C" NOT NULL DEFAULT '{}',
  size            BIGINT NOT NULL DEFAULT 0,
  UNIQUE (account_id, tag)
);
CREATE INDEX images_by_time ON images (account_id, created_at DESC, uuid DESC);
CREATE INDEX images_by_parent ON images (parent_uuid);

-- An image's layers, top first (position 0 is the top layer).
CREATE TABLE image_layers (
  image_uuid  TEXT COLLATE "C" NOT NULL REFERENCES images(uuid),
  position    INTEGER NOT NULL,
  layer_id    TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (image_uuid, position)
);
CREATE INDEX image_layers_by_layer ON image_layers (layer_id);

-- Layers known to the metadata store; imported ones keep their OCI diff digest.
CREATE TABLE layers (
  id          TEXT COLLATE "C" PRIMARY KEY,
  digest      TEXT COLLATE "C" UNIQUE,
  size        BIGINT NOT NULL DEFAULT 0,
  created_at  BIGINT NOT NULL
);

-- Which accounts proved they hold a digest's bytes (content addressing deduplicates storage, never access).
CREATE TABLE digest_proofs (
  account_id  TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
  digest      TEXT COLLATE "C" NOT NULL,
  created_at  BIGINT NOT NULL,
  PRIMARY KEY (account_id, digest)
);

-- next_event_id numbers the operation's event log: an append takes it with an UPDATE of this row, so appends
-- from many connections or nodes get dense ids in commit order.
CREATE TABLE operations (
  uuid               TEXT COLLATE "C" PRIMARY KEY,
  account_id         TEXT COLLATE "C" NOT NULL REFERENCES accounts(id),
  kind               TEXT COLLATE "C" NOT NULL,
  status             TEXT COLLATE "C" NOT NULL,
  error              TEXT COLLATE "C",
  created_at         BIGINT NOT NULL,
  started_at         BIGINT,
  finished_at        BIGINT,
  image_uuid         TEXT COLLATE "C",
  result_image_uuid  TEXT COLLATE "C",
  result_tag         TEXT COLLATE "C",
  image_size         BIGINT,
  consumed_cpu       DOUBLE PRECISION,
  consumed_memory    BIGINT,
  metadata           TEXT COLLATE "C" NOT NULL,
  next_event_id      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX operations_by_time ON operations (account_id, created_at DESC, uuid DESC);
CREATE INDEX operations_by_status ON operations (status);

CREATE TABLE operation_events (
  operation_uuid  TEXT COLLATE "C" NOT NULL REFERENCES operations(uuid),
  id              BIGINT NOT NULL,
  ts              BIGINT NOT NULL,
  spid            INTEGER NOT NULL,
  type            TEXT COLLATE "C" NOT NULL,
  data            TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (operation_uuid, id)
);
