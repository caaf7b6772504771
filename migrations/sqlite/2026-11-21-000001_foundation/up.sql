CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    parent_id TEXT REFERENCES tenants(id),
    path TEXT NOT NULL UNIQUE,
    depth INTEGER NOT NULL,
    name TEXT NOT NULL,
    disable_containers_for_subtenants BOOLEAN NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX tenants_parent ON tenants(parent_id);

CREATE TABLE merchants (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    tenant_path TEXT NOT NULL,
    name TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX merchants_tenant ON merchants(tenant_id);
CREATE INDEX merchants_path ON merchants(tenant_path);

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    tenant_id TEXT REFERENCES tenants(id),
    merchant_id TEXT REFERENCES merchants(id),
    scope_path TEXT,
    active BOOLEAN NOT NULL DEFAULT 1,
    session_epoch INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP
);
CREATE INDEX users_scope ON users(scope_path);

CREATE TABLE login_throttle (
    key TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    first_failure_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP
);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY NOT NULL,
    at TIMESTAMP NOT NULL,
    actor_id TEXT,
    actor_name TEXT NOT NULL,
    tenant_id TEXT,
    tenant_path TEXT,
    merchant_id TEXT,
    action TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    summary TEXT NOT NULL,
    changes TEXT NOT NULL
);
CREATE INDEX audit_log_path ON audit_log(tenant_path, id);
CREATE INDEX audit_log_merchant ON audit_log(merchant_id, id);
