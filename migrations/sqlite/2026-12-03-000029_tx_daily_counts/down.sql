DROP TRIGGER tx_daily_counts_update;
DROP TRIGGER tx_daily_counts_delete;
DROP TRIGGER tx_daily_counts_insert;
DROP TABLE tx_daily_counts;
