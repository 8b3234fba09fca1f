-- Content addressing deduplicates storage, never access: an account may reuse a stored layer by its digest only
-- after it proved it holds those bytes (its import downloaded and verified them). Existing images keep their
-- layers; an account without a row here re-downloads and verifies once, then shares the stored layer.
CREATE TABLE digest_proofs (
  account_id  TEXT NOT NULL REFERENCES accounts(id),
  digest      TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (account_id, digest)
);
