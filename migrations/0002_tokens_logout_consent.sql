-- Refresh tokens, per-app lifetimes and options, consent, key rotation, and
-- the links that let a revocation reach everything issued from one login.

ALTER TABLE apps ADD COLUMN code_ttl BIGINT;                 -- NULL: the deployment default
ALTER TABLE apps ADD COLUMN access_token_ttl BIGINT;
ALTER TABLE apps ADD COLUMN refresh_token_ttl BIGINT;
ALTER TABLE apps ADD COLUMN consent TEXT NOT NULL DEFAULT 'implicit';
ALTER TABLE apps ADD COLUMN signing_alg TEXT NOT NULL DEFAULT 'RS256';
ALTER TABLE apps ADD COLUMN client_credentials BIGINT NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';

-- The session a code was issued in, so that tokens descend from a login,
-- and whether its exchange starts a refresh token family (offline_access).
ALTER TABLE authorization_codes ADD COLUMN session_hash TEXT;
ALTER TABLE authorization_codes ADD COLUMN offline BIGINT NOT NULL DEFAULT 0;

-- Tokens of the client credentials grant: the client acts for itself.
CREATE TABLE client_tokens (
    jti TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- A family is everything issued from one code exchange: its refresh tokens
-- (one live at a time) and the access tokens they bought.
CREATE TABLE token_families (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_hash TEXT,
    scope TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX token_families_by_user ON token_families (user_id);
CREATE INDEX token_families_by_session ON token_families (session_hash);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT                      -- set when rotated; a second use is a replay
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

ALTER TABLE access_tokens ADD COLUMN family_id TEXT;
CREATE INDEX access_tokens_by_family ON access_tokens (family_id);

CREATE TABLE consents (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, app_id)
);

-- Rotation: a key is published at once but signs only from `activates_at`;
-- a superseded key stays published until `retire_at`, when every token it
-- signed has expired.
ALTER TABLE signing_keys ADD COLUMN activates_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE signing_keys ADD COLUMN retire_at BIGINT;
