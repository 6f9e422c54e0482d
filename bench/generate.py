"""Write a relay database directly: relay's migrations, then profiles, devices, metrics, events.

Fast on purpose: the explicit indexes of the big tables are dropped, rows go in with
``executemany`` in large transactions with journaling off, and the indexes are rebuilt at
the end (one sort each instead of millions of random B-tree inserts). The result is an
ordinary relay database in WAL mode, with the benchmark keys (`APP_KEY`, `ADMIN_KEY`).

Distributions (profiles and devices are seeded; metrics and events are drawn inside SQLite with
its unseeded ``random()``, so two runs of one spec differ in detail, not in shape):

- profiles: activity is Pareto-distributed (a few heavy users), the open propensity skews low
  (most people rarely open), recency is exponential (most were active in the last weeks, a tail
  of lapsed ones);
- devices: 0/1/2/3 per profile with weights 8/62/24/6, plus 8% anonymous devices; 88% active,
  4% each invalid / unregistered / stale; 92% push-enabled; iOS 64-hex and FCM 152-char tokens;
- metrics: a device drawn by its profile's activity; opened/tapped with the profile's
  propensity, ~2% deep-link failures, ~1% conversions, the rest delivered; timestamps before
  ``as_of`` by the profile's recency plus an exponential gap;
- events: one per 20 metrics, 25% ``Order Completed`` (the conversion), on weighted profiles.

Run: ``python -m bench generate OUT.db --profiles N --metrics M [--devices D]``.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import ADMIN_KEY, APP_KEY, check_free_disk, data_dir
from relay.keys import KeyRecord, hash_secret, new_key_id
from relay.store.sql.keys import insert_key
from relay.store.sqlite.migrate import apply_migrations

APP = "default"
DAY = 86_400.0
CHUNK = 100_000
BIG_TABLES = ("devices", "metrics", "events")
FORMAT_VERSION = 2


@dataclass(frozen=True)
class Spec:
    profiles: int
    metrics: int
    devices: int | None = None  # default: what the per-profile distribution gives
    events: int | None = None  # default: metrics // 20
    seed: int = 1

    def estimated_bytes(self) -> int:
        devices = self.devices if self.devices is not None else int(self.profiles * 1.4)
        events = self.events if self.events is not None else self.metrics // 20
        return self.metrics * 340 + devices * 480 + self.profiles * 200 + events * 220


def _token(rng: random.Random, ios: bool) -> str:
    if ios:
        return rng.randbytes(32).hex()
    return "f" + base64.urlsafe_b64encode(rng.randbytes(114)).decode().rstrip("=")[:151]


def generate(path: Path, spec: Spec, as_of: float | None = None, quiet: bool = False) -> dict:
    """Write ``path`` (replacing it) from ``spec``; returns the metadata saved beside it."""
    started = time.monotonic()
    as_of = float(int(as_of if as_of is not None else time.time()))
    path.parent.mkdir(parents=True, exist_ok=True)
    check_free_disk(path.parent, spec.estimated_bytes(), f"generating {path.name}")
    partial = path.with_name(path.name + ".partial")
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(partial) + suffix).unlink(missing_ok=True)

    def say(text: str) -> None:
        if not quiet:
            print(f"  [generate {path.name}] {time.monotonic() - started:6.1f}s {text}", flush=True)

    rng = random.Random(spec.seed)
    conn = sqlite3.connect(partial, isolation_level=None)
    apply_migrations(conn)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        f" AND tbl_name IN ({', '.join('?' for _ in BIG_TABLES)})",
        BIG_TABLES,
    ).fetchall()
    for name, _sql in indexes:
        conn.execute(f"DROP INDEX {name}")

    conn.execute("BEGIN")
    for role, secret in (("app", APP_KEY), ("admin", ADMIN_KEY)):
        record = KeyRecord(new_key_id(), APP, role, f"bench {role}", as_of)
        insert_key(conn, record, hash_secret(secret))

    # -- profiles ----------------------------------------------------------------------------
    activity, propensity, recency = [], [], []
    rows = []
    for i in range(spec.profiles):
        activity.append(min(rng.paretovariate(1.4), 60.0))
        propensity.append(rng.random() ** 2 * 0.7)
        recency.append(min(rng.expovariate(1 / 18), 170.0) * DAY)
        created = as_of - rng.uniform(30, 720) * DAY
        rows.append((APP, f"cus_{i:08d}", f"user{i}@example.com", created, created))
        if len(rows) >= CHUNK:
            _profiles(conn, rows)
    _profiles(conn, rows)
    say(f"{spec.profiles:,} profiles")

    # -- devices -----------------------------------------------------------------------------
    # device info: (token, id, customer_id, anonymous_id, propensity, recency seconds)
    info: list[tuple[str, int, str | None, str, float, float]] = []
    weights: list[float] = []
    per_profile = rng.choices((0, 1, 2, 3), weights=(8, 62, 24, 6), k=spec.profiles)
    owners: list[int | None] = [p for p, n in enumerate(per_profile) for _ in range(n)]
    owners += [None] * round(spec.profiles * 0.08)
    if spec.devices is not None:
        while len(owners) < spec.devices:
            owners.append(rng.randrange(spec.profiles) if spec.profiles else None)
        del owners[spec.devices :]
    statuses = rng.choices(
        ("active", "invalid", "unregistered", "stale"), weights=(88, 4, 4, 4), k=len(owners)
    )
    for d, owner in enumerate(owners):
        device_id = d + 1
        ios = rng.random() < 0.55
        token = _token(rng, ios)
        anonymous_id = f"anon-{device_id:09d}"
        customer_id = f"cus_{owner:08d}" if owner is not None else None
        status = statuses[d]
        if owner is not None:
            p, r, w = propensity[owner], recency[owner], activity[owner]
        else:
            p, r, w = rng.random() * 0.3, rng.expovariate(1 / 25) * DAY, 0.5
        first_seen = as_of - rng.uniform(r / DAY + 1, 400) * DAY
        # relay's hygiene marks active tokens unseen for 30 days stale at start-up: keep the
        # dataset in the state relay would leave it in, so opening it changes nothing.
        last_seen = as_of - (min(r, 25 * DAY) if status != "stale" else max(r, 45 * DAY))
        rows.append(
            (
                device_id,
                APP,
                token,
                "ios" if ios else "android",
                status,
                customer_id,
                anonymous_id,
                int(rng.random() < 0.92),
                "5.1.0" if rng.random() < 0.7 else "5.0.3",
                "17.4" if ios else "14",
                "iPhone15,2" if ios else "Pixel 8",
                "en-US",
                "Europe/Berlin",
                first_seen,
                last_seen,
                first_seen,
                "BadDeviceToken" if status == "invalid" else None,
            )
        )
        info.append((token, device_id, customer_id, anonymous_id, p, r))
        weights.append(w)
        if len(rows) >= CHUNK:
            _devices(conn, rows)
    _devices(conn, rows)
    conn.executemany(
        "INSERT INTO anonymous_ids (app_id, anonymous_id, customer_id, identified_at)"
        " VALUES (?, ?, ?, ?)",
        [(APP, anon, cus, as_of - r) for _t, _i, cus, anon, _p, r in info if cus is not None],
    )
    conn.execute("COMMIT")
    say(f"{len(info):,} devices")

    # -- metrics and events: drawn inside SQLite (5x faster than building tuples in Python) --
    # Weighted draws use a cumulative-weight column: the first row whose `hi` exceeds a
    # uniform integer in [0, total) is picked with probability weight/total.
    conn.execute(
        "CREATE TEMP TABLE bench_devices (k INTEGER PRIMARY KEY, token TEXT, device_id INTEGER,"
        " customer_id TEXT, anonymous_id TEXT, p REAL, r REAL, hi INTEGER)"
    )
    conn.execute("CREATE TEMP TABLE bench_profiles (k INTEGER PRIMARY KEY, r REAL, hi INTEGER)")
    conn.execute("BEGIN")
    hi = 0
    rows = []
    for k, ((token, device_id, customer_id, anonymous_id, p, r), w) in enumerate(
        zip(info, weights, strict=True)
    ):
        hi += max(1, int(w * 1000))
        rows.append((k, token, device_id, customer_id, anonymous_id, p, r, hi))
    conn.executemany("INSERT INTO bench_devices VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    device_total = hi
    hi = 0
    rows = []
    for k, (w, r) in enumerate(zip(activity, recency, strict=True)):
        hi += max(1, int(w * 1000))
        rows.append((k, r, hi))
    conn.executemany("INSERT INTO bench_profiles VALUES (?, ?, ?)", rows)
    profile_total = hi
    rows = []
    conn.execute("CREATE INDEX temp.bench_devices_hi ON bench_devices (hi)")
    conn.execute("CREATE INDEX temp.bench_profiles_hi ON bench_profiles (hi)")
    conn.execute("COMMIT")
    common = {"as_of": as_of, "oldest": as_of - 200 * DAY}
    done = 0
    while done < spec.metrics and info:
        end = min(spec.metrics, done + 1_000_000)
        conn.execute("BEGIN")
        conn.execute(_METRICS_SQL, {**common, "start": done + 1, "end": end, "total": device_total})
        conn.execute("COMMIT")
        done = end
        if done % 5_000_000 == 0 or done == spec.metrics:
            say(f"{done:,} metrics")
    n_events = spec.events if spec.events is not None else spec.metrics // 20
    done = 0
    while done < n_events and spec.profiles:
        end = min(n_events, done + 1_000_000)
        conn.execute("BEGIN")
        conn.execute(_EVENTS_SQL, {**common, "start": done + 1, "end": end, "total": profile_total})
        conn.execute("COMMIT")
        done = end
    say(f"{n_events:,} events")
    conn.execute("DROP TABLE temp.bench_devices")
    conn.execute("DROP TABLE temp.bench_profiles")

    for _name, sql in indexes:
        conn.execute(sql)
    say(f"{len(indexes)} indexes rebuilt")
    # As migration 0011 leaves a database it upgrades: a device_seen row for every device.
    conn.execute("INSERT INTO device_seen (device_id, last_seen) SELECT id, last_seen FROM devices")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.replace(partial, path)
    meta = {
        "format": FORMAT_VERSION,
        "spec": asdict(spec),
        "as_of": as_of,
        "devices": len(info),
        "events": n_events,
        "bytes": path.stat().st_size,
        "seconds": round(time.monotonic() - started, 1),
    }
    meta_path(path).write_text(json.dumps(meta, indent=2))
    say(f"done: {meta['bytes'] / 1e6:,.0f} MB")
    return meta


# Random draws are materialized first: SQLite may evaluate random() once per reference otherwise.
_METRICS_SQL = """
WITH RECURSIVE seqs(n) AS (SELECT :start UNION ALL SELECT n + 1 FROM seqs WHERE n < :end),
draws AS MATERIALIZED (
    SELECT n, abs(random()) % :total AS x, (abs(random()) % 1000000) / 1000000.0 AS u,
        -ln(1.0 - (abs(random()) % 1000000) / 1000000.0) / 0.12 AS gap
    FROM seqs
)
INSERT INTO metrics (seq, app_id, client_id, metric, token, device_id, customer_id, anonymous_id,
    delivery_id, occurred_at, received_at, action, deep_link, reason, source)
SELECT n, 'default', printf('m%011d', n),
    CASE WHEN u < d.p * 0.85 THEN 'opened' WHEN u < d.p THEN 'tapped'
        WHEN u < d.p + 0.02 THEN 'deep_link_failed'
        WHEN u < d.p + 0.03 AND d.customer_id IS NOT NULL THEN 'converted'
        ELSE 'delivered' END,
    d.token, d.device_id, d.customer_id, d.anonymous_id, printf('dlv%010x', n),
    max(:oldest, :as_of - d.r - gap * 86400.0),
    max(:oldest, :as_of - d.r - gap * 86400.0) + 2.0,
    NULL,
    CASE WHEN u >= d.p AND u < d.p + 0.02 THEN 'https://shop.example.com/p/42' END,
    CASE WHEN u >= d.p AND u < d.p + 0.02 THEN 'no_route' END,
    CASE WHEN u >= d.p + 0.02 AND u < d.p + 0.03 AND d.customer_id IS NOT NULL THEN 'relay'
        ELSE 'app' END
FROM draws JOIN bench_devices d
    ON d.k = (SELECT k FROM bench_devices WHERE hi > draws.x ORDER BY hi LIMIT 1)
"""

_EVENTS_SQL = """
WITH RECURSIVE seqs(n) AS (SELECT :start UNION ALL SELECT n + 1 FROM seqs WHERE n < :end),
draws AS MATERIALIZED (
    SELECT n, abs(random()) % :total AS x, (abs(random()) % 1000000) / 1000000.0 AS u,
        -ln(1.0 - (abs(random()) % 1000000) / 1000000.0) / 0.12 AS gap
    FROM seqs
),
named AS MATERIALIZED (
    SELECT n, x, gap, CASE WHEN u < 0.25 THEN 'Order Completed' WHEN u < 0.75 THEN 'Product Viewed'
        ELSE 'Added to Cart' END AS name
    FROM draws
)
INSERT INTO events (seq, app_id, client_id, name, original_name, customer_id, occurred_at,
    received_at, properties, attributed)
SELECT n, 'default', printf('e%011d', n), name, name, printf('cus_%08d', p.k),
    max(:oldest, :as_of - p.r - gap * 86400.0), max(:oldest, :as_of - p.r - gap * 86400.0) + 2.0,
    '{"value": 19.99, "currency": "EUR"}', 1
FROM named JOIN bench_profiles p
    ON p.k = (SELECT k FROM bench_profiles WHERE hi > named.x ORDER BY hi LIMIT 1)
"""


def _profiles(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    conn.executemany(
        "INSERT INTO profiles (app_id, customer_id, email, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?)",
        rows,
    )
    rows.clear()


def _devices(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    conn.executemany(
        "INSERT INTO devices (id, app_id, token, platform, status, customer_id, anonymous_id,"
        " push_enabled, app_version, os_version, device_model, locale, timezone, first_seen,"
        " last_seen, token_updated_at, invalid_reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    rows.clear()


def meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def dataset(name: str, spec: Spec) -> tuple[Path, dict]:
    """A cached, pristine dataset in the data directory: generated once per spec.

    Benchmarks that write copy it first (`working_copy`); read-only ones use it as it is.
    """
    path = data_dir() / f"{name}.db"
    meta_file = meta_path(path)
    if path.exists() and meta_file.exists():
        meta = json.loads(meta_file.read_text())
        if meta.get("spec") == asdict(spec) and meta.get("format") == FORMAT_VERSION:
            return path, meta
    return path, generate(path, spec)


def working_copy(source: Path, target: Path) -> Path:
    """A copy of a dataset that a benchmark may write to (relay adds rows, marks stale tokens)."""
    check_free_disk(target.parent, source.stat().st_size, f"copying {source.name}")
    for suffix in ("", "-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    shutil.copyfile(source, target)  # datasets are closed cleanly: no -wal file to carry
    return target


def active_tokens(db: Path, limit: int | None = None, seed: int = 7) -> list[str]:
    """Tokens of active devices, shuffled (a fixed seed, so runs send the same metrics)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    tokens = [row[0] for row in conn.execute("SELECT token FROM devices WHERE status = 'active'")]
    conn.close()
    random.Random(seed).shuffle(tokens)
    return tokens[:limit] if limit is not None else tokens


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench generate", description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--profiles", type=int, required=True)
    parser.add_argument("--metrics", type=int, required=True)
    parser.add_argument("--devices", type=int)
    parser.add_argument("--events", type=int)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    spec = Spec(args.profiles, args.metrics, args.devices, args.events, args.seed)
    generate(args.out, spec)


if __name__ == "__main__":
    main()
