-- The account updater runs in the server's background (issue 15): what its progress page shows
-- (the cards to ask about, and each kind of change) and who started it (the audit actor of the
-- run's changes and card reads; no actor id: the command line).
ALTER TABLE lifecycle_runs ADD COLUMN total BIGINT NOT NULL DEFAULT 0;
ALTER TABLE lifecycle_runs ADD COLUMN reissued BIGINT NOT NULL DEFAULT 0;
ALTER TABLE lifecycle_runs ADD COLUMN replaced BIGINT NOT NULL DEFAULT 0;
ALTER TABLE lifecycle_runs ADD COLUMN closed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE lifecycle_runs ADD COLUMN actor_id TEXT;
ALTER TABLE lifecycle_runs ADD COLUMN actor_name TEXT;
