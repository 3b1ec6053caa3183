-- Reflection records (intentions, beliefs, contradictions, claims), each kept as a JSON
-- document (continuum_core::reflection) with the columns they are listed by.
CREATE TABLE records (
    tenant     TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL,
    body       TEXT    NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX records_by_kind ON records (tenant, kind, status, created_at);
