-- Calls received on the Customer.io-compatible routes, by their messageId (or a key derived
-- from the call), so a replayed batch changes nothing.
CREATE TABLE compat_messages (
    app_id      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (app_id, message_id)
) WITHOUT ROWID;
