-- The typed event log replaces the change log: every entry has a type, a payload version and a
-- JSON payload that describes the change completely (a consumer never re-reads the tables),
-- and a subject (the memory whose text the payload carries) so that forgetting a memory can
-- scrub its text from past payloads.
--
-- Rows of the old log are carried forward with the payload their memory, decision or concept
-- still has; an entry whose row is gone keeps its id with a null payload. `links.strengthened`
-- rows of the oldest logs held a count, not pairs: they become `concepts.changed` with unknown
-- keys, as do `concepts.changed` rows of `*`.

CREATE TABLE events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant  TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    type    TEXT    NOT NULL,
    v       INTEGER NOT NULL,
    subject TEXT,
    payload TEXT    NOT NULL
);

INSERT INTO events (seq, tenant, at, type, v, subject, payload)
SELECT c.seq, c.tenant, c.at,
    CASE WHEN c.op IN ('memory.created', 'memory.superseded', 'memory.updated', 'memory.forgotten',
            'concept.created', 'decision.created') THEN c.op ELSE 'concepts.changed' END,
    1,
    CASE c.op
        WHEN 'memory.created' THEN c.entity
        WHEN 'decision.created' THEN (
            SELECT lower(substr(hex(d.memory_id), 1, 8) || '-' || substr(hex(d.memory_id), 9, 4) || '-' ||
                substr(hex(d.memory_id), 13, 4) || '-' || substr(hex(d.memory_id), 17, 4) || '-' ||
                substr(hex(d.memory_id), 21, 12))
            FROM decisions d WHERE d.id = unhex(replace(c.entity, '-', '')))
    END,
    CASE c.op
        WHEN 'memory.created' THEN json_object(
            'type', 'memory.created',
            'id', c.entity,
            'memory', json((SELECT json_object(
                    'id', c.entity, 'session', m.session, 'source', m.source, 'kind', m.kind,
                    'content', m.content, 'metadata', json(m.metadata), 'created_at', m.created_at,
                    'content_hash', m.content_hash)
                FROM memories m WHERE m.id = unhex(replace(c.entity, '-', '')) AND m.tenant = c.tenant)),
            'concepts', json(coalesce((SELECT json_group_array(json_object('key', k.key, 'name', k.name, 'kind', k.kind))
                FROM memories m JOIN mentions x ON x.rid = m.rid JOIN concepts k ON k.cid = x.cid
                WHERE m.id = unhex(replace(c.entity, '-', '')) AND m.tenant = c.tenant), '[]')))
        WHEN 'memory.superseded' THEN json_object(
            'type', 'memory.superseded',
            'id', c.entity,
            'by', (SELECT lower(substr(hex(m.superseded_by), 1, 8) || '-' || substr(hex(m.superseded_by), 9, 4) || '-' ||
                    substr(hex(m.superseded_by), 13, 4) || '-' || substr(hex(m.superseded_by), 17, 4) || '-' ||
                    substr(hex(m.superseded_by), 21, 12))
                FROM memories m WHERE m.id = unhex(replace(c.entity, '-', '')) AND m.tenant = c.tenant))
        WHEN 'memory.updated' THEN json_object('type', 'memory.updated', 'id', c.entity, 'superseded_by', NULL)
        WHEN 'memory.forgotten' THEN json_object('type', 'memory.forgotten', 'id', c.entity)
        WHEN 'concept.created' THEN json_object(
            'type', 'concept.created',
            'key', c.entity,
            'name', coalesce((SELECT k.name FROM concepts k WHERE k.tenant = c.tenant AND k.key = c.entity), c.entity),
            'kind', coalesce((SELECT k.kind FROM concepts k WHERE k.tenant = c.tenant AND k.key = c.entity), 'concept'))
        WHEN 'decision.created' THEN json_object(
            'type', 'decision.created',
            'id', c.entity,
            'decision', json((SELECT json_object(
                    'id', c.entity,
                    'memory_id', lower(substr(hex(d.memory_id), 1, 8) || '-' || substr(hex(d.memory_id), 9, 4) || '-' ||
                        substr(hex(d.memory_id), 13, 4) || '-' || substr(hex(d.memory_id), 17, 4) || '-' ||
                        substr(hex(d.memory_id), 21, 12)),
                    'text', d.text, 'created_at', d.created_at)
                FROM decisions d WHERE d.id = unhex(replace(c.entity, '-', '')) AND d.tenant = c.tenant)))
        WHEN 'concepts.changed' THEN json_object(
            'type', 'concepts.changed',
            'keys', CASE WHEN json_valid(c.entity) AND json_type(c.entity) = 'array' THEN json(c.entity) END)
        ELSE json_object('type', 'concepts.changed', 'keys', NULL)
    END
FROM changes c
ORDER BY c.seq;

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

-- How far the log was compacted: reading after an earlier position is refused.
CREATE TABLE event_head (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    compacted_through INTEGER NOT NULL
);
INSERT INTO event_head (id, compacted_through) VALUES (1, 0);
