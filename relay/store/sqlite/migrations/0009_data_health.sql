-- Data health (GET /v1/health/data).
--
-- The report reads the facts received since a moment, per app: without these it would scan
-- every app's events. One more index per fact table is the price at ingest.
CREATE INDEX events_by_received_at ON events (app_id, received_at);
CREATE INDEX metrics_by_received_at ON metrics (app_id, received_at);

-- What the tables of facts cannot tell afterwards, counted at the door into storage in the
-- ingest's own transaction, by the hour: items breaking the tracking plan (refused ones in
-- enforce mode are never stored) and duplicates (never stored either). A row is written only
-- when there is something to count. kind: 'violation' (name = event, property = the plan's
-- property) or 'duplicate' (name = events | metrics, property = '').
CREATE TABLE data_health_counts (
    app_id   TEXT NOT NULL,
    hour     INTEGER NOT NULL,   -- unix seconds at the start of the hour received
    kind     TEXT NOT NULL,
    name     TEXT NOT NULL,
    property TEXT NOT NULL DEFAULT '',
    n        INTEGER NOT NULL,
    PRIMARY KEY (app_id, hour, kind, name, property)
) WITHOUT ROWID;
