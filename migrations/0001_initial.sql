-- One schema for SQLite and PostgreSQL: only TEXT and BIGINT columns, ids as
-- TEXT, timestamps as Unix seconds. Secrets are stored as SHA-256 hex only.

CREATE TABLE users (
    id TEXT PRIMARY KEY,                -- the OIDC `sub`: a UUID, never reused
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled_at BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_by_user ON group_members (user_id);

CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    client_id TEXT NOT NULL UNIQUE,
    client_secret_hash TEXT,            -- NULL for public clients
    redirect_uris TEXT NOT NULL,        -- JSON array of exact strings
    created_at BIGINT NOT NULL
);

-- An app with no rows here admits every active user.
CREATE TABLE app_groups (
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (app_id, group_id)
);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT,
    auth_time BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

-- Access tokens are signed JWTs; the row, found by `jti`, is what makes one
-- live, so revocation and disabling a user take effect at once.
CREATE TABLE access_tokens (
    jti TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    code_hash TEXT,                     -- the code it was issued for, to revoke on code reuse
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX access_tokens_by_code ON access_tokens (code_hash);
CREATE INDEX access_tokens_by_user ON access_tokens (user_id);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_key TEXT NOT NULL,          -- PKCS#8 DER, base64
    created_at BIGINT NOT NULL
);

-- Single-row facts decided once for a whole deployment, e.g. which instance
-- created the first signing key; the primary key settles races.
CREATE TABLE deployment_facts (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
