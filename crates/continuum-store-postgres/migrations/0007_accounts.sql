-- Metering, tiers and billing: usage per tenant and UTC day, the plan that puts a tenant on a
-- tier, and the billing events already processed (so that a replay is not applied twice).
CREATE TABLE usage_days (
    tenant             TEXT    NOT NULL,
    day                TEXT    NOT NULL,
    learn              BIGINT NOT NULL DEFAULT 0,
    recall             BIGINT NOT NULL DEFAULT 0,
    search             BIGINT NOT NULL DEFAULT 0,
    other              BIGINT NOT NULL DEFAULT 0,
    embeddings         BIGINT NOT NULL DEFAULT 0,
    webhook_deliveries BIGINT NOT NULL DEFAULT 0,
    memories           BIGINT NOT NULL DEFAULT 0,
    bytes              BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, day)
);
CREATE INDEX usage_days_by_day ON usage_days (day);
CREATE TABLE tenant_plans (
    tenant       TEXT    PRIMARY KEY,
    tier         TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    status       TEXT,
    updated_at   BIGINT NOT NULL,
    external_at  BIGINT,
    customer     TEXT,
    subscription TEXT
);
CREATE TABLE billing_events (
    id          TEXT    PRIMARY KEY,
    received_at BIGINT NOT NULL
);
CREATE INDEX billing_events_by_time ON billing_events (received_at);
