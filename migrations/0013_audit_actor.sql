-- Who made a change: `cli:<operating-system user>` for an admin command,
-- `web:<username>` for the admin console. NULL for events a request records
-- about its own visitor (sign-ins, tokens), where `username` already says who.
ALTER TABLE audit_events ADD COLUMN actor TEXT;
