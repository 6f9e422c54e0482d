"""Memory: relay's RSS with N registered devices, after a full ingest.

The dataset holds N devices (1,000,000 at ``full``) of ~0.74 N profiles. relay (CPU 0) then
registers more devices through ``PUT /v1/devices/{token}`` and receives one metric for every
active device (batches of 100, 16 clients on CPU 1), so every device row has been looked up
and updated. Reported: RSS at start, after the ingest, and the process's peak (VmHWM).
Target: under 250 MB.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import (
    APP_KEY,
    Relay,
    Report,
    data_dir,
    fmt_rate,
    header,
    loadgen,
    mb,
    peak_rss,
    rss,
    send_metrics,
)
from bench.generate import Spec, active_tokens, dataset, working_copy

SIZES = {
    "smoke": (5_000, 500),
    "quick": (100_000, 10_000),
    "full": (1_000_000, 50_000),
}
LIMIT = 250 * 1024 * 1024


def run(size: str) -> Report:
    devices, registrations = SIZES[size]
    report = Report(f"Memory ({size}: {devices:,} devices)")
    header(report.name)
    spec = Spec(devices * 100 // 135, devices, devices=devices)
    source, meta = dataset(f"memory-{size}", spec)
    with tempfile.TemporaryDirectory(prefix="bench-memory-", dir=data_dir()) as tmp:
        work = Path(tmp)
        tokens = work / "tokens.txt"
        listed = active_tokens(source)
        tokens.write_text("\n".join(listed))
        db = working_copy(source, work / "relay.db")
        with Relay(db, work) as relay:
            at_start = rss(relay.pid)
            put = loadgen(
                "devices",
                "--url",
                relay.url,
                "--key",
                APP_KEY,
                "--count",
                str(registrations),
                "--prefix",
                "memdev",
                "--clients",
                "16",
            )
            got = send_metrics(relay.url, tokens, len(listed), "mem", timestamp=time.time() - 60)
            time.sleep(1)
            after = rss(relay.pid)
            peak = peak_rss(relay.pid)
    report.figure(
        "devices in the database",
        f"{meta['devices'] + registrations:,}",
        f"{registrations:,} registered through the API at {fmt_rate(put['requests_per_s'])}",
    )
    report.figure(
        "metrics ingested (one per active device)",
        f"{got['accepted']:,}",
        f"{fmt_rate(got['accepted'] / got['elapsed'])}",
    )
    report.figure("relay RSS at start", mb(at_start))
    report.figure("relay RSS after the ingest", mb(after))
    report.figure("relay peak RSS (VmHWM)", mb(peak))
    report.target(
        "RSS under 250 MB", after < LIMIT and peak < LIMIT, f"after {mb(after)}, peak {mb(peak)}"
    )
    report.raw = {"put": put, "metrics": got, "rss": [at_start, after, peak], "meta": meta}
    return report
