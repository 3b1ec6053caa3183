-- Continuum schema v1: memories with a full-text index, sessions, concepts, mentions,
-- Hebbian links, decisions and the change log. Every table carries the tenant, directly or
-- through the concept or memory it hangs off.

CREATE TABLE memories (
    rid           INTEGER PRIMARY KEY,
    id            BLOB    NOT NULL UNIQUE,
    tenant        TEXT    NOT NULL,
    session       TEXT,
    source        TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    content       TEXT    NOT NULL,
    metadata      TEXT    NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    content_hash  TEXT    NOT NULL,
    valid_until   INTEGER,
    superseded_by BLOB
);
CREATE INDEX memories_by_time    ON memories (tenant, created_at);
CREATE INDEX memories_by_session ON memories (tenant, session, created_at);
-- Import's duplicate check (same hash, time and session) goes through memories_by_time.
CREATE INDEX memories_superseded ON memories (superseded_by) WHERE superseded_by IS NOT NULL;

-- Derived full-text index over memories.content; rowid = memories.rid. Contentless: the text
-- lives once, in memories.
CREATE VIRTUAL TABLE memories_fts USING fts5(
    content,
    content = '',
    contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TABLE sessions (
    tenant     TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    started_at INTEGER NOT NULL,
    last_at    INTEGER NOT NULL,
    memories   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX sessions_by_activity ON sessions (tenant, last_at);

CREATE TABLE concepts (
    cid        INTEGER PRIMARY KEY,
    tenant     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    mentions   INTEGER NOT NULL DEFAULT 0,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    UNIQUE (tenant, key)
);
-- No index on mentions: it changes on every write; listings sort the tenant's concepts.

CREATE TABLE mentions (
    cid INTEGER NOT NULL,
    rid INTEGER NOT NULL,
    PRIMARY KEY (cid, rid)
) WITHOUT ROWID;
CREATE INDEX mentions_by_memory ON mentions (rid, cid);

-- Undirected links, one row per pair with a < b (concept cids).
CREATE TABLE links (
    a        INTEGER NOT NULL,
    b        INTEGER NOT NULL,
    tenant   TEXT    NOT NULL,
    strength REAL    NOT NULL,
    count    INTEGER NOT NULL,
    first_at INTEGER NOT NULL,
    last_at  INTEGER NOT NULL,
    PRIMARY KEY (a, b),
    CHECK (a < b)
) WITHOUT ROWID;
-- No index carries strength: a Hebbian update then rewrites one B-tree entry, not three.
CREATE INDEX links_by_b      ON links (b, a);
CREATE INDEX links_by_tenant ON links (tenant);

CREATE TABLE decisions (
    id         BLOB    PRIMARY KEY,
    tenant     TEXT    NOT NULL,
    memory_id  BLOB    NOT NULL,
    text       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX decisions_by_time   ON decisions (tenant, created_at);
CREATE INDEX decisions_by_memory ON decisions (memory_id);

-- One ordered history of every write: the backbone that indexes, streams, webhooks, federation
-- and incremental backups read from.
CREATE TABLE changes (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    op     TEXT    NOT NULL,
    entity TEXT    NOT NULL
);
CREATE INDEX changes_by_tenant ON changes (tenant, seq);
-- Merge full-text segments less eagerly: when most commits add one turn, the default (merge
-- every 4 segments) rewrote segments on nearly every commit. 16 measured ~20% more
-- one-turn-per-commit throughput.
INSERT INTO memories_fts (memories_fts, rank) VALUES ('automerge', 16);
