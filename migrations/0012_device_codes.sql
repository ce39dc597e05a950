-- The device authorization grant (RFC 8628): a device with no browser (a TV,
-- a command-line tool) shows a short user code; a person types it at
-- /device, signed in, and approves; the device, polling the token endpoint
-- with its device code, then gets tokens. Each app opts in.

ALTER TABLE apps ADD COLUMN device_code BIGINT NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN device_code_ttl BIGINT;             -- NULL: the default (600 s)

CREATE TABLE device_codes (
    device_code_hash TEXT PRIMARY KEY,  -- SHA-256 of the device code (256 bits)
    user_code_hash TEXT NOT NULL UNIQUE, -- SHA-256 of the user code, normalized (BCDFGHJK)
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    offline BIGINT NOT NULL,            -- whether the redemption starts a refresh token family
    poll_interval BIGINT NOT NULL,      -- seconds; each poll that comes sooner adds 5 (slow_down)
    last_polled_at BIGINT,
    slowed_down BIGINT NOT NULL DEFAULT 0, -- whether the last poll came too soon
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- The person's answer: 1 approved, 0 denied, NULL not yet. Who answered,
    -- in which session (so that tokens descend from a sign-in, as a code's do).
    approved BIGINT,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    session_hash TEXT,
    auth_time BIGINT,
    amr TEXT,                           -- the approving sign-in's RFC 8176 methods
    decided_at BIGINT,
    redeemed_at BIGINT,
    family_id TEXT                      -- what the redemption issued, revoked if the code is replayed
);
CREATE INDEX device_codes_by_expiry ON device_codes (expires_at);
