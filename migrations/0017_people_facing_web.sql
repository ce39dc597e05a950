-- People-facing web: one-time links (first-run setup, invites, password
-- resets), what the account portal shows about sessions, and where an app
-- is opened from the portal.

-- A link's token is 256 random bits; only its SHA-256 is kept. `purpose`:
-- `setup` (create the first administrator; no user yet), `invite` (choose
-- the first password of a pending person), `reset` (choose a new password).
-- Using a link is one `UPDATE … WHERE used_at IS NULL AND expires_at > now`,
-- so of two instances racing on one link exactly one wins.
CREATE TABLE one_time_links (
    token_hash TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX one_time_links_by_user ON one_time_links (user_id);

-- What the portal shows about a session: the browser (its User-Agent,
-- cut), the client address, and when it was last used (updated at most
-- once a minute). NULL for sessions started before this migration.
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN client_ip TEXT;
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT;

-- The URL the portal's launcher opens for the app; NULL: a proxy app's
-- external URL, else the app is listed without a link.
ALTER TABLE apps ADD COLUMN launch_url TEXT;
