-- The audit log: one hash chain for the whole store (continuum_core::audit). The body is the
-- canonical encoding the hash covers, kept as written; tenant and action are copied out of it
-- for lookups. Entries are appended and never updated.
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    tenant    TEXT,
    action    TEXT    NOT NULL,
    body      TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant, seq);
-- How far each consumer of the audit log (the syslog shipper) has got.
CREATE TABLE audit_cursors (
    name TEXT    PRIMARY KEY,
    seq  BIGINT NOT NULL,
    at   BIGINT NOT NULL
);
