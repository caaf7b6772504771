DROP TRIGGER tx_daily_counts_update ON transactions;
DROP TRIGGER tx_daily_counts_insert ON transactions;
DROP FUNCTION coffer_tx_daily_count();
DROP TABLE tx_daily_counts;
