-- Sign-in attempts whose password is being checked right now, one row per
-- attempt and throttled subject (`user:<name>`, `ip:<address>`). A subject
-- admits a new attempt only while its failures plus these stay under its
-- limit, so a burst of guesses gets no more checks than the limit, while
-- right passwords arriving together wait their turn instead of failing.
-- `expires_at` frees the slot of an instance that died mid-check.
CREATE TABLE login_attempts (
    attempt TEXT NOT NULL,
    subject TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (attempt, subject)
);
CREATE INDEX login_attempts_by_subject ON login_attempts (subject, expires_at);
CREATE INDEX login_attempts_by_expiry ON login_attempts (expires_at);
