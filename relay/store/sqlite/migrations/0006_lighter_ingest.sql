-- Ingest writes less per metric.
--
-- Whether a delivery metric was already forwarded is answered by the metrics themselves (an
-- earlier one of its kind for the same delivery and token, through metrics_by_delivery), so
-- the row per forwarded metric goes.
DROP TABLE forwarded_delivery_metrics;
-- Every metric moves its device's last_seen; an index on it cost each one a B-tree move.
-- Token hygiene scans devices in id order instead, a chunk per write transaction.
DROP INDEX devices_by_last_seen;
