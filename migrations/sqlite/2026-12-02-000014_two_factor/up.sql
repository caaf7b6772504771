-- Two-factor authentication (TOTP). The secret is sealed by the vault (bound to the user id);
-- recovery codes are stored as keyed hashes; last_step is the newest accepted time step, so a
-- code is accepted once.
ALTER TABLE tenants ADD COLUMN require_two_factor BOOLEAN NOT NULL DEFAULT 0;

CREATE TABLE user_two_factor (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_sealed TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT 0,
    last_step BIGINT,
    created_at TIMESTAMP NOT NULL,
    enabled_at TIMESTAMP
);

CREATE TABLE user_recovery_codes (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX user_recovery_codes_hash ON user_recovery_codes(user_id, code_hash);
