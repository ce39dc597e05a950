-- Second factors (TOTP, recovery codes) and the policy that requires one.

-- Per app: whether signing in to it needs a second factor. NULL: the
-- deployment's `require_mfa` decides.
ALTER TABLE apps ADD COLUMN require_mfa BIGINT;

-- One TOTP authenticator (RFC 6238) per person. `secret` is the base32
-- secret, sealed with `secret_key_file` when one is set (row
-- `totp_factors:<user_id>`). `confirmed_at` NULL: a set-up begun on
-- /account/security, not yet confirmed with a code; it is no factor yet.
-- `last_step`: the last time step (unix time / 30) whose code was accepted,
-- so a code is accepted once, on every instance (`UPDATE … WHERE last_step
-- < $step`).
CREATE TABLE totp_factors (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    last_used_at BIGINT,
    last_step BIGINT NOT NULL DEFAULT -1
);

-- One-time recovery codes: the SHA-256 of `<user_id>:<code>` (80 random
-- bits each), so a leaked database reveals no usable code. A set replaces
-- the previous one whole.
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
