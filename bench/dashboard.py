"""Dashboard: the server time of every /ui/ page over a generated fleet.

relay (CPU 0) serves a working copy of a generated dataset; the orchestrator logs in with the
bench admin key and loads each page ``ROUNDS`` times, reading relay's own ``Server-Timing``
(the time the page spent in relay) and the client's wall clock. Expensive figures (segment
sizes and their 14-day history, the 30-day charts, the device breakdown) come from snapshots
computed in the background: the first page views wait for nothing, and the bench reports how
long the first snapshots took after start-up.

Sizes: ``full`` is 1,000,000 devices / 20,000,000 metrics (700,000 profiles; ~7 GB to
generate, free disk is checked first); ``quick`` 100,000 / 2,000,000; ``smoke`` tiny.
Target: every page under 300 ms of server time (p95).
"""

from __future__ import annotations

import html
import http.cookiejar
import re
import sqlite3
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from bench.common import ADMIN_KEY, Relay, Report, data_dir, header, percentile
from bench.generate import Spec, dataset, working_copy

SIZES = {
    "smoke": Spec(700, 20_000, devices=1_000),
    "quick": Spec(70_000, 2_000_000, devices=100_000),
    "full": Spec(700_000, 20_000_000, devices=1_000_000),
}
ROUNDS = 20
TARGET_MS = 300.0
SNAPSHOT_TIMEOUT_S = 3600


class Client:
    """A cookie-keeping browser stand-in (urllib), for the orchestrator only."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> tuple[str, float, float]:
        """(body, server ms from Server-Timing, wall ms)."""
        started = time.perf_counter()
        with self.opener.open(self.base + path, timeout=120) as response:
            body = response.read().decode()
            timing = response.headers.get("Server-Timing", "")
        wall = (time.perf_counter() - started) * 1000
        found = re.search(r"dur=([0-9.]+)", timing)
        return body, float(found.group(1)) if found else float("nan"), wall

    def login(self, key: str) -> None:
        form, _, _ = self.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf is not None, form[:500]
        data = urllib.parse.urlencode({"key": key, "csrf": html.unescape(csrf.group(1))})
        with self.opener.open(self.base + "/ui/login", data=data.encode(), timeout=60) as r:
            page = r.read().decode()
        assert 'data-testid="devices-active"' in page or "being computed" in page, page[:800]


def _delivery_id(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    row = conn.execute(
        "SELECT delivery_id FROM metrics WHERE delivery_id IS NOT NULL ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    conn.close()
    return str(row[0]) if row else "none"


def run(size: str) -> Report:
    spec = SIZES[size]
    header(f"dashboard ({size}: {spec.devices:,} devices, {spec.metrics:,} metrics)")
    report = Report(f"Dashboard page times ({size})")
    source, meta = dataset(f"dashboard-{size}", spec)
    with tempfile.TemporaryDirectory(dir=data_dir()) as tmp:
        work = Path(tmp)
        db = working_copy(source, work / "relay.db")
        delivery = _delivery_id(db)
        started = time.monotonic()
        with Relay(db, work) as relay:
            ready = time.monotonic() - started
            client = Client(relay.url)
            client.login(ADMIN_KEY)
            pages = {
                "fleet /ui/": "/ui/",
                "segments /ui/segments": "/ui/segments",
                "delivery /ui/deliveries/{id}": f"/ui/deliveries/{delivery}",
                "test push /ui/test-push": "/ui/test-push",
            }
            cold = {name: client.get(path)[1] for name, path in pages.items()}
            deadline = time.monotonic() + SNAPSHOT_TIMEOUT_S
            while time.monotonic() < deadline:
                bodies = [client.get("/ui/")[0], client.get("/ui/segments")[0]]
                if not any("being computed" in body for body in bodies):
                    break
                time.sleep(2)
            warm_after = time.monotonic() - started - ready
            computed = re.findall(r"computed in ([0-9.]+) s", "".join(bodies))
            report.figure("relay ready after", f"{ready:.1f} s")
            report.figure("first snapshots complete after", f"{warm_after:.0f} s")
            if computed:
                report.figure("slowest snapshot computation", f"{max(map(float, computed)):.1f} s")
            for name, path in pages.items():
                server, wall = [], []
                for _ in range(ROUNDS):
                    _, s, w = client.get(path)
                    server.append(s)
                    wall.append(w)
                p50, p95 = percentile(server, 50), percentile(server, 95)
                report.figure(
                    f"{name} server p50 / p95 / max",
                    f"{p50:.1f} / {p95:.1f} / {max(server):.1f} ms",
                    f"wall p50 {percentile(wall, 50):.1f} ms; first view {cold[name]:.1f} ms",
                )
                report.target(
                    f"{name} under {TARGET_MS:.0f} ms", p95 < TARGET_MS, f"p95 {p95:.1f} ms"
                )
                report.raw[name] = {"server_ms": server, "wall_ms": wall, "cold_ms": cold[name]}
    report.note(
        f"dataset: {spec.devices:,} devices, {spec.profiles:,} profiles, {spec.metrics:,} metrics"
        f" ({meta.get('seconds', '?')} s to generate)"
    )
    return report


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench dashboard")
    parser.add_argument("--size", choices=tuple(SIZES), default="quick")
    args = parser.parse_args(argv)
    report = run(args.size)
    print(f"  results in {report.save(args.size)}")
    return 0 if all(ok for _, ok, _ in report.targets) else 1
