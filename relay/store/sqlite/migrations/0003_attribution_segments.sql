-- Conversion attribution: relay creates at most one `converted` metric per (delivery, token).
CREATE UNIQUE INDEX metrics_one_conversion ON metrics (app_id, delivery_id, token)
    WHERE metric = 'converted';
-- A conversion event is settled once it produced its `converted` metric (or its last-touch
-- delivery already had one); unsettled ones are retried when history joins the profile.
ALTER TABLE events ADD COLUMN attributed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX events_unattributed ON events (app_id, customer_id, occurred_at) WHERE attributed = 0;

-- The members each segment had at its last sync to Customer.io, to compute who left.
CREATE TABLE segment_members (
    app_id      TEXT NOT NULL,
    segment     TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    PRIMARY KEY (app_id, segment, customer_id)
) WITHOUT ROWID;
