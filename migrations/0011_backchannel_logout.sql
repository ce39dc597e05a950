-- OpenID Connect Back-Channel Logout 1.0: when a session ends, every app
-- that received tokens in it and registered a back-channel logout URI is
-- told, server to server, by a signed logout token.

-- NULL: the app is not told.
ALTER TABLE apps ADD COLUMN backchannel_logout_uri TEXT;

-- The session's public identifier, the `sid` claim of ID and logout tokens:
-- random, unrelated to the cookie (whose hash is the key). NULL for sessions
-- created before this migration; their logout tokens carry `sub` alone.
ALTER TABLE sessions ADD COLUMN sid TEXT;

-- The apps that received tokens in a session, recorded when a code is
-- redeemed. Codes are cleared away long before a session ends, so they
-- cannot answer this at sign-out.
CREATE TABLE session_apps (
    session_hash TEXT NOT NULL REFERENCES sessions (id_hash) ON DELETE CASCADE,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    PRIMARY KEY (session_hash, app_id)
);
CREATE INDEX session_apps_by_app ON session_apps (app_id);

INSERT INTO session_apps (session_hash, app_id)
SELECT c.session_hash, c.app_id FROM authorization_codes c JOIN sessions s ON s.id_hash = c.session_hash
WHERE c.used_at IS NOT NULL
UNION
SELECT f.session_hash, f.app_id FROM token_families f JOIN sessions s ON s.id_hash = f.session_hash;

-- Logout notices waiting to be delivered, written in the transaction that
-- ends the session, so that none is lost to a crash. An instance claims a
-- due notice by moving `due_at` past its lease and setting `lease`; a
-- notice whose instance died becomes due again when the lease runs out.
-- A failed delivery moves `due_at` by the backoff.
CREATE TABLE logout_notices (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,              -- the `sub` to name (users are never deleted)
    sid TEXT,                           -- the ended session's `sid`, if it had one
    created_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    lease TEXT                          -- who holds the current attempt
);
CREATE INDEX logout_notices_by_due ON logout_notices (due_at);
