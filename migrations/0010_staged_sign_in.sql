-- Sign-in in steps (identify → prove → … → done), and what a sign-in used.

-- A sign-in under way, found by the SHA-256 of its cookie, so that any
-- instance continues it. `username` is as typed (the throttling key, shown
-- on the page); `user_id` is whom the proofs so far showed (NULL before the
-- first); `proven` lists RFC 8176 methods with when each was proven
-- (`pwd@1764556800 …`); `required` the steps still to take, in order
-- (`password …`); `next` where the browser goes once signed in.
CREATE TABLE pending_sign_ins (
    id_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    proven TEXT NOT NULL,
    required TEXT NOT NULL,
    next TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX pending_sign_ins_by_expiry ON pending_sign_ins (expires_at);

-- The RFC 8176 methods of the sign-in, space-separated, carried from the
-- session to its codes and refresh token families, so ID tokens name them
-- (`amr`). Every row written before this migration came from a password
-- sign-in: the default says so; new rows always name their methods.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE authorization_codes ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE token_families ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
