DROP INDEX instruments_expiry;
DROP TRIGGER instruments_count ON instruments;
DROP FUNCTION coffer_count_instruments();
ALTER TABLE containers DROP COLUMN instrument_count;
