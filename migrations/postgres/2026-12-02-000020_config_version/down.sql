DROP TRIGGER tenants_config_version ON tenants;
DROP TRIGGER merchants_config_version ON merchants;
DROP TRIGGER connectors_config_version ON connectors;
DROP TRIGGER connector_members_config_version ON connector_members;
DROP TRIGGER api_users_config_version ON api_users;
DROP TRIGGER global_settings_config_version ON global_settings;
DROP TRIGGER containers_config_version ON containers;
DROP FUNCTION coffer_bump_config_version();
DROP TABLE config_version;
