CREATE TABLE transactions (
    uuid TEXT PRIMARY KEY,
    connector_id TEXT NOT NULL REFERENCES connectors(id),
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    tenant_path TEXT NOT NULL,
    merchant_transaction_id TEXT NOT NULL,
    purchase_id TEXT NOT NULL,
    transaction_type TEXT NOT NULL,
    status TEXT NOT NULL,
    payment_method TEXT NOT NULL,
    amount BIGINT,
    currency TEXT,
    reference_uuid TEXT,
    instrument_id TEXT,
    profile_id TEXT,
    payment_token TEXT,
    captured_amount BIGINT NOT NULL DEFAULT 0,
    refunded_amount BIGINT NOT NULL DEFAULT 0,
    voided BOOLEAN NOT NULL DEFAULT FALSE,
    error_code INTEGER,
    error_message TEXT,
    card_summary TEXT,
    body_hash TEXT NOT NULL DEFAULT 'sha512',
    extra TEXT NOT NULL DEFAULT '{}',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (connector_id, merchant_transaction_id)
);
CREATE INDEX transactions_merchant ON transactions(merchant_id, uuid);
CREATE INDEX transactions_reference ON transactions(reference_uuid);
CREATE INDEX transactions_instrument ON transactions(instrument_id);

CREATE TABLE card_tokens (
    token TEXT PRIMARY KEY,
    connector_id TEXT NOT NULL REFERENCES connectors(id),
    sealed TEXT NOT NULL,
    brand TEXT NOT NULL,
    first_six TEXT NOT NULL,
    last_four TEXT NOT NULL,
    exp_month INTEGER NOT NULL,
    exp_year INTEGER NOT NULL,
    card_holder TEXT,
    fingerprint TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX card_tokens_expiry ON card_tokens(expires_at);
