-- WebFinger issuer discovery (RFC 7033, OpenID Connect Discovery 1.0 §2):
-- at most one app answers for people's e-mail addresses, the one marked
-- with `latch app add|update <slug> --webfinger`. The partial unique index
-- (which SQLite and PostgreSQL both accept) keeps it to one even when two
-- commands race.
ALTER TABLE apps ADD COLUMN webfinger BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX apps_one_webfinger ON apps (webfinger) WHERE webfinger = 1;
-- WebFinger looks people up by address, case-insensitively, for anyone who
-- asks: an index, so that a stream of queries costs no table scans.
CREATE INDEX users_by_lower_email ON users (LOWER(email));
