-- Every metric moves its device's last_seen. Rewriting the wide devices row for that put a
-- random ~4 KiB page per device into the WAL of each commit (and again at the checkpoint);
-- a narrow row of its own packs ~250 devices per page. A device's last_seen is the later of
-- devices.last_seen (PUT, refresh) and device_seen.last_seen (metrics): `records.LAST_SEEN`.
CREATE TABLE device_seen (
    device_id INTEGER PRIMARY KEY,
    last_seen REAL NOT NULL
);
-- Filled in id order now, so that metrics update rows in place instead of splitting pages.
INSERT INTO device_seen (device_id, last_seen) SELECT id, last_seen FROM devices ORDER BY id;
