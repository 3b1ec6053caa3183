-- Continuum on PostgreSQL, schema v1: the same model as the SQLite store. Full text comes from
-- a generated tsvector with a GIN index. Every table carries the tenant, directly or through
-- the concept or memory it hangs off.

CREATE TABLE memories (
    rid           BIGSERIAL PRIMARY KEY,
    id            UUID    NOT NULL UNIQUE,
    tenant        TEXT    NOT NULL,
    session       TEXT,
    source        TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    content       TEXT    NOT NULL,
    metadata      JSONB   NOT NULL DEFAULT '{}',
    created_at    BIGINT  NOT NULL,
    content_hash  TEXT    NOT NULL,
    valid_until   BIGINT,
    superseded_by UUID,
    tsv           TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', content)) STORED
);
CREATE INDEX memories_by_time    ON memories (tenant, created_at);
CREATE INDEX memories_by_session ON memories (tenant, session, created_at);
CREATE INDEX memories_superseded ON memories (superseded_by) WHERE superseded_by IS NOT NULL;
CREATE INDEX memories_text       ON memories USING GIN (tsv);

CREATE TABLE sessions (
    tenant     TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    started_at BIGINT NOT NULL,
    last_at    BIGINT NOT NULL,
    memories   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX sessions_by_activity ON sessions (tenant, last_at);

CREATE TABLE concepts (
    cid        BIGSERIAL PRIMARY KEY,
    tenant     TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    kind       TEXT   NOT NULL,
    mentions   BIGINT NOT NULL DEFAULT 0,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    UNIQUE (tenant, key)
);

CREATE TABLE mentions (
    cid BIGINT NOT NULL,
    rid BIGINT NOT NULL,
    PRIMARY KEY (cid, rid)
);
CREATE INDEX mentions_by_memory ON mentions (rid, cid);

-- Undirected links, one row per pair with a < b (concept cids).
CREATE TABLE links (
    a        BIGINT           NOT NULL,
    b        BIGINT           NOT NULL,
    tenant   TEXT             NOT NULL,
    strength DOUBLE PRECISION NOT NULL,
    count    BIGINT           NOT NULL,
    first_at BIGINT           NOT NULL,
    last_at  BIGINT           NOT NULL,
    PRIMARY KEY (a, b),
    CHECK (a < b)
);
CREATE INDEX links_by_b      ON links (b, a);
CREATE INDEX links_by_tenant ON links (tenant);

CREATE TABLE decisions (
    id         UUID   PRIMARY KEY,
    tenant     TEXT   NOT NULL,
    memory_id  UUID   NOT NULL,
    text       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX decisions_by_time   ON decisions (tenant, created_at);
CREATE INDEX decisions_by_memory ON decisions (memory_id);

-- The ordered history of every write. Writers of one tenant are serialised by an advisory
-- lock, so within a tenant the sequence order is the commit order.
CREATE TABLE changes (
    seq    BIGSERIAL PRIMARY KEY,
    tenant TEXT   NOT NULL,
    at     BIGINT NOT NULL,
    op     TEXT   NOT NULL,
    entity TEXT   NOT NULL
);
CREATE INDEX changes_by_tenant ON changes (tenant, seq);
