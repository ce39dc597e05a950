-- Forward auth: apps guarded by a reverse proxy (nginx, Traefik, Caddy) that
-- asks Latch, request by request, who may pass. A proxy app is a row in
-- `apps` (so `app_groups` restricts it like any other app) plus one here.

CREATE TABLE proxy_apps (
    app_id TEXT PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    external_url TEXT NOT NULL,         -- as registered, e.g. https://uptime.example.com
    origin TEXT NOT NULL UNIQUE,        -- scheme://host[:port], what requests are matched by
    cookie_domain TEXT                  -- NULL: the cookie stays on the app's own host
);

-- One-time codes that carry a Latch sign-in over to an app's host: issued
-- at Latch to a browser with a live session, redeemed once on the app's
-- host, within 60 s, by the browser holding the state cookie it is bound to.
CREATE TABLE proxy_codes (
    code_hash TEXT PRIMARY KEY,
    state_hash TEXT NOT NULL,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    session_hash TEXT NOT NULL REFERENCES sessions (id_hash) ON DELETE CASCADE,
    target_url TEXT NOT NULL,           -- where the browser was going (`rd`)
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    token_hash TEXT                     -- the cookie the redemption issued, revoked if the code is replayed
);
CREATE INDEX proxy_codes_by_expiry ON proxy_codes (expires_at);

-- The cookie an app's host holds. It grants nothing of its own: each check
-- joins it to its Latch session and user, so ending the session (sign-out,
-- expiry) or disabling the user denies the very next request.
CREATE TABLE proxy_sessions (
    token_hash TEXT PRIMARY KEY,
    session_hash TEXT NOT NULL REFERENCES sessions (id_hash) ON DELETE CASCADE,
    app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,                -- the cookie domain, or the app's origin: which apps it admits to
    created_at BIGINT NOT NULL
);
CREATE INDEX proxy_sessions_by_session ON proxy_sessions (session_hash);
