DROP TABLE instruments;
DROP TABLE profiles;
DROP TABLE api_users;
DROP TABLE connector_members;
DROP TABLE connectors;
DROP TABLE global_settings;
DROP TABLE containers;
