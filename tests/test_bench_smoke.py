"""Each benchmark runs end to end at tiny sizes (``--smoke``) and prints its figures.

No timing is asserted: benchmarks never decide CI's pass/fail. They need the SDKs of the
forwarding baselines and trustme (in the ``test`` and ``bench`` extras) and the ``sqlite3``
CLI; without them these skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.support import REPO

for module in ("customerio.track", "segment.analytics", "trustme"):
    pytest.importorskip(module, reason="benchmark extras not installed: pip install -e '.[bench]'")

pytestmark = [
    pytest.mark.skipif(
        shutil.which("sqlite3") is None or not sys.platform.startswith("linux"),
        reason="the benchmarks need Linux (/proc) and the sqlite3 CLI",
    ),
    pytest.mark.sqlite_only,  # each benchmark sets up its own databases
]

# What each benchmark must print (a figure line and its target lines).
EXPECTED = {
    "ingest": ["batched: metrics/s", "single: p50 / p99", "TARGET"],
    "forward": ["relay: delivery time", "(a) customerio client", "(b) segment-analytics", "TARGET"],
    "export": ["push_engaged: rows", "unreachable: rows", "TARGET"],
    "memory": ["relay RSS after the ingest", "TARGET"],
    "scaling": ["stored: ingest", "TARGET"],
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("benchmark", sorted(EXPECTED))
def test_benchmark_smoke_run_completes(benchmark: str, tmp_path) -> None:
    _prints(["bench", benchmark, "--smoke"], EXPECTED[benchmark], tmp_path)


def _prints(module_and_args: list[str], expected: list[str], data: object) -> None:
    """``python -m`` the benchmark (its data in ``data``); it succeeds and prints each of
    ``expected``."""
    done = subprocess.run(
        [sys.executable, "-m", *module_and_args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
        env={**os.environ, "RELAY_BENCH_DATA": str(data)},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for text in expected:
        assert text in done.stdout, f"{text!r} missing from:\n{done.stdout[-3000:]}"


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "mode", ["--dedup-only", "--outbox", "--all-writes", "--journal-fold", "--deferred-indexes"]
)
def test_each_ceiling_mode_runs_and_prints_its_rate(
    mode: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_BENCH_DATA", str(tmp_path))
    from bench.generate import Spec, active_tokens, dataset, working_copy

    source, _meta = dataset("ceiling-smoke", Spec(200, 1_000))
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("\n".join(active_tokens(source)))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.sqlite_ceiling",
            "--db",
            str(working_copy(source, tmp_path / "copy.db")),
            "--tokens",
            str(tokens),
            "--count",
            "500",
            "--tx",
            "100",
            "--timestamp",
            "1700000000",
            mode,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"rows_per_s"' in done.stdout.strip().splitlines()[-1]


# What each cost tool is run with at smoke size, and what it must print.
COST_TOOLS = {
    "bench.writer_cost": (["--per-commit", "7,100", "--metrics", "700"], ["7 metrics a commit"]),
    "bench.request_cost": (
        ["--requests", "1000"],
        ["hello:", "refused:", "rejected:", "stored:", "batched:"],
    ),
    "bench.alternate": (
        ["a=.,b=.", "--burst", "200", "--bursts", "2"],
        ["a: stored", "b: stored", "CPU a request, a / b"],
    ),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("tool", sorted(COST_TOOLS))
def test_each_cost_tool_runs_and_prints_its_figures(tool: str, tmp_path) -> None:
    args, expected = COST_TOOLS[tool]
    _prints([tool, "--size", "smoke", *args], expected, tmp_path)
