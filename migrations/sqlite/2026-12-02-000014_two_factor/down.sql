DROP TABLE user_recovery_codes;
DROP TABLE user_two_factor;
ALTER TABLE tenants DROP COLUMN require_two_factor;
