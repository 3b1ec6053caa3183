-- Sync between nodes. Every event records the node that first wrote it and its position
-- there (both NULL for the events this node wrote itself); the store has a node id; it
-- remembers per tenant and origin the highest position applied, the memories forgotten here
-- (so a create that arrives later is dropped), every supersession, and the state of each
-- remote it syncs with.

ALTER TABLE events ADD COLUMN origin TEXT;
ALTER TABLE events ADD COLUMN origin_seq INTEGER;

CREATE TABLE sync_node (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    node TEXT NOT NULL
);
INSERT INTO sync_node (id, node) VALUES (1, lower(hex(randomblob(16))));

CREATE TABLE sync_applied (
    tenant  TEXT    NOT NULL,
    origin  TEXT    NOT NULL,
    through INTEGER NOT NULL,
    PRIMARY KEY (tenant, origin)
) WITHOUT ROWID;

CREATE TABLE sync_forgotten (
    tenant TEXT    NOT NULL,
    id     BLOB    NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

-- Memories forgotten before this migration.
INSERT OR IGNORE INTO sync_forgotten (tenant, id)
SELECT tenant, unhex(replace(json_extract(payload, '$.id'), '-', ''))
FROM events WHERE type = 'memory.forgotten'
  AND NOT EXISTS (SELECT 1 FROM memories m
                  WHERE m.id = unhex(replace(json_extract(events.payload, '$.id'), '-', '')));

-- Every supersession, so that a memory's `superseded_by` is the largest replacement still
-- held (ids are time-ordered: the latest), whatever order they arrived in, and forgetting one
-- replacement falls back on the others. A row may name a memory not held yet (sync: the
-- supersede arrived before the memory).
CREATE TABLE supersessions (
    tenant TEXT    NOT NULL,
    id     BLOB    NOT NULL,
    by_id  BLOB    NOT NULL,
    at     INTEGER NOT NULL,
    PRIMARY KEY (tenant, id, by_id)
) WITHOUT ROWID;
CREATE INDEX supersessions_by ON supersessions (tenant, by_id);
INSERT OR IGNORE INTO supersessions (tenant, id, by_id, at)
SELECT tenant, id, superseded_by, coalesce(valid_until, created_at)
FROM memories WHERE superseded_by IS NOT NULL;

CREATE TABLE sync_peers (
    remote TEXT NOT NULL,
    tenant TEXT NOT NULL,
    state  TEXT NOT NULL,
    PRIMARY KEY (remote, tenant)
) WITHOUT ROWID;
