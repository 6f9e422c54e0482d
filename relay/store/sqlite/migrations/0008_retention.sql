-- Retention: pruning finds metrics and events older than their horizon by timestamp, a
-- bounded chunk per write transaction, without scanning the tables.
CREATE INDEX metrics_by_occurred_at ON metrics (occurred_at);
CREATE INDEX events_by_occurred_at ON events (occurred_at);
