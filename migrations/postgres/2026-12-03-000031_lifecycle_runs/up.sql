-- Runs of the expiry scan and of the (simulated) account updater. A run walks instruments in
-- id order, one batch per transaction, and commits its cursor with each batch: an interrupted
-- run is continued by the next one (resumable). The row 'expiry_scan' is the daily scan's
-- lease: one process at a time takes it (locked_until), and last_finished_at says when the
-- last daily scan ended.
CREATE TABLE lifecycle_runs (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    container_id TEXT,
    status TEXT NOT NULL,
    cursor TEXT,
    done BIGINT NOT NULL DEFAULT 0,
    changed BIGINT NOT NULL DEFAULT 0,
    started_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    locked_until TIMESTAMP,
    locked_by TEXT
);
CREATE INDEX lifecycle_runs_kind ON lifecycle_runs(kind, container_id, status);
