"""Forwarding: time to deliver N queued facts to a local Customer.io stand-in, without loss.

1. relay (CPU 0, forwarding disabled: no credentials) receives the facts through its API from
   the load generator (CPU 1): identifies, device registrations, events and delivery
   metrics (`bench.workload.Facts`); its outbox then holds exactly N operations.
2. The stand-in (`bench.standin`, CPU 1, HTTPS with a `trustme` certificate) starts; relay
   restarts with credentials and drains the outbox (default settings: 100 requests/s at
   most, v2 batches of up to 1,000 operations / 500 KB). Measured: first request's arrival
   to the last answer at the stand-in, and zero loss (every operation accepted, the outbox
   empty, no dead letters).
3. Baselines, same facts, same stand-in, from CPU 0 where relay ran: (a) the official
   ``customerio`` client, one call per fact; (b) ``segment-analytics-python`` batching to the
   Pipelines endpoint (`bench.sdk_clients`).

Targets: relay ≥ 20x faster than (a), ≥ 2x faster than (b), zero loss.
"""

from __future__ import annotations

import sqlite3
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import trustme

from bench.common import (
    APP_KEY,
    LOAD_CPU,
    PY,
    RELAY_CPU,
    Profiler,
    Relay,
    Report,
    cpu_seconds,
    data_dir,
    free_port,
    header,
    http,
    loadgen,
    pinned,
    print_profile,
    run_json,
    wait_ready,
)
from bench.generate import Spec, generate
from bench.standin import API_KEY, SITE_ID

SIZES = {"smoke": 400, "quick": 10_000, "full": 100_000}


def run(size: str, profile: bool = False) -> Report:
    total = SIZES[size]
    report = Report(f"Forwarding ({size})")
    header(report.name)
    with tempfile.TemporaryDirectory(prefix="bench-forward-", dir=data_dir()) as tmp:
        work = Path(tmp)
        db = work / "relay.db"
        generate(db, Spec(0, 0), quiet=True)
        ts = time.time() - 60

        with Relay(db, work) as relay:
            loaded = loadgen(
                "facts",
                "--url",
                relay.url,
                "--key",
                APP_KEY,
                "--count",
                str(total),
                "--timestamp",
                str(ts),
                "--clients",
                "16",
            )
        if loaded["failed"]:
            raise RuntimeError(f"loading facts failed: {loaded['errors']}")
        queued = _outbox(db)["pending"]
        report.figure(
            "facts loaded through relay's API",
            f"{total:,}",
            f"{loaded['elapsed']:.1f} s; outbox holds {queued:,} operations",
        )

        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(work / "ca.pem"))
        ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
            str(work / "server.pem")
        )
        context = ssl.create_default_context(cafile=str(work / "ca.pem"))
        port = free_port()
        url = f"https://127.0.0.1:{port}"
        log = work / "standin.log"
        with open(log, "wb") as sink:
            standin = subprocess.Popen(
                pinned(
                    LOAD_CPU,
                    [
                        PY,
                        "-m",
                        "bench.standin",
                        "--port",
                        str(port),
                        "--cert",
                        str(work / "server.pem"),
                        "--key",
                        str(work / "server.pem"),
                    ],
                ),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_ready(url + "/_bench/stats", standin, log, context)

            def stats() -> dict:
                return http("GET", url + "/_bench/stats", context=context)[1]

            # -- relay drains its outbox ---------------------------------------------------
            config = (
                f'[customerio]\nsite_id = "{SITE_ID}"\napi_key = "{API_KEY}"\ntrack_url = "{url}"\n'
            )
            cpu_standin = cpu_seconds(standin.pid)
            spawned = time.monotonic()
            relay = Relay(db, work, config, env={"SSL_CERT_FILE": str(work / "ca.pem")})
            with relay:
                profiler = None
                if profile:
                    out = data_dir() / "results" / f"forward-{size}.pyspy.txt"
                    out.parent.mkdir(exist_ok=True)
                    profiler = Profiler(relay.pid, out)
                deadline = time.monotonic() + 600
                while (now := stats())["accepted"] < queued and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(0.3)  # let the last settle commit before stopping
                if profiler:
                    profiler.stop()
                    print_profile(report, profiler)
            relay_stats = stats()
            relay_stats["standin_cpu"] = cpu_seconds(standin.pid) - cpu_standin
            left = _outbox(db)
            relay_s = relay_stats["last"] - relay_stats["first"]
            relay_total_s = relay_stats["last"] - spawned
            del now

            env = {"REQUESTS_CA_BUNDLE": str(work / "ca.pem")}

            def sdk_baseline(client: str) -> tuple[dict, dict, float]:
                """One SDK (bench/sdk_clients.py) sends every fact to the freshly reset
                stand-in: its own result, the stand-in's stats, seconds first → last."""
                http("POST", url + "/_bench/reset", {}, context=context)
                cpu_before = cpu_seconds(standin.pid)
                command = [PY, "-m", "bench.sdk_clients", client, "--url", url]
                command += ["--facts", str(total), "--timestamp", str(ts)]
                result = run_json(pinned(RELAY_CPU, command), env=env)
                got = stats()
                got["standin_cpu"] = cpu_seconds(standin.pid) - cpu_before
                return result, got, got["last"] - got["first"]

            # (a) the customerio client, one call per fact; (b) segment-analytics-python
            # batching to Pipelines
            cio, cio_stats, cio_s = sdk_baseline("customerio")
            seg, seg_stats, seg_s = sdk_baseline("segment")
        finally:
            standin.terminate()
            standin.wait()

    requests_made = relay_stats["requests"]
    report.figure(
        "relay: delivery time (first request → last answer)",
        f"{relay_s:.2f} s",
        f"{relay_stats['accepted']:,} ops in {requests_made} requests; "
        f"{relay_total_s:.2f} s from process start",
    )
    report.figure("relay: operations/s", f"{relay_stats['accepted'] / relay_s:,.0f} /s")
    report.figure(
        "(a) customerio client, one call per fact",
        f"{cio_s:.2f} s",
        f"{cio_stats['accepted']:,} ops; relay is {cio_s / relay_s:.1f}x faster",
    )
    report.figure(
        "(b) segment-analytics-python, batched",
        f"{seg_s:.2f} s",
        f"{seg_stats['accepted']:,} ops in {seg_stats['requests']} requests; "
        f"relay is {seg_s / relay_s:.1f}x faster",
    )
    report.figure(
        "stand-in CPU busy: relay / (a) / (b)",
        f"{relay_stats['standin_cpu']:.2f} / {cio_stats['standin_cpu']:.2f} / "
        f"{seg_stats['standin_cpu']:.2f} s",
        "the stand-in's own work (TLS, JSON parse, per-operation size check, recording)",
    )
    report.figure("(b) segment client wall time (first call → flush)", f"{seg['elapsed']:.2f} s")
    lost = (
        queued != total
        or relay_stats["accepted"] != total
        or left["pending"]
        or left["dead"]
        or relay_stats["invalid"]
    )
    report.target("≥ 20x the customerio client", cio_s / relay_s >= 20, f"{cio_s / relay_s:.1f}x")
    report.target("≥ 2x segment-analytics-python", seg_s / relay_s >= 2, f"{seg_s / relay_s:.1f}x")
    report.target(
        "zero loss",
        not lost,
        f"queued {queued:,}, accepted {relay_stats['accepted']:,}, outbox left "
        f"{left['pending']} pending / {left['dead']} dead, "
        f"{relay_stats['invalid']} rejected requests",
    )
    for name, result, st in (("customerio", cio, cio_stats), ("segment", seg, seg_stats)):
        if result["failures"] or st["accepted"] != total:
            report.note(f"{name} baseline lost facts: {result} {st}")
    report.raw |= {
        "relay": relay_stats,
        "customerio": [cio, cio_stats],
        "segment": [seg, seg_stats],
        "loaded": loaded,
    }
    return report


def _outbox(db: Path) -> dict:
    conn = sqlite3.connect(db)
    counts = dict(conn.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())
    conn.close()
    return {"pending": counts.get("pending", 0), "dead": counts.get("dead", 0)}
