-- Brute-force counters and the audit trail. Both live in the store so that
-- every instance sees the same numbers and the same history.

-- `subject` is `user:<username>` or `ip:<address>`.
CREATE TABLE login_failures (
    subject TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT
);

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    username TEXT,
    app TEXT,
    ip TEXT,
    user_agent TEXT,
    detail TEXT
);
CREATE INDEX audit_events_by_time ON audit_events (at);
CREATE INDEX audit_events_by_username ON audit_events (username, at);
CREATE INDEX audit_events_by_app ON audit_events (app, at);

-- Housekeeping deletes expired rows by these.
CREATE INDEX authorization_codes_by_expiry ON authorization_codes (expires_at);
CREATE INDEX authorization_codes_by_session ON authorization_codes (session_hash);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_at);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);
CREATE INDEX client_tokens_by_expiry ON client_tokens (expires_at);
