-- Monri-compatible Customers API v2: a v2 customer is a customer profile.
-- profiles.uuid is the customer's Monri uuid (UUID v4), generated for every profile; existing
-- rows get one here. deleted_at marks a tombstone left by DELETE /v2/customers/:uuid.
ALTER TABLE profiles ADD COLUMN uuid TEXT;
ALTER TABLE profiles ADD COLUMN deleted_at TIMESTAMP;
UPDATE profiles SET uuid = gen_random_uuid()::text WHERE uuid IS NULL;
ALTER TABLE profiles ALTER COLUMN uuid SET NOT NULL;
CREATE UNIQUE INDEX profiles_uuid ON profiles(uuid);
CREATE INDEX profiles_container_created ON profiles(container_id, deleted_at, created_at, id);

-- Monri credentials of a connector: the authenticity token (public, 40 alphanumerics; existing
-- connectors get a random one here) and the merchant key, sealed by the vault (NULL until one
-- is issued from the console).
ALTER TABLE connectors ADD COLUMN monri_authenticity_token TEXT;
ALTER TABLE connectors ADD COLUMN monri_merchant_key TEXT;
UPDATE connectors SET monri_authenticity_token = substr(
    replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''), 1, 40)
WHERE monri_authenticity_token IS NULL;
ALTER TABLE connectors ALTER COLUMN monri_authenticity_token SET NOT NULL;
CREATE UNIQUE INDEX connectors_monri_authenticity_token ON connectors(monri_authenticity_token);

-- OAuth access tokens: only a keyed hash of the token is stored.
CREATE TABLE monri_access_tokens (
    token_hash TEXT PRIMARY KEY,
    connector_id TEXT NOT NULL REFERENCES connectors(id),
    scopes TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX monri_access_tokens_expiry ON monri_access_tokens(expires_at);
CREATE INDEX monri_access_tokens_connector ON monri_access_tokens(connector_id);
