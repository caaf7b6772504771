-- One key per root tenant (issue [keys]): a data key row names its owner, the root tenant whose
-- records it seals (NULL: the platform's own records, and records sealed before this migration).
-- `deactivated_at` is when a newer key of the same owner took over: the re-encryption job moves
-- records off it, and the key is retired (its row deleted) only once no record names it.
ALTER TABLE vault_keys ADD COLUMN owner TEXT;
ALTER TABLE vault_keys ADD COLUMN deactivated_at TIMESTAMP;
CREATE INDEX vault_keys_owner ON vault_keys (owner, active);

-- A re-encryption job: every sealed record is opened and sealed again under the active data key
-- of its owner. One batch per transaction; `reencrypt_cursors` holds how far each table got, so a
-- crash resumes where the last committed batch ended, and on PostgreSQL the cursor row's lock
-- makes processes take turns instead of doing a record twice.
CREATE TABLE reencrypt_jobs (
    id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    state TEXT NOT NULL,
    total BIGINT NOT NULL,
    done BIGINT NOT NULL DEFAULT 0,
    resealed BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
CREATE TABLE reencrypt_cursors (
    job_id TEXT NOT NULL REFERENCES reencrypt_jobs (id) ON DELETE CASCADE,
    tbl TEXT NOT NULL,
    position TEXT NOT NULL DEFAULT '',
    finished BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (job_id, tbl)
);
