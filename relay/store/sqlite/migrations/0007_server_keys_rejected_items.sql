-- Server keys (person-level writes, no reads), suppressed profiles, and the rejected-items log
-- (what a Pipelines batch answered 200 for but could not store as data).

CREATE TABLE api_keys_new (
    id          TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('app', 'server', 'admin')),
    name        TEXT NOT NULL DEFAULT '',
    secret_hash TEXT NOT NULL UNIQUE,
    created_at  REAL NOT NULL,
    revoked_at  REAL
);
INSERT INTO api_keys_new SELECT id, app_id, role, name, secret_hash, created_at, revoked_at
    FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_new RENAME TO api_keys;

ALTER TABLE profiles ADD COLUMN suppressed INTEGER NOT NULL DEFAULT 0;

CREATE TABLE rejected_items (
    id      INTEGER PRIMARY KEY,
    app_id  TEXT NOT NULL,
    at      REAL NOT NULL,
    surface TEXT NOT NULL,
    path    TEXT NOT NULL,
    reason  TEXT NOT NULL,
    message TEXT NOT NULL,
    item    TEXT NOT NULL
);
CREATE INDEX rejected_items_by_app ON rejected_items (app_id, id);
