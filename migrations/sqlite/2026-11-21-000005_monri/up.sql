-- Monri-compatible Customers API v2: a v2 customer is a customer profile.
-- profiles.uuid is the customer's Monri uuid (UUID v4), generated for every profile; existing
-- rows get one here. deleted_at marks a tombstone left by DELETE /v2/customers/:uuid.
ALTER TABLE profiles ADD COLUMN uuid TEXT NOT NULL DEFAULT '';
ALTER TABLE profiles ADD COLUMN deleted_at TIMESTAMP;
UPDATE profiles SET uuid =
    lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||
    substr(lower(hex(randomblob(2))), 2) || '-' ||
    substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' ||
    lower(hex(randomblob(6)))
WHERE uuid = '';
CREATE UNIQUE INDEX profiles_uuid ON profiles(uuid);
CREATE INDEX profiles_container_created ON profiles(container_id, deleted_at, created_at, id);

-- Monri credentials of a connector: the authenticity token (public, 40 alphanumerics; existing
-- connectors get a random one here) and the merchant key, sealed by the vault (NULL until one
-- is issued from the console).
ALTER TABLE connectors ADD COLUMN monri_authenticity_token TEXT NOT NULL DEFAULT '';
ALTER TABLE connectors ADD COLUMN monri_merchant_key TEXT;
UPDATE connectors SET monri_authenticity_token = lower(hex(randomblob(20)))
WHERE monri_authenticity_token = '';
CREATE UNIQUE INDEX connectors_monri_authenticity_token ON connectors(monri_authenticity_token);

-- OAuth access tokens: only a keyed hash of the token is stored.
CREATE TABLE monri_access_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    connector_id TEXT NOT NULL REFERENCES connectors(id),
    scopes TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX monri_access_tokens_expiry ON monri_access_tokens(expires_at);
CREATE INDEX monri_access_tokens_connector ON monri_access_tokens(connector_id);
