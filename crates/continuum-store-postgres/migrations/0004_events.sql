-- The typed event log replaces the change log: every entry has a type, a payload version and a
-- JSON payload that describes the change completely (a consumer never re-reads the tables),
-- and a subject (the memory whose text the payload carries) so that forgetting a memory can
-- scrub its text from past payloads.
--
-- Positions come from the one-row event_head, updated at the end of each write transaction:
-- its row lock makes the store-wide sequence gap-free and in commit order across tenants.
--
-- Rows of the old log are carried forward with the payload their memory, decision or concept
-- still has; an entry whose row is gone keeps its id with a null payload. `links.strengthened`
-- rows of the oldest logs held a count, not pairs: they become `concepts.changed` with unknown
-- keys, as do `concepts.changed` rows of `*`.

CREATE TABLE events (
    seq     BIGINT  PRIMARY KEY,
    tenant  TEXT    NOT NULL,
    at      BIGINT  NOT NULL,
    type    TEXT    NOT NULL,
    v       INTEGER NOT NULL,
    subject TEXT,
    payload TEXT    NOT NULL
);

CREATE TABLE event_head (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    seq               BIGINT  NOT NULL,
    -- How far the log was compacted: reading after an earlier position is refused.
    compacted_through BIGINT  NOT NULL DEFAULT 0
);

INSERT INTO events (seq, tenant, at, type, v, subject, payload)
SELECT c.seq, c.tenant, c.at,
    CASE WHEN c.op IN ('memory.created', 'memory.superseded', 'memory.updated', 'memory.forgotten',
            'concept.created', 'decision.created') THEN c.op ELSE 'concepts.changed' END,
    1,
    CASE c.op
        WHEN 'memory.created' THEN c.entity
        WHEN 'decision.created' THEN (SELECT d.memory_id::text FROM decisions d WHERE d.id = c.entity::uuid)
    END,
    (CASE c.op
        WHEN 'memory.created' THEN jsonb_build_object(
            'type', 'memory.created',
            'id', c.entity,
            'memory', (SELECT jsonb_build_object(
                    'id', c.entity, 'session', m.session, 'source', m.source, 'kind', m.kind,
                    'content', m.content, 'metadata', m.metadata, 'created_at', m.created_at,
                    'content_hash', m.content_hash)
                FROM memories m WHERE m.id = c.entity::uuid AND m.tenant = c.tenant),
            'concepts', coalesce((SELECT jsonb_agg(jsonb_build_object('key', k.key, 'name', k.name, 'kind', k.kind))
                FROM memories m JOIN mentions x ON x.rid = m.rid JOIN concepts k ON k.cid = x.cid
                WHERE m.id = c.entity::uuid AND m.tenant = c.tenant), '[]'::jsonb))
        WHEN 'memory.superseded' THEN jsonb_build_object(
            'type', 'memory.superseded',
            'id', c.entity,
            'by', (SELECT m.superseded_by::text FROM memories m WHERE m.id = c.entity::uuid AND m.tenant = c.tenant))
        WHEN 'memory.updated' THEN jsonb_build_object('type', 'memory.updated', 'id', c.entity, 'superseded_by', NULL)
        WHEN 'memory.forgotten' THEN jsonb_build_object('type', 'memory.forgotten', 'id', c.entity)
        WHEN 'concept.created' THEN jsonb_build_object(
            'type', 'concept.created',
            'key', c.entity,
            'name', coalesce((SELECT k.name FROM concepts k WHERE k.tenant = c.tenant AND k.key = c.entity), c.entity),
            'kind', coalesce((SELECT k.kind FROM concepts k WHERE k.tenant = c.tenant AND k.key = c.entity), 'concept'))
        WHEN 'decision.created' THEN jsonb_build_object(
            'type', 'decision.created',
            'id', c.entity,
            'decision', (SELECT jsonb_build_object('id', c.entity, 'memory_id', d.memory_id::text,
                    'text', d.text, 'created_at', d.created_at)
                FROM decisions d WHERE d.id = c.entity::uuid AND d.tenant = c.tenant))
        WHEN 'concepts.changed' THEN jsonb_build_object(
            'type', 'concepts.changed',
            'keys', CASE WHEN left(c.entity, 1) = '[' THEN c.entity::jsonb END)
        ELSE jsonb_build_object('type', 'concepts.changed', 'keys', NULL)
    END)::text
FROM changes c
ORDER BY c.seq;

INSERT INTO event_head (id, seq) SELECT 1, coalesce(max(seq), 0) FROM events;

DROP TABLE changes;
CREATE INDEX events_by_tenant ON events (tenant, seq);
-- Forgetting a memory finds the events that carry its text.
CREATE INDEX events_by_subject ON events (subject) WHERE subject IS NOT NULL;

-- Consumers' named positions: events a cursor has not passed are never compacted.
CREATE TABLE event_cursors (
    name       TEXT    PRIMARY KEY,
    position   BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);
