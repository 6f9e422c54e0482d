-- Core schema: keys, profiles, anonymous ids, devices, push metrics, conversion events.
-- Timestamps are unix seconds (REAL). Every table is scoped by app_id.

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('app', 'admin')),
    name        TEXT NOT NULL DEFAULT '',
    secret_hash TEXT NOT NULL UNIQUE,
    created_at  REAL NOT NULL,
    revoked_at  REAL
);

CREATE TABLE profiles (
    app_id      TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    email       TEXT,
    attributes  TEXT NOT NULL DEFAULT '{}',
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (app_id, customer_id)
) WITHOUT ROWID;

-- An install's anonymous id, and the customer it was last identified as.
CREATE TABLE anonymous_ids (
    app_id        TEXT NOT NULL,
    anonymous_id  TEXT NOT NULL,
    customer_id   TEXT,
    identified_at REAL,
    PRIMARY KEY (app_id, anonymous_id)
) WITHOUT ROWID;
CREATE INDEX anonymous_ids_by_customer ON anonymous_ids (app_id, customer_id);

CREATE TABLE devices (
    id               INTEGER PRIMARY KEY,
    app_id           TEXT NOT NULL,
    token            TEXT NOT NULL,
    platform         TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'active',
    customer_id      TEXT,
    anonymous_id     TEXT,
    -- set by a logout; only a PUT with customer_id or a later identify re-attaches the device
    logged_out       INTEGER NOT NULL DEFAULT 0,
    push_enabled     INTEGER NOT NULL DEFAULT 1,
    environment      TEXT NOT NULL DEFAULT 'production',
    app_version      TEXT,
    os_version       TEXT,
    device_model     TEXT,
    locale           TEXT,
    timezone         TEXT,
    attributes       TEXT NOT NULL DEFAULT '{}',
    first_seen       REAL NOT NULL,
    last_seen        REAL NOT NULL,
    token_updated_at REAL NOT NULL,
    invalid_reason   TEXT,
    replaced_by      TEXT,
    UNIQUE (app_id, token)
);
CREATE INDEX devices_by_customer ON devices (app_id, customer_id);
CREATE INDEX devices_by_anonymous_id ON devices (app_id, anonymous_id);

-- seq is the order of receipt: ties in timelines, and the forwarding cursor.
CREATE TABLE metrics (
    seq          INTEGER PRIMARY KEY,
    app_id       TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    metric       TEXT NOT NULL,
    token        TEXT NOT NULL,
    device_id    INTEGER,          -- NULL until the token registers
    customer_id  TEXT,             -- the profile at receipt (attribution rule)
    anonymous_id TEXT,
    delivery_id  TEXT,
    occurred_at  REAL NOT NULL,
    received_at  REAL NOT NULL,
    action       TEXT,
    deep_link    TEXT,
    reason       TEXT,
    source       TEXT
);
CREATE UNIQUE INDEX metrics_dedup ON metrics (app_id, client_id);
CREATE INDEX metrics_by_device ON metrics (device_id, occurred_at);
CREATE INDEX metrics_by_customer ON metrics (app_id, customer_id, metric, occurred_at);
CREATE INDEX metrics_waiting_for_device ON metrics (app_id, token) WHERE device_id IS NULL;
CREATE INDEX metrics_unattached ON metrics (app_id, anonymous_id) WHERE customer_id IS NULL;

CREATE TABLE events (
    seq           INTEGER PRIMARY KEY,
    app_id        TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    name          TEXT NOT NULL,   -- after aliasing
    original_name TEXT NOT NULL,
    token         TEXT,
    device_id     INTEGER,
    customer_id   TEXT,
    anonymous_id  TEXT,
    occurred_at   REAL NOT NULL,
    received_at   REAL NOT NULL,
    properties    TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX events_dedup ON events (app_id, client_id);
CREATE INDEX events_by_customer ON events (app_id, customer_id, name, occurred_at);
CREATE INDEX events_by_device ON events (device_id);
CREATE INDEX events_waiting_for_device ON events (app_id, token)
    WHERE device_id IS NULL AND token IS NOT NULL;
CREATE INDEX events_unattached ON events (app_id, anonymous_id) WHERE customer_id IS NULL;
