-- The configuration version: one row, bumped in the same transaction by every write to the
-- configuration an API call reads (tenants, merchants, connectors and their members, API users,
-- Global Settings, containers except their profile count). Each process caches that
-- configuration (vault::config_cache) and reads this row once per API call: when it moved, the
-- cache is dropped. The bump is a trigger, so no write path (console, CLI, seeder, hand-written
-- SQL) can forget it.
CREATE TABLE config_version (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 1);
CREATE TRIGGER tenants_config_insert AFTER INSERT ON tenants
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER tenants_config_update AFTER UPDATE ON tenants
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER tenants_config_delete AFTER DELETE ON tenants
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER merchants_config_insert AFTER INSERT ON merchants
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER merchants_config_update AFTER UPDATE ON merchants
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER merchants_config_delete AFTER DELETE ON merchants
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER connectors_config_insert AFTER INSERT ON connectors
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER connectors_config_update AFTER UPDATE ON connectors
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER connectors_config_delete AFTER DELETE ON connectors
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER connector_members_config_insert AFTER INSERT ON connector_members
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER connector_members_config_update AFTER UPDATE ON connector_members
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER connector_members_config_delete AFTER DELETE ON connector_members
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER api_users_config_insert AFTER INSERT ON api_users
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER api_users_config_update AFTER UPDATE ON api_users
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER api_users_config_delete AFTER DELETE ON api_users
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER global_settings_config_insert AFTER INSERT ON global_settings
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER global_settings_config_update AFTER UPDATE ON global_settings
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER global_settings_config_delete AFTER DELETE ON global_settings
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER containers_config_insert AFTER INSERT ON containers
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER containers_config_update AFTER UPDATE OF id, tenant_id, tenant_path, name ON containers
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER containers_config_delete AFTER DELETE ON containers
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
