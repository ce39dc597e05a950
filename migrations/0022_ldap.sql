-- The LDAP interface. App passwords let a person bind over LDAP without
-- their account password (one per device or app, revocable); they work for
-- LDAP binds only, never the sign-in page. `lookup` is the password's first
-- characters, in clear, so a bind verifies one argon2 hash instead of every
-- one the person has; the rest (over 100 bits) is what stays secret.
CREATE TABLE app_passwords (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    lookup TEXT NOT NULL,
    password_hash TEXT NOT NULL,        -- argon2id, like account passwords
    created_at BIGINT NOT NULL,
    UNIQUE (user_id, label)
);
CREATE INDEX app_passwords_by_lookup ON app_passwords (user_id, lookup);

-- Search accounts: what an app binds as to look people up
-- (cn=<name>,ou=services,<base>). The secret is generated (256 bits) and
-- stored as its SHA-256 hex.
CREATE TABLE ldap_accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    -- 1: sees only its groups (below). Kept apart from the rows, so that a
    -- group's removal narrows what the account sees, never widens it.
    restricted BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- What a restricted account sees: the people in these groups, and the groups.
CREATE TABLE ldap_account_groups (
    account_id TEXT NOT NULL REFERENCES ldap_accounts (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (account_id, group_id)
);
