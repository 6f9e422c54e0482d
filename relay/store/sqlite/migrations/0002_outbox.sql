-- The transactional outbox: what must reach Customer.io, written in the same transaction as the
-- fact that produced it. Rows are deleted once Customer.io accepted them; dead rows stay until
-- replayed.
--
-- lane: operations in one lane are sent strictly in seq order (a person, a device token or an
-- anonymous id). wait_lane: a second lane whose earlier rows must go first (a device add waits
-- for its person's identify; an identify waits for the anonymous events it merges).
CREATE TABLE outbox (
    seq              INTEGER PRIMARY KEY,
    app_id           TEXT NOT NULL,
    lane             TEXT NOT NULL,
    wait_lane        TEXT,
    endpoint         TEXT NOT NULL,      -- "batch" (Track v2) or "POST /api/v1/..." (Track v1)
    payload          TEXT NOT NULL,      -- the JSON operation or v1 body
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL,
    first_attempt_at REAL,
    last_error       TEXT,
    created_at       REAL NOT NULL
);
CREATE INDEX outbox_pending ON outbox (status, seq);
CREATE INDEX outbox_by_app ON outbox (app_id, status);

-- Toward Customer.io: one delivered and one opened per (delivery, token), whatever relay received.
CREATE TABLE forwarded_delivery_metrics (
    delivery_id TEXT NOT NULL,
    token       TEXT NOT NULL,
    metric      TEXT NOT NULL,
    PRIMARY KEY (delivery_id, token, metric)
) WITHOUT ROWID;
