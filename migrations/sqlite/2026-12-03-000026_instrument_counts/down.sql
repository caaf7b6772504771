DROP INDEX instruments_expiry;
DROP TRIGGER instruments_count_delete;
DROP TRIGGER instruments_count_insert;
ALTER TABLE containers DROP COLUMN instrument_count;
