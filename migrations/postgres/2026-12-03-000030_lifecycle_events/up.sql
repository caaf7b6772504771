-- Lifecycle webhooks (issue #15): a connector may name a "Lifecycle webhook URL" and how many
-- days before a card's expiry it is told (instrument.expiring). Lifecycle events travel in the
-- callback outbox: a row with event_type set is an event (its id is the event id, its
-- it has no transaction), one without is a transaction callback.
ALTER TABLE connectors ADD COLUMN lifecycle_webhook_url TEXT;
ALTER TABLE connectors ADD COLUMN expiry_notice_days INTEGER NOT NULL DEFAULT 30;
ALTER TABLE callbacks ADD COLUMN event_type TEXT;
ALTER TABLE callbacks ALTER COLUMN transaction_uuid DROP NOT NULL;
CREATE INDEX callbacks_events ON callbacks(connector_id, created_at) WHERE event_type IS NOT NULL;
-- An instrument remembers when instrument.expiring was sent for its current expiry, when it
-- was found expired, and what the (simulated) account updater last did to it.
ALTER TABLE instruments ADD COLUMN expiry_noticed_at TIMESTAMP;
ALTER TABLE instruments ADD COLUMN expired_at TIMESTAMP;
ALTER TABLE instruments ADD COLUMN card_update_status TEXT;
ALTER TABLE instruments ADD COLUMN card_updated_at TIMESTAMP;
