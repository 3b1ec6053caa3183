-- Webhook subscriptions and their delivery records, each kept as a JSON document
-- (continuum_core::webhook), with the columns they are looked up by.
CREATE TABLE webhooks (
    id         TEXT    PRIMARY KEY,
    tenant     TEXT    NOT NULL,
    created_at BIGINT NOT NULL,
    body       TEXT    NOT NULL
);
CREATE INDEX webhooks_by_tenant ON webhooks (tenant, created_at);
CREATE TABLE webhook_deliveries (
    id      TEXT    PRIMARY KEY,
    webhook TEXT    NOT NULL,
    seq     BIGINT NOT NULL,
    body    TEXT    NOT NULL
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook, seq);
