-- Every metric moves its device's last_seen. Rewriting the wide devices row for that wrote a
-- whole row version (and its WAL) per device and metric commit; a narrow row of its own is a
-- fraction of that. A device's last_seen is the later of devices.last_seen (PUT, refresh)
-- and device_seen.last_seen (metrics): `records.LAST_SEEN`.
CREATE TABLE device_seen (
    device_id BIGINT PRIMARY KEY,
    last_seen DOUBLE PRECISION NOT NULL
);
INSERT INTO device_seen (device_id, last_seen) SELECT id, last_seen FROM devices ORDER BY id;
