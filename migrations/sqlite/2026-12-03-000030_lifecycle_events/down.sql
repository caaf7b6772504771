DROP INDEX callbacks_events;
ALTER TABLE instruments DROP COLUMN card_updated_at;
ALTER TABLE instruments DROP COLUMN card_update_status;
ALTER TABLE instruments DROP COLUMN expired_at;
ALTER TABLE instruments DROP COLUMN expiry_noticed_at;
DELETE FROM callbacks WHERE transaction_uuid IS NULL;
ALTER TABLE callbacks DROP COLUMN event_type;
ALTER TABLE connectors DROP COLUMN expiry_notice_days;
ALTER TABLE connectors DROP COLUMN lifecycle_webhook_url;
