-- Accounts own everything; a token belongs to one account.
CREATE TABLE accounts (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL
);

CREATE TABLE tokens (
  uuid        TEXT PRIMARY KEY,
  account_id  TEXT NOT NULL REFERENCES accounts(id),
  name        TEXT NOT NULL,
  token_hash  TEXT NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER,
  revoked_at  INTEGER
);

-- An uploaded file: per-account record over a content-addressed blob.
CREATE TABLE files (
  uuid        TEXT PRIMARY KEY,
  account_id  TEXT NOT NULL REFERENCES accounts(id),
  sha256      TEXT NOT NULL,
  size        INTEGER NOT NULL,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  UNIQUE (account_id, sha256)
);
CREATE INDEX files_by_time ON files (account_id, created_at DESC, uuid DESC);

-- An image: an ordered list of layers (top first) plus the config executions start from.
CREATE TABLE images (
  uuid            TEXT PRIMARY KEY,
  account_id      TEXT NOT NULL REFERENCES accounts(id),
  tag             TEXT,
  created_at      INTEGER NOT NULL,
  operation_uuid  TEXT,
  parent_uuid     TEXT,
  layers          TEXT NOT NULL DEFAULT '[]',
  config          TEXT NOT NULL DEFAULT '{}',
  size            INTEGER NOT NULL DEFAULT 0,
  UNIQUE (account_id, tag)
);
CREATE INDEX images_by_time ON images (account_id, created_at DESC, uuid DESC);
CREATE INDEX images_by_parent ON images (parent_uuid);

CREATE TABLE operations (
  uuid               TEXT PRIMARY KEY,
  account_id         TEXT NOT NULL REFERENCES accounts(id),
  kind               TEXT NOT NULL,
  status             TEXT NOT NULL,
  error              TEXT,
  created_at         INTEGER NOT NULL,
  started_at         INTEGER,
  finished_at        INTEGER,
  image_uuid         TEXT,
  result_image_uuid  TEXT,
  result_tag         TEXT,
  image_size         INTEGER,
  consumed_cpu       REAL,
  consumed_memory    INTEGER,
  metadata           TEXT NOT NULL
);
CREATE INDEX operations_by_time ON operations (account_id, created_at DESC, uuid DESC);
CREATE INDEX operations_by_status ON operations (status);

CREATE TABLE operation_events (
  operation_uuid  TEXT NOT NULL,
  id              INTEGER NOT NULL,
  ts              INTEGER NOT NULL,
  spid            INTEGER NOT NULL,
  type            TEXT NOT NULL,
  data            TEXT NOT NULL,
  PRIMARY KEY (operation_uuid, id)
);
