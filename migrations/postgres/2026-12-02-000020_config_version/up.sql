-- The configuration version: one row, bumped in the same transaction by every write to the
-- configuration an API call reads (tenants, merchants, connectors and their members, API users,
-- Global Settings, containers except their profile count). Each process caches that
-- configuration (vault::config_cache) and reads this row once per API call: when it moved, the
-- cache is dropped. The bump is a trigger, so no write path (console, CLI, seeder, hand-written
-- SQL) can forget it.
CREATE TABLE config_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 1);
-- Deferred to the commit: the row lock on config_version is taken last, so two configuration
-- transactions cannot deadlock on it (each holds its own rows first), and it is held only while
-- the transaction commits.
CREATE FUNCTION coffer_bump_config_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE config_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER tenants_config_version AFTER INSERT OR UPDATE OR DELETE ON tenants
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION coffer_bump_config_version();
CREATE CONSTRAINT TRIGGER merchants_config_version AFTER INSERT OR UPDATE OR DELETE ON merchants
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION coffer_bump_config_version();
CREATE CONSTRAINT TRIGGER connectors_config_version AFTER INSERT OR UPDATE OR DELETE ON connectors
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION coffer_bump_config_version();
CREATE CONSTRAINT TRIGGER connector_members_config_version AFTER INSERT OR UPDATE OR DELETE ON connector_members
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION coffer_bump_config_version();
CREATE CONSTRAINT TRIGGER api_users_config_version AFTER INSERT OR UPDATE OR DELETE ON api_users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION coffer_bump_config_version();
CREATE CONSTRAINT TRIGGER global_settings_config_version AFTER INSERT OR UPDATE OR DELETE ON global_settings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION coffer_bump_config_version();
CREATE CONSTRAINT TRIGGER containers_config_version AFTER INSERT OR DELETE OR UPDATE OF id, tenant_id, tenant_path, name ON containers
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION coffer_bump_config_version();
