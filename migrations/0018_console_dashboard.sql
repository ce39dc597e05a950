-- The admin console's dashboard counts sign-ins and failures per day, and
-- sign-ins per app, over 30 days: by kind, then time, it reads only the
-- events it counts instead of every event of the month. The console's event
-- filter by kind uses it too.
CREATE INDEX audit_events_by_kind ON audit_events (kind, at);
-- The event list, newest first, pages through this one without sorting.
CREATE INDEX audit_events_by_time_and_id ON audit_events (at, id);
