-- One forwarder at a time drains the outbox, whichever relay process holds this lease; a
-- holder that dies without letting go loses it when expires_at passes (docs/architecture.md).
CREATE TABLE forwarder_lease (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
