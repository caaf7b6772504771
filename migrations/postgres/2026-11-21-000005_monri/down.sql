DROP TABLE monri_access_tokens;
DROP INDEX connectors_monri_authenticity_token;
ALTER TABLE connectors DROP COLUMN monri_merchant_key;
ALTER TABLE connectors DROP COLUMN monri_authenticity_token;
DROP INDEX profiles_container_created;
DROP INDEX profiles_uuid;
ALTER TABLE profiles DROP COLUMN deleted_at;
ALTER TABLE profiles DROP COLUMN uuid;
