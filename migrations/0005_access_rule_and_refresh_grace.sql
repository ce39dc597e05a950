-- A benign repeat of a refresh token (two tabs, two replicas, a retry after
-- a lost response) within the app's grace window gets the same successor
-- the first use got, so the family stays one chain.

-- Seconds a rotated refresh token may be presented again; 0 disables.
ALTER TABLE apps ADD COLUMN refresh_token_reuse_grace BIGINT NOT NULL DEFAULT 60;

-- Set when a token is rotated: the SHA-256 of the token that replaced it,
-- and that token sealed with a key only the presented token derives, so
-- the database alone cannot reveal a live refresh token.
ALTER TABLE refresh_tokens ADD COLUMN successor_hash TEXT;
ALTER TABLE refresh_tokens ADD COLUMN successor_sealed TEXT;
