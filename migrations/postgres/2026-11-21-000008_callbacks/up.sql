-- The callback outbox: a row is written in the same transaction as the final transaction, and
-- delivered by any Coffer process that claims it (a lease: locked_until / locked_by).
CREATE TABLE callbacks (
    id TEXT PRIMARY KEY,
    transaction_uuid TEXT NOT NULL REFERENCES transactions(uuid),
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
    delivered_at TIMESTAMP
);
CREATE INDEX callbacks_due ON callbacks(status, next_attempt_at);
CREATE INDEX callbacks_transaction ON callbacks(transaction_uuid);

CREATE TABLE callback_attempts (
    id TEXT PRIMARY KEY,
    callback_id TEXT NOT NULL REFERENCES callbacks(id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    started_at TIMESTAMP NOT NULL,
    duration_ms BIGINT NOT NULL,
    http_status INTEGER,
    outcome TEXT NOT NULL,
    response_excerpt TEXT,
    error TEXT,
    worker TEXT NOT NULL
);
CREATE INDEX callback_attempts_callback ON callback_attempts(callback_id, attempt);
