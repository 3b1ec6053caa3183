-- Continuum schema v3: sentence-embedding vectors, one per memory and model.
-- `seq` orders the vector log that derived vector indexes follow (AUTOINCREMENT: a replaced
-- vector always gets a position above every earlier one). Vectors are little-endian f32.

CREATE TABLE vectors (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    rid    INTEGER NOT NULL,
    tenant TEXT    NOT NULL,
    model  TEXT    NOT NULL,
    dim    INTEGER NOT NULL,
    vector BLOB    NOT NULL,
    UNIQUE (rid, model)
);
CREATE INDEX vectors_by_tenant ON vectors (tenant, model, seq);
