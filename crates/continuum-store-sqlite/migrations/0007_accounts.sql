-- Metering, tiers and billing: usage per tenant and UTC day, the plan that puts a tenant on a
-- tier, and the billing events already processed (so that a replay is not applied twice).
CREATE TABLE usage_days (
    tenant             TEXT    NOT NULL,
    day                TEXT    NOT NULL,
    learn              INTEGER NOT NULL DEFAULT 0,
    recall             INTEGER NOT NULL DEFAULT 0,
    search             INTEGER NOT NULL DEFAULT 0,
    other              INTEGER NOT NULL DEFAULT 0,
    embeddings         INTEGER NOT NULL DEFAULT 0,
    webhook_deliveries INTEGER NOT NULL DEFAULT 0,
    memories           INTEGER NOT NULL DEFAULT 0,
    bytes              INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, day)
);
CREATE INDEX usage_days_by_day ON usage_days (day);
CREATE TABLE tenant_plans (
    tenant       TEXT    PRIMARY KEY,
    tier         TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    status       TEXT,
    updated_at   INTEGER NOT NULL,
    external_at  INTEGER,
    customer     TEXT,
    subscription TEXT
);
CREATE TABLE billing_events (
    id          TEXT    PRIMARY KEY,
    received_at INTEGER NOT NULL
);
CREATE INDEX billing_events_by_time ON billing_events (received_at);
