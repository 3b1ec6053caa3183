-- Continuum on PostgreSQL, schema v3: sentence-embedding vectors, one per memory and model.
-- `seq` orders the vector log that derived vector indexes follow; writers of a tenant hold the
-- tenant's advisory lock, so its vector-log order is its commit order. Vectors are
-- little-endian f32 in BYTEA (the same bytes as the SQLite store).

CREATE TABLE vectors (
    seq    BIGSERIAL PRIMARY KEY,
    rid    BIGINT  NOT NULL,
    tenant TEXT    NOT NULL,
    model  TEXT    NOT NULL,
    dim    INTEGER NOT NULL,
    vector BYTEA   NOT NULL,
    UNIQUE (rid, model)
);
CREATE INDEX vectors_by_tenant ON vectors (tenant, model, seq);
