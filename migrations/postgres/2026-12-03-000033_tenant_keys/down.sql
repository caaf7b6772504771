DROP TABLE reencrypt_cursors;
DROP TABLE reencrypt_jobs;
DROP INDEX vault_keys_owner;
ALTER TABLE vault_keys DROP COLUMN deactivated_at;
ALTER TABLE vault_keys DROP COLUMN owner;
