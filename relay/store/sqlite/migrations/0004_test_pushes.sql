-- relay's own test deliveries (QA). Their metrics stay local: Customer.io does not know the ids.
CREATE TABLE test_deliveries (
    app_id      TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    created_at  REAL NOT NULL,
    title       TEXT,
    body        TEXT,
    deep_link   TEXT,
    PRIMARY KEY (delivery_id)
) WITHOUT ROWID;

-- Delivery traces: every metric of one delivery, in order of receipt.
CREATE INDEX metrics_by_delivery ON metrics (app_id, delivery_id, seq)
    WHERE delivery_id IS NOT NULL;
-- Hygiene: find active tokens not seen for a while.
CREATE INDEX devices_by_last_seen ON devices (status, last_seen);
