-- Lifecycle webhooks (issue #15): a connector may name a "Lifecycle webhook URL" and how many
-- days before a card's expiry it is told (instrument.expiring). Lifecycle events travel in the
-- callback outbox: a row with event_type set is an event (its id is the event id, it has no
-- transaction), one without is a transaction callback.
ALTER TABLE connectors ADD COLUMN lifecycle_webhook_url TEXT;
ALTER TABLE connectors ADD COLUMN expiry_notice_days INTEGER NOT NULL DEFAULT 30;

-- callbacks.transaction_uuid becomes nullable: SQLite rebuilds the table (and the attempts
-- table that references it, so that no cascade deletes an attempt on the way).
CREATE TABLE callbacks_new (
    id TEXT PRIMARY KEY NOT NULL,
    transaction_uuid TEXT REFERENCES transactions(uuid),
    connector_id TEXT NOT NULL REFERENCES connectors(id),
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    tenant_path TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    body_hash TEXT NOT NULL DEFAULT 'sha512',
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    locked_by TEXT,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP,
    event_type TEXT
);
INSERT INTO callbacks_new (id, transaction_uuid, connector_id, merchant_id, tenant_path, url,
    body, body_hash, status, attempts, next_attempt_at, locked_until, locked_by, last_error,
    created_at, updated_at, delivered_at)
SELECT id, transaction_uuid, connector_id, merchant_id, tenant_path, url, body, body_hash,
    status, attempts, next_attempt_at, locked_until, locked_by, last_error, created_at,
    updated_at, delivered_at FROM callbacks;
CREATE TABLE callback_attempts_new (
    id TEXT PRIMARY KEY NOT NULL,
    callback_id TEXT NOT NULL REFERENCES callbacks_new(id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    started_at TIMESTAMP NOT NULL,
    duration_ms BIGINT NOT NULL,
    http_status INTEGER,
    outcome TEXT NOT NULL,
    response_excerpt TEXT,
    error TEXT,
    worker TEXT NOT NULL
);
INSERT INTO callback_attempts_new SELECT id, callback_id, attempt, started_at, duration_ms,
    http_status, outcome, response_excerpt, error, worker FROM callback_attempts;
DROP TABLE callback_attempts;
DROP TABLE callbacks;
ALTER TABLE callbacks_new RENAME TO callbacks;
ALTER TABLE callback_attempts_new RENAME TO callback_attempts;
CREATE INDEX callbacks_due ON callbacks(status, next_attempt_at);
CREATE INDEX callbacks_transaction ON callbacks(transaction_uuid);
CREATE INDEX callback_attempts_callback ON callback_attempts(callback_id, attempt);
CREATE INDEX callbacks_events ON callbacks(connector_id, created_at) WHERE event_type IS NOT NULL;

-- An instrument remembers when instrument.expiring was sent for its current expiry, when it
-- was found expired, and what the (simulated) account updater last did to it.
ALTER TABLE instruments ADD COLUMN expiry_noticed_at TIMESTAMP;
ALTER TABLE instruments ADD COLUMN expired_at TIMESTAMP;
ALTER TABLE instruments ADD COLUMN card_update_status TEXT;
ALTER TABLE instruments ADD COLUMN card_updated_at TIMESTAMP;
