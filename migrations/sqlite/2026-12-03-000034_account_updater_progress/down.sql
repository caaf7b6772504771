ALTER TABLE lifecycle_runs DROP COLUMN actor_name;
ALTER TABLE lifecycle_runs DROP COLUMN actor_id;
ALTER TABLE lifecycle_runs DROP COLUMN closed;
ALTER TABLE lifecycle_runs DROP COLUMN replaced;
ALTER TABLE lifecycle_runs DROP COLUMN reissued;
ALTER TABLE lifecycle_runs DROP COLUMN total;
