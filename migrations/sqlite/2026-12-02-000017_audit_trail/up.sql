-- The audit trail (issue 12): who signed in from where, who read which profile, and a hash
-- chain per root tenant that makes an edited, inserted or removed entry detectable.
ALTER TABLE audit_log ADD COLUMN source_addr TEXT;
ALTER TABLE audit_log ADD COLUMN user_agent TEXT;
-- The chain: a root tenant's id, or 'platform' for entries outside every tenant.
ALTER TABLE audit_log ADD COLUMN chain TEXT;
ALTER TABLE audit_log ADD COLUMN seq BIGINT;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;
CREATE INDEX audit_log_chain ON audit_log(chain, seq);
CREATE INDEX audit_log_object ON audit_log(object_id, id);
CREATE INDEX audit_log_actor ON audit_log(actor_name, id);

-- The head of each chain: appends lock this row, so that one chain has one writer at a time.
CREATE TABLE audit_chains (
    chain TEXT PRIMARY KEY NOT NULL,
    seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL
);

-- One row while the entries written before this migration still have to be chained (SQLite has
-- no SHA-256 in SQL): the next start chains them, in id order, and deletes the row.
CREATE TABLE audit_legacy_pending (
    id INTEGER PRIMARY KEY NOT NULL
);
INSERT INTO audit_legacy_pending (id) VALUES (1);
