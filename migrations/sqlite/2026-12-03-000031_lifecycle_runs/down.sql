DROP TABLE lifecycle_runs;
