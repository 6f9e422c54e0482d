"""Scale-out: ingest with 1, 2, … relay processes sharing one PostgreSQL database.

Setup: a fresh database ``relay_bench_scale`` (dropped and recreated; the admin URL is
``TEST_POSTGRES_URL``, else the local test server's), ``relay migrate``, the benchmark app
key (``relay keys create --value``), and a few thousand devices registered through
``PUT /v1/devices/{token}`` (the load generator's ``devices`` mode).

For each process count N (``--processes 1,2``): N ``relay serve`` processes, each on its own
port, all on that database (``pool_size = 10`` each). N load generators then run at once,
one per relay, starting together (``--start-at``), each sending ``count / N`` metrics from
``16 / N`` clients — 16 concurrent clients in all at every N, so only the number of relay
processes changes. Figures are summed over the wall time from the first load generator's
start to the last one's end. After a warm-up (``warm`` metrics in batches of 100):

- single: one metric per request, requests/s (first, while the tables are small);
- batched: metrics/s in batches of 100 (every metric names a delivery: one metric row, one
  outbox row, the device's last_seen, per metric).

The rates depend on how many metrics the table holds (the report prints the sequential scans
of ``metrics`` each phase caused and the rows it held after), so compare rounds of one size.

Around each phase the bench reads ``pg_stat_database`` (``xact_commit``: every committed
transaction, the readers' autocommit statements included; ``deadlocks``), counts the
serialization failures PostgreSQL logged for the database when its log file is readable here
(each is a SERIALIZABLE write batch that lost to another process and was run again), and
reads the CPU seconds of the relay processes, of PostgreSQL (this database's backends and the
server's auxiliary processes), of the load generators and of the whole machine
(``/proc/stat``; "other" is what the rest of the machine used meanwhile).
Between rounds the relays stop and ``metrics`` and ``outbox`` are truncated, so every round
writes into tables of the same size.

Nothing is pinned: relay, the load generators and PostgreSQL share every CPU, so on a small
machine the figure measures the machine (the CPU split says which side is the limit), not
how far relay scales on its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench.common import (
    APP_KEY,
    PY,
    REPO,
    Relay,
    Report,
    cpu_seconds,
    data_dir,
    fmt_rate,
    header,
    loadgen,
)

ADMIN_URL = "postgresql://relay_test:relay_test@127.0.0.1:5432/postgres"
DATABASE = "relay_bench_scale"
CLIENTS = 16  # in all, split evenly between the load generators
POOL_SIZE = 10
DEVICE_PREFIX = "scaledev"

SIZES: dict[str, dict[str, int]] = {
    "smoke": {"devices": 1_000, "warm": 500, "batched": 4_000, "single": 400},
    "quick": {"devices": 5_000, "warm": 5_000, "batched": 100_000, "single": 3_000},
    "full": {"devices": 20_000, "warm": 20_000, "batched": 500_000, "single": 10_000},
}


def admin_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", ADMIN_URL)


def database_url(admin: str, name: str) -> str:
    parts = urlsplit(admin)
    return urlunsplit(parts._replace(path=f"/{name}"))


def recreate_database(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def relay_cli(config: Path, *args: str) -> str:
    done = subprocess.run(
        [PY, "-m", "relay", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"relay {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


# -- what the machine did during a phase ---------------------------------------------------


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle (all CPUs, since boot)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def postgres_cpu(url: str, name: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL process that works for ``name`` (its backends and the
    server's auxiliary processes: WAL writer, checkpointer, autovacuum, …)."""
    with psycopg.connect(url, autocommit=True) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                " AND (datname = %s OR backend_type <> 'client backend')",
                (name,),
            )
        ]
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):  # gone, or not on this machine
            out[pid] = cpu_seconds(pid)
    return out


def pg_counters(url: str, name: str) -> dict[str, int]:
    """Transaction counters of database ``name``, and the sequential scans of the two tables
    ingest reads (``url`` must be a connection to that database)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, xact_rollback, deadlocks FROM pg_stat_database WHERE datname = %s",
            (name,),
        ).fetchone()
        tables = conn.execute(
            "SELECT relname, seq_scan, seq_tup_read FROM pg_stat_user_tables"
            " WHERE relname IN ('metrics', 'devices')"
        ).fetchall()
        metrics = conn.execute("SELECT count(*) FROM metrics").fetchone()
    assert row is not None and metrics is not None
    out = {"commits": row[0], "rollbacks": row[1], "deadlocks": row[2], "metrics_rows": metrics[0]}
    for name, scans, rows in tables:
        out[f"{name}_seq_scans"], out[f"{name}_seq_rows"] = scans, rows
    return out


def server_log(url: str) -> Path | None:
    """PostgreSQL's log file, when it is on this machine and readable (else None)."""
    with psycopg.connect(url, autocommit=True) as conn:
        current = conn.execute("SELECT pg_current_logfile()").fetchone()
        data = conn.execute("SHOW data_directory").fetchone()
        cluster = conn.execute("SHOW cluster_name").fetchone()
    candidates = []
    if current and current[0] and data:
        candidates.append(Path(data[0]) / current[0])
    if cluster and cluster[0]:  # Debian: /var/log/postgresql/postgresql-15-main.log
        debian = f"postgresql-{cluster[0].replace('/', '-')}.log"
        candidates.append(Path("/var/log/postgresql") / debian)
    for path in candidates:
        with contextlib.suppress(OSError), open(path, "rb"):
            return path
    return None


def log_offset(log: Path | None) -> int:
    return log.stat().st_size if log is not None else 0


def conflicts_logged(log: Path | None, offset: int, name: str) -> dict[str, int] | None:
    """Serialization failures and deadlocks the server logged for ``name`` since ``offset``."""
    if log is None:
        return None
    with open(log, "rb") as source:
        source.seek(offset)
        text = source.read().decode(errors="replace")
    tag = f"@{name} ERROR:  "
    return {
        "serialization_failures": text.count(tag + "could not serialize access"),
        "deadlocks": text.count(tag + "deadlock detected"),
    }


@dataclass
class Snapshot:
    at: float
    relay: list[float]
    postgres: dict[int, float]
    machine: float

    @classmethod
    def take(cls, relays: list[Relay], url: str, name: str) -> Snapshot:
        return cls(
            time.time(),
            [cpu_seconds(r.pid) for r in relays],
            postgres_cpu(url, name),
            machine_busy_seconds(),
        )


# -- one measured phase ----------------------------------------------------------------------


def run_loadgens(
    relays: list[Relay],
    tokens: Path,
    count: int,
    batch: int,
    prefix: str,
    timestamp: float,
    url: str,
    name: str,
    log: Path | None = None,
) -> dict[str, Any]:
    """N load generators at once, one per relay, ``count`` metrics and CLIENTS clients in all."""
    n = len(relays)
    clients = max(1, CLIENTS // n)
    shares = [count // n + (1 if i < count % n else 0) for i in range(n)]
    # Long enough for every load generator to start and encode its bodies before the clock.
    start_at = time.time() + 1.5 + max(shares) / 40_000
    processes = []
    for i, (relay, share) in enumerate(zip(relays, shares, strict=True)):
        args = ["--url", relay.url, "--key", APP_KEY, "--tokens", str(tokens)]
        args += ["--count", str(share), "--batch", str(batch), "--clients", str(clients)]
        args += ["--prefix", f"{prefix}-{i}", "--timestamp", repr(timestamp)]
        args += ["--start-at", repr(start_at)]
        processes.append(
            subprocess.Popen(
                [PY, "-m", "bench.loadgen", "metrics", *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPO,
            )
        )
    try:
        time.sleep(max(0.0, start_at - time.time()))
        counters0 = pg_counters(url, name)
        offset = log_offset(log)
        before = Snapshot.take(relays, url, name)
        results = []
        for process in processes:
            out, err = process.communicate(timeout=3600)
            if process.returncode != 0:
                raise RuntimeError(f"load generator failed ({process.returncode}):\n{err[-3000:]}")
            results.append(json.loads(out.strip().splitlines()[-1]))
        after = Snapshot.take(relays, url, name)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    time.sleep(1.5)  # backends report their transaction counts at most once a second
    counters1 = pg_counters(url, name)
    logged = conflicts_logged(log, offset, name)

    start = min(r["wall_start"] for r in results)
    wall = max(r["wall_end"] for r in results) - start
    statuses: dict[str, int] = {}
    for r in results:
        for status, number in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + number
    loadgen_cpu = sum(r["client_cpu_util"] * r["elapsed"] for r in results)
    relay_cpu = sum(a - b for a, b in zip(after.relay, before.relay, strict=True))
    pg_cpu = sum(cpu - before.postgres.get(pid, 0.0) for pid, cpu in after.postgres.items())
    busy = after.machine - before.machine
    span = after.at - before.at  # the CPU window (a little longer than the load's wall time)
    errors = [e for r in results for e in r["errors"]]
    return {
        "processes": n,
        "clients_each": clients,
        "count": count,
        "batch": batch,
        "wall": wall,
        "start_skew": max(r["wall_start"] for r in results) - start,
        "requests": sum(r["requests"] for r in results),
        "accepted": sum(r["accepted"] for r in results),
        "duplicates": sum(r["duplicates"] for r in results),
        "rejected": sum(r["rejected"] for r in results),
        "statuses": statuses,
        "ok_requests": sum(v for k, v in statuses.items() if int(k) < 300),
        "errors": errors,
        "conflict_503s": sum(1 for e in errors if "write conflicts" in e),
        "p50_ms": max(r["p50_ms"] for r in results),
        "p99_ms": max(r["p99_ms"] for r in results),
        "commits": counters1["commits"] - counters0["commits"],
        "rollbacks": counters1["rollbacks"] - counters0["rollbacks"],
        "deadlocks": counters1["deadlocks"] - counters0["deadlocks"],
        "metrics_rows_after": counters1["metrics_rows"],
        **{
            key: counters1.get(key, 0) - counters0.get(key, 0)
            for key in ("metrics_seq_scans", "metrics_seq_rows", "devices_seq_scans")
        },
        "serialization_failures": None if logged is None else logged["serialization_failures"],
        "cpu_window": span,
        # cores: CPU seconds per second of the window
        "relay_cores": relay_cpu / span,
        "relay_cores_max": max(a - b for a, b in zip(after.relay, before.relay, strict=True))
        / span,
        "postgres_cores": pg_cpu / span,
        "loadgen_cores": loadgen_cpu / span,
        "busy_cores": busy / span,
        "per_loadgen": results,
    }


def truncate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE metrics, outbox")
        conn.execute("VACUUM ANALYZE")


# -- the benchmark ---------------------------------------------------------------------------


def run(size: str, processes: str = "1,2") -> Report:
    cfg = SIZES[size]
    counts = [int(p) for p in processes.split(",") if p.strip()]
    if not counts or min(counts) < 1:
        raise SystemExit(f"--processes: expected counts like 1,2; got {processes!r}")
    report = Report(f"Scale-out ({size}, PostgreSQL, processes {','.join(map(str, counts))})")
    header(report.name)
    admin = admin_url()
    url = database_url(admin, DATABASE)
    cpus = os.cpu_count() or 1
    recreate_database(admin, DATABASE)
    log = server_log(admin)
    extra = f"pool_size = {POOL_SIZE}\n"
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-out-", dir=data_dir()) as tmp:
        work = Path(tmp)
        setup = work / "setup"
        setup.mkdir()
        config = setup / "relay.toml"
        config.write_text(f'[storage]\nurl = "{url}"\n{extra}', encoding="utf-8")
        relay_cli(config, "migrate")
        relay_cli(config, "keys", "create", "--role", "app", "--value", APP_KEY)

        def relay(where: str) -> Relay:
            (work / where).mkdir()
            return Relay(
                work / "unused.db",
                work / where,
                storage_url=url,
                extra_config=extra,  # still in [storage]: Relay writes that section last
                cpu=None,
            )

        with relay("devices") as one:
            put = loadgen(
                "devices",
                *("--url", one.url, "--key", APP_KEY, "--count", str(cfg["devices"])),
                *("--prefix", DEVICE_PREFIX, "--clients", str(CLIENTS)),
            )
        if put["statuses"].keys() - {"200", "201"}:
            raise RuntimeError(f"registering devices: {put['statuses']} {put['errors']}")
        tokens = work / "tokens.txt"
        tokens.write_text("\n".join(f"{DEVICE_PREFIX}{i:010d}" for i in range(cfg["devices"])))
        ts = time.time() - 60

        for n in counts:
            relays = [relay(f"n{n}-relay{i}") for i in range(n)]
            try:
                for r in relays:
                    r.start()
                phases = {}
                for what, count, batch in (
                    ("warm", cfg["warm"], 100),
                    ("single", cfg["single"], 1),
                    ("batched", cfg["batched"], 100),
                ):
                    phases[what] = run_loadgens(
                        relays, tokens, count, batch, f"{what}{n}", ts, url, DATABASE, log
                    )
                    took = phases[what]["wall"]
                    print(f"  [{_processes(n)}] {what}: {count:,} metrics in {took:.1f} s")
                batched, single = phases["batched"], phases["single"]
            except BaseException:
                for r in relays:
                    if r.process is not None:
                        r.process.kill()
                        r.process.wait()
                        r.process = None
                raise
            for r in relays:
                r.stop()
            truncate(url)
            rounds.append({"processes": n, "batched": batched, "single": single})
            _print_round(report, n, batched, single, cpus)

    _conclude(report, rounds, cpus)
    report.raw = {
        "rounds": rounds,
        "devices": cfg["devices"],
        "register_devices": put,
        "database": DATABASE,
        "pool_size": POOL_SIZE,
        "clients_in_all": CLIENTS,
        "pinning": "none",
        "server_log": str(log) if log else None,
    }
    return report


def _processes(n: int) -> str:
    return f"{n} process{'' if n == 1 else 'es'}"


def _conflicts(phase: dict[str, Any]) -> str:
    failures = phase["serialization_failures"]
    logged = "?" if failures is None else f"{failures}"
    return f"{phase['deadlocks']} deadlocks, {logged} serialization failures"


def _cores(phase: dict[str, Any], cpus: int) -> str:
    other = phase["busy_cores"] - (
        phase["relay_cores"] + phase["postgres_cores"] + phase["loadgen_cores"]
    )
    return (
        f"relay {phase['relay_cores']:.2f}, PostgreSQL {phase['postgres_cores']:.2f}, "
        f"load gen. {phase['loadgen_cores']:.2f}, other {max(other, 0):.2f}; "
        f"busy {phase['busy_cores']:.2f} of {cpus}"
    )


def _print_round(
    report: Report, n: int, batched: dict[str, Any], single: dict[str, Any], cpus: int
) -> None:
    b_rate = batched["accepted"] / batched["wall"]
    s_rate = single["ok_requests"] / single["wall"]
    label = f"postgresql {_processes(n)}"
    report.figure(
        f"{label}: batched",
        fmt_rate(b_rate, "metrics/s"),
        f"{batched['accepted']:,} of {batched['count']:,} in {batched['wall']:.1f} s, "
        f"p50/p99 {batched['p50_ms']:.0f}/{batched['p99_ms']:.0f} ms, "
        f"{batched['commits'] / batched['wall']:,.0f} xact_commit/s, {_conflicts(batched)}",
    )
    report.figure(f"{label}: batched CPU cores", "", _cores(batched, cpus))
    report.figure(
        f"{label}: batched sequential scans",
        f"{batched['metrics_seq_scans']:,} of metrics",
        f"{batched['metrics_seq_rows']:,} rows read; metrics holds"
        f" {batched['metrics_rows_after']:,} rows after; devices scanned"
        f" {batched['devices_seq_scans']:,} times",
    )
    report.figure(
        f"{label}: single",
        fmt_rate(s_rate, "req/s"),
        f"{single['ok_requests']:,} of {single['requests']:,} in {single['wall']:.1f} s, "
        f"p50/p99 {single['p50_ms']:.1f}/{single['p99_ms']:.1f} ms, "
        f"{single['commits'] / single['wall']:,.0f} xact_commit/s, {_conflicts(single)}",
    )
    report.figure(f"{label}: single CPU cores", "", _cores(single, cpus))
    for what, phase in (("batched", batched), ("single", single)):
        bad = {k: v for k, v in phase["statuses"].items() if int(k) >= 300}
        if bad:
            report.note(
                f"{label} {what}: non-2xx answers {bad}"
                f" ({phase['conflict_503s']} of the first {len(phase['errors'])} errors say"
                f" 'too many write conflicts'); first: {phase['errors'][:2]}"
            )
        if phase["start_skew"] > 0.2:
            skew = phase["start_skew"]
            report.note(f"{label} {what}: load generators started {skew:.2f} s apart")


def _limit(phase: dict[str, Any], cpus: int) -> str:
    """Which resource ran out, from the CPU split of one phase."""
    if phase["busy_cores"] >= 0.9 * cpus:
        parts = {
            "relay": phase["relay_cores"],
            "PostgreSQL": phase["postgres_cores"],
            "the load generators": phase["loadgen_cores"],
        }
        parts["other processes"] = phase["busy_cores"] - sum(parts.values())
        split = ", ".join(f"{k} {v / phase['busy_cores']:.0%}" for k, v in parts.items())
        return f"the {cpus} CPUs are saturated ({split} of the busy time)"
    if phase["deadlocks"] and phase["deadlocks"] >= phase["wall"] / 4:
        return (
            f"lock waits: {phase['deadlocks']} deadlocks between relay processes, each found"
            " only after PostgreSQL's deadlock_timeout"
        )
    if phase["relay_cores_max"] >= 0.9:
        return "a relay process is CPU-bound (one core: its event loop)"
    return "no CPU is saturated: waits (commits, round trips, conflicts) bound it"


def _conclude(report: Report, rounds: list[dict[str, Any]], cpus: int) -> None:
    first = rounds[0]
    base_b = first["batched"]["accepted"] / first["batched"]["wall"]
    base_s = first["single"]["ok_requests"] / first["single"]["wall"]
    for r in rounds[1:]:
        b = r["batched"]["accepted"] / r["batched"]["wall"] / base_b
        s = r["single"]["ok_requests"] / r["single"]["wall"] / base_s
        report.figure(
            f"ratio {r['processes']}/{first['processes']} processes",
            f"batched x{b:.2f}",
            f"single x{s:.2f}",
        )
    for r in rounds:
        for what in ("batched", "single"):
            report.note(f"{_processes(r['processes'])}, {what}: {_limit(r[what], cpus)}")
    report.note(
        f"nothing pinned: relay, {CLIENTS} load-generator clients in all (split evenly between"
        f" one load generator per relay) and PostgreSQL share the machine's {cpus} CPUs, so"
        " the figures measure this machine, not how far relay alone scales"
    )
    lost = [
        f"{_processes(r['processes'])} {what}"
        for r in rounds
        for what in ("batched", "single")
        if r[what]["ok_requests"] != r[what]["requests"]
        or (what == "batched" and r[what]["accepted"] != r[what]["count"])
    ]
    report.target(
        "every metric committed (no 503 from write conflicts)",
        not lost,
        "all" if not lost else "missing in " + ", ".join(lost),
    )
