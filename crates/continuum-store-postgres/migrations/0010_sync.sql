-- Sync between nodes (as the SQLite store's migration 10): every event records the node that
-- first wrote it and its position there (NULL for this node's own), the store has a node id,
-- and it keeps per tenant the highest position applied per origin, tombstones of forgotten
-- memories, every supersession, and the state of each remote.

ALTER TABLE events ADD COLUMN origin TEXT;
ALTER TABLE events ADD COLUMN origin_seq BIGINT;

CREATE TABLE sync_node (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    node TEXT NOT NULL
);
INSERT INTO sync_node (id, node) VALUES (1, md5(random()::text || clock_timestamp()::text));

CREATE TABLE sync_applied (
    tenant  TEXT   NOT NULL,
    origin  TEXT   NOT NULL,
    through BIGINT NOT NULL,
    PRIMARY KEY (tenant, origin)
);

CREATE TABLE sync_forgotten (
    tenant TEXT NOT NULL,
    id     UUID NOT NULL,
    PRIMARY KEY (tenant, id)
);

INSERT INTO sync_forgotten (tenant, id)
SELECT DISTINCT e.tenant, (e.payload::jsonb->>'id')::uuid
FROM events e
WHERE e.type = 'memory.forgotten'
  AND NOT EXISTS (SELECT 1 FROM memories m WHERE m.id = (e.payload::jsonb->>'id')::uuid)
ON CONFLICT DO NOTHING;

-- Every supersession: `superseded_by` is the largest replacement still held, whatever the
-- order they arrived in (see the SQLite migration).
CREATE TABLE supersessions (
    tenant TEXT   NOT NULL,
    id     UUID   NOT NULL,
    by_id  UUID   NOT NULL,
    at     BIGINT NOT NULL,
    PRIMARY KEY (tenant, id, by_id)
);
CREATE INDEX supersessions_by ON supersessions (tenant, by_id);
INSERT INTO supersessions (tenant, id, by_id, at)
SELECT tenant, id, superseded_by, coalesce(valid_until, created_at)
FROM memories WHERE superseded_by IS NOT NULL
ON CONFLICT DO NOTHING;

CREATE TABLE sync_peers (
    remote TEXT NOT NULL,
    tenant TEXT NOT NULL,
    state  TEXT NOT NULL,
    PRIMARY KEY (remote, tenant)
);
