-- The cluster view: each running `latch serve` records a heartbeat every
-- few seconds (`cluster`), so that `latch cluster status` can list the
-- instances, flag those that stopped answering and mixed versions, and
-- `latch doctor` can compare their clocks and databases. A row whose
-- instance has been silent for a day is cleared by housekeeping.
CREATE TABLE instances (
    id TEXT PRIMARY KEY,              -- random, new at every start
    version TEXT NOT NULL,            -- the Latch version it runs
    host TEXT NOT NULL,               -- the machine's host name
    listen TEXT NOT NULL,             -- the address it listens on
    database_id TEXT NOT NULL,        -- deployment_facts.database_id as it read it at start
    started_at BIGINT NOT NULL,       -- Unix seconds, its own clock
    last_seen BIGINT NOT NULL,        -- Unix seconds, its own clock
    clock_offset_ms BIGINT NOT NULL   -- its clock minus the database's, at the last heartbeat
);
CREATE INDEX instances_by_last_seen ON instances (last_seen);
