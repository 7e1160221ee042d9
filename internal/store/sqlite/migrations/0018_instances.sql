-- The running cloud instances (scale-out on one store): each writes its
-- row every few seconds; an instance whose heartbeat is old is gone.
-- advertise is the HOST:PORT connectors reach it at ('' for none).
CREATE TABLE instances (
    id           TEXT    PRIMARY KEY,
    advertise    TEXT    NOT NULL DEFAULT '',
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
) STRICT;
CREATE INDEX instances_heartbeat ON instances (heartbeat_at);
