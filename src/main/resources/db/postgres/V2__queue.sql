-- The cluster queue (issue 14): with PostgreSQL every accepted spawn or import is a row here until its operation is
-- over. Worker nodes claim rows (FOR UPDATE SKIP LOCKED) and hold a lease on each claimed row that their heartbeat
-- extends; a lease that lapses means the worker stopped. Times are microseconds on the database's clock (one clock
-- for every node, whatever theirs say).
CREATE TABLE queue (
  operation_uuid  TEXT COLLATE "C" PRIMARY KEY REFERENCES operations(uuid),
  account_id      TEXT COLLATE "C" NOT NULL,
  kind            TEXT COLLATE "C" NOT NULL,
  seq             BIGSERIAL,
  -- what the accepting node spooled, for the worker that runs it (bounded by the stdin limits)
  stdin           BYTEA,
  -- an import's registry password, which the operation's recorded request does not keep; gone with the row
  secret          TEXT COLLATE "C",
  claimed_by      TEXT COLLATE "C",
  -- the boot (random per process start) of the claiming worker: a worker restarted under the same id renews and
  -- releases only its own process's claims, never its dead predecessor's
  claimed_boot    TEXT COLLATE "C",
  claimed_at      BIGINT,
  lease_expires   BIGINT
);
CREATE INDEX queue_waiting ON queue (seq) WHERE claimed_by IS NULL;
CREATE INDEX queue_by_worker ON queue (claimed_by, lease_expires) WHERE claimed_by IS NOT NULL;

-- When each account last had work claimed: round robin among accounts that hold equally many running operations.
CREATE TABLE queue_turns (
  account_id  TEXT COLLATE "C" PRIMARY KEY,
  last_claim  BIGINT NOT NULL
);

-- Where each node serves HTTP, for calls that must reach the node running an operation (a live instance's
-- subprocesses): written when the node starts serving.
CREATE TABLE queue_nodes (
  worker_id   TEXT COLLATE "C" PRIMARY KEY,
  api_url     TEXT COLLATE "C" NOT NULL,
  seen_at     BIGINT NOT NULL
);
