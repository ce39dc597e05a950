-- Passkeys (WebAuthn credentials, through webauthn-rs), several per person,
-- and the ceremonies that register or use them. Nothing here is secret: a
-- credential is a public key, and a challenge is useless without the
-- authenticator's private key; so neither is sealed at rest.

CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,                 -- a UUID: how the person's pages name it
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,  -- base64url of the WebAuthn credential id
    name TEXT NOT NULL,                  -- the person's label ("work laptop")
    -- webauthn-rs `Passkey` as JSON: public key, sign count and backup
    -- state, rewritten after each use as webauthn-rs updates them.
    credential TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_by_user ON passkeys (user_id);

-- A ceremony under way, found by the SHA-256 of the token the page holds
-- (posted back with the authenticator's answer), so that any instance
-- finishes what another began; taken (deleted) by the request that finishes
-- it, so an answer counts once. `kind`: `register`, `sign_in` (no one known
-- yet) or `second_factor`; `user_id` whom it is for (NULL for `sign_in`);
-- `bound_to` the SHA-256 of the pending sign-in a second factor belongs to;
-- `name` the label a registration gives the new passkey; `state` the
-- webauthn-rs ceremony state as JSON.
CREATE TABLE passkey_ceremonies (
    id_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    bound_to TEXT,
    name TEXT,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX passkey_ceremonies_by_expiry ON passkey_ceremonies (expires_at);
