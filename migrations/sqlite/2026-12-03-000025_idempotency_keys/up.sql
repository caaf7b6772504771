-- Idempotency-Key of the Transaction API: one row per (connector, key), written in the same
-- transaction as the payment it answers (so a crash leaves both or neither). body_hash is the
-- SHA-256 (hex) of the raw request body, never the body itself; response is the answer's JSON
-- body (no card data: answers carry none). Rows expire after 24 hours.
CREATE TABLE idempotency_keys (
    connector_id TEXT NOT NULL REFERENCES connectors(id),
    key TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    response_status INTEGER,
    response TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (connector_id, key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys(expires_at);
