-- Hosted payment page and 3-D Secure challenge sessions. A PENDING transaction has at most one
-- open session; the browser holds the secret token, only its SHA-256 is stored here.
CREATE TABLE payment_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    transaction_uuid TEXT NOT NULL REFERENCES transactions(uuid),
    -- page (the hosted payment page) or challenge (the simulated 3-D Secure issuer page)
    kind TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    -- open, finished or expired
    status TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    -- The API request (JSON) as received: no card data (payment.js tokens and pt:: tokens only).
    request TEXT NOT NULL,
    -- JSON: connector that processes the payment, instrument chosen, etc. (no card data).
    state TEXT NOT NULL DEFAULT '{}',
    -- A challenged new card, sealed by the vault (AAD: this id); NULL once the session ends.
    sealed_card TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX payment_sessions_due ON payment_sessions(status, expires_at);
CREATE INDEX payment_sessions_transaction ON payment_sessions(transaction_uuid);
