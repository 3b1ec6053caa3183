-- API keys: the public prefix is the id; only the SHA-256 of the whole key is kept.
CREATE TABLE api_keys (
    prefix     TEXT   PRIMARY KEY,
    tenant     TEXT   NOT NULL,
    scope      TEXT   NOT NULL,
    hash       TEXT   NOT NULL,
    name       TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at);
