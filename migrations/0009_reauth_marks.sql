-- A sign-in that an authorization request demanded (prompt=login, max_age,
-- an id_token_hint naming someone else) marks the session it creates with
-- the hash of the random mark the request carried, and until when the mark
-- may be used. Taking the mark clears it: it satisfies one request, in the
-- session that signed in, for a few minutes (OIDC Core §3.1.2.1).
ALTER TABLE sessions ADD COLUMN reauth_mark_hash TEXT;
ALTER TABLE sessions ADD COLUMN reauth_expires_at BIGINT;
