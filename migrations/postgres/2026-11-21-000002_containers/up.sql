CREATE TABLE containers (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    tenant_path TEXT NOT NULL,
    name TEXT NOT NULL,
    profile_count BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE global_settings (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    container_id TEXT REFERENCES containers(id),
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX global_settings_container ON global_settings(container_id);

CREATE TABLE connectors (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    tenant_path TEXT NOT NULL,
    name TEXT NOT NULL,
    adapter TEXT NOT NULL,
    api_key TEXT NOT NULL UNIQUE,
    public_key TEXT NOT NULL UNIQUE,
    shared_secret TEXT NOT NULL,
    container_id TEXT REFERENCES containers(id),
    ignore_global BOOLEAN NOT NULL DEFAULT FALSE,
    signing BOOLEAN NOT NULL DEFAULT FALSE,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX connectors_merchant ON connectors(merchant_id);
CREATE INDEX connectors_tenant ON connectors(tenant_id);
CREATE INDEX connectors_container ON connectors(container_id);

CREATE TABLE connector_members (
    meta_connector_id TEXT NOT NULL REFERENCES connectors(id),
    member_connector_id TEXT NOT NULL REFERENCES connectors(id),
    PRIMARY KEY (meta_connector_id, member_connector_id)
);

CREATE TABLE api_users (
    id TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    tenant_path TEXT NOT NULL,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX api_users_merchant ON api_users(merchant_id);

CREATE TABLE profiles (
    id TEXT PRIMARY KEY,
    container_id TEXT NOT NULL REFERENCES containers(id),
    profile_guid TEXT NOT NULL UNIQUE,
    customer_identification TEXT NOT NULL,
    email TEXT,
    customer TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (container_id, customer_identification)
);
CREATE INDEX profiles_container_id ON profiles(container_id, id);
CREATE INDEX profiles_container_email ON profiles(container_id, email);

CREATE TABLE instruments (
    id TEXT PRIMARY KEY,
    profile_id TEXT NOT NULL REFERENCES profiles(id),
    connector_id TEXT NOT NULL REFERENCES connectors(id),
    payment_token TEXT NOT NULL UNIQUE,
    method TEXT NOT NULL,
    brand TEXT,
    card_holder TEXT,
    first_six TEXT,
    last_four TEXT,
    exp_month INTEGER,
    exp_year INTEGER,
    iban_masked TEXT,
    bic TEXT,
    mandate_id TEXT,
    fingerprint TEXT NOT NULL,
    vault_record TEXT NOT NULL,
    is_preferred BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (profile_id, fingerprint)
);
CREATE INDEX instruments_profile ON instruments(profile_id);
CREATE INDEX instruments_connector ON instruments(connector_id);
