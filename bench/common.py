"""What every benchmark shares: processes pinned to CPUs, relay as a subprocess, RSS, reports."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PY = sys.executable
REPO = Path(__file__).resolve().parent.parent
RELAY_CPU = 0
LOAD_CPU = 1
APP_KEY = "bench-app-key-0001"
ADMIN_KEY = "bench-admin-key-0001"


def data_dir() -> Path:
    """Where generated datasets are cached between runs (outside the repository)."""
    path = Path(os.environ.get("RELAY_BENCH_DATA", Path(tempfile.gettempdir()) / "relay-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def pinned(cpu: int, command: list[str]) -> list[str]:
    """``command`` pinned to one CPU with taskset, when there is more than one and taskset."""
    if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(cpu), *command]


def check_free_disk(path: Path, needed: int, what: str) -> None:
    """Refuse to start writing ``needed`` bytes unless twice that is free."""
    free = shutil.disk_usage(path).free
    if free < 2 * needed:
        raise SystemExit(
            f"{what} needs about {needed / 1e9:.1f} GB and {path} has {free / 1e9:.1f} GB free;"
            " use --size quick or set RELAY_BENCH_DATA to a bigger disk"
        )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(
    method: str,
    url: str,
    body: Any = None,
    key: str | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = 30,
) -> tuple[int, Any]:
    """A small synchronous JSON request (for the orchestrator, never for measurements)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def wait_ready(
    url: str, process: subprocess.Popen[bytes], log: Path, context: ssl.SSLContext | None = None
) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not become ready:\n{log.read_text()[-3000:]}")


@dataclass
class Relay:
    """``python -m relay serve`` on CPU 0 with its own config, database and log file.

    ``storage_url`` (e.g. a ``postgresql://`` URL) replaces the ``sqlite:///{db}`` URL;
    ``cpu=None`` leaves the process unpinned.
    """

    db: Path
    workdir: Path
    extra_config: str = ""
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    storage_url: str = ""
    cpu: int | None = RELAY_CPU
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Relay:
        self.port = free_port()
        config = self.workdir / "relay.toml"
        config.write_text(
            f'[server]\nlisten = "127.0.0.1:{self.port}"\nshutdown_timeout_seconds = 60\n\n'
            f'[storage]\nurl = "{self.storage_url or f"sqlite:///{self.db}"}"\n\n'
            f"{self.extra_config}",
            encoding="utf-8",
        )
        log = self.workdir / "relay.log"
        command = [PY, "-m", "relay", "serve", "--config", str(config)]
        with open(log, "ab") as sink:
            self.process = subprocess.Popen(
                command if self.cpu is None else pinned(self.cpu, command),
                cwd=self.workdir,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
            )
        wait_ready(self.url + "/readyz", self.process, log)
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise RuntimeError("relay did not stop within 120 s of SIGTERM") from None
        self.process = None
        if code != 0:
            log = (self.workdir / "relay.log").read_text()[-3000:]
            raise RuntimeError(f"relay exited {code}:\n{log}")

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None and self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
        self.stop()


def _status_kb(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field_name} in /proc/{pid}/status")


def rss(pid: int) -> int:
    return _status_kb(pid, "VmRSS")


def peak_rss(pid: int) -> int:
    """The process's peak RSS since it started or since the last `reset_peak_rss`."""
    return _status_kb(pid, "VmHWM")


def reset_peak_rss(pid: int) -> bool:
    """Restart the peak-RSS watermark (Linux ``clear_refs`` 5); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def user_system_seconds(stat: Path) -> tuple[float, float]:
    """(user, system) CPU seconds from a ``/proc/PID/stat`` or ``/proc/PID/task/TID/stat``."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    return sum(user_system_seconds(Path(f"/proc/{pid}/stat")))


@contextlib.contextmanager
def hello_world(work: Path) -> Iterator[tuple[str, int]]:
    """`bench.hello` served on relay's CPU until the block ends: its URL and pid (its log in
    ``work``)."""
    port, log = free_port(), work / "hello.log"
    with open(log, "wb") as sink:
        command = pinned(RELAY_CPU, [PY, "-m", "bench.hello", "--port", str(port)])
        hello = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url + "/readyz", hello, log)
        yield url, hello.pid
    finally:
        hello.terminate()
        hello.wait()


def run_json(command: list[str], timeout: float = 1800, env: dict[str, str] | None = None) -> Any:
    """Run a helper process; its last stdout line is its JSON result."""
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-4000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def warm_page_cache(path: Path) -> float:
    """Read a file once so that later reads come from memory; seconds it took."""
    started = time.perf_counter()
    with open(path, "rb") as source:
        while source.read(16 << 20):
            pass
    return time.perf_counter() - started


def loadgen(*args: str, timeout: float = 1800) -> Any:
    """The load generator (bench/loadgen.py) pinned to CPU 1."""
    return run_json(pinned(LOAD_CPU, [PY, "-m", "bench.loadgen", *args]), timeout=timeout)


def send_metrics(
    url: str,
    tokens: Path,
    count: int,
    prefix: str,
    *,
    batch: int = 100,
    clients: int = 16,
    timestamp: float | None = None,
) -> Any:
    """POST ``count`` metrics (`bench.workload.metric_item`) from the load generator."""
    args = ["--url", url, "--key", APP_KEY, "--tokens", str(tokens), "--count", str(count)]
    args += ["--batch", str(batch), "--clients", str(clients), "--prefix", prefix]
    if timestamp is not None:
        args += ["--timestamp", str(timestamp)]
    return loadgen("metrics", *args)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def machine() -> dict[str, str]:
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    sqlite_version = subprocess.run(
        ["sqlite3", "--version"], capture_output=True, text=True, check=False
    ).stdout.split(" ")[0]
    import sqlite3

    return {
        "cpus": str(os.cpu_count()),
        "cpu_model": model,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "sqlite (python)": sqlite3.sqlite_version,
        "sqlite3 CLI": sqlite_version or "absent",
        "kernel": platform.release(),
    }


@dataclass
class Report:
    """Figures, ratios and targets of one benchmark; printed as a table, saved as JSON."""

    name: str
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # what, relay, baseline/ratio
    targets: list[tuple[str, bool, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def figure(self, what: str, value: str, comparison: str = "") -> None:
        self.rows.append((what, value, comparison))
        print(f"  {what:<46} {value:>22}  {comparison}", flush=True)

    def target(self, what: str, ok: bool, detail: str) -> None:
        self.targets.append((what, ok, detail))
        print(f"  TARGET {'HOLDS' if ok else 'FAILS'}: {what} — {detail}", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def markdown(self) -> str:
        lines = [f"### {self.name}", "", "| figure | value | baseline / ratio |", "|---|---:|---|"]
        lines += [f"| {w} | {v} | {c} |" for w, v, c in self.rows]
        if self.targets:
            lines += ["", "| target | holds | measured |", "|---|---|---|"]
            lines += [f"| {w} | {'yes' if ok else '**no**'} | {d} |" for w, ok, d in self.targets]
        lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def save(self, size: str) -> Path:
        out = data_dir() / "results"
        out.mkdir(exist_ok=True)
        path = out / f"{self.name.split()[0].lower()}-{size}.json"
        path.write_text(
            json.dumps(
                {
                    "name": self.name,
                    "size": size,
                    "rows": self.rows,
                    "targets": self.targets,
                    "notes": self.notes,
                    "raw": self.raw,
                    "machine": machine(),
                    "at": time.strftime("%Y-%m-%d %H:%M:%S"),
                },
                indent=2,
            )
        )
        (out / f"{self.name.split()[0].lower()}-{size}.md").write_text(self.markdown())
        return path


def header(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


def mb(n: float) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def fmt_rate(n: float, unit: str = "/s") -> str:
    return f"{n:,.0f} {unit}"


class Profiler:
    """py-spy sampling a running process until `stop`; `top` summarises where time went."""

    def __init__(self, pid: int, out: Path, rate: int = 200) -> None:
        self.out = out
        self.process = subprocess.Popen(
            [
                str(Path(PY).with_name("py-spy")),
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--threads",
                "--nonblocking",
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)

    def top(self, n: int = 15) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """(self time, inclusive time) shares of the busiest frames, idle waiting excluded."""
        own: dict[str, int] = {}
        inclusive: dict[str, int] = {}
        total = 0
        for line in self.out.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            frames = [f for f in stack.split(";") if f and not f.startswith("thread ")]
            if not frames or _idle(frames[-1]):
                continue
            count = int(count_text)
            total += count
            own[frames[-1]] = own.get(frames[-1], 0) + count
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + count
        rank = sorted(own.items(), key=lambda kv: -kv[1])[:n]
        incl = [kv for kv in sorted(inclusive.items(), key=lambda kv: -kv[1]) if "relay" in kv[0]]
        return (
            [(f, c / total) for f, c in rank],
            [(f, c / total) for f, c in incl[:n]],
        )


def _idle(frame: str) -> bool:
    return any(
        word in frame
        for word in (
            "select (selectors",
            "wait (threading",
            "_worker (concurrent",
            "poll (",
            "_connection_worker_thread (aiosqlite/core.py:59)",  # SimpleQueue.get: idle
        )
    )


def print_profile(report: Report, profiler: Profiler, phase: str = "") -> None:
    own, inclusive = profiler.top()
    report.raw[f"profile {phase}".strip()] = {"self": own, "inclusive": inclusive}
    report.note(f"py-spy raw profile {phase} (collapsed stacks): {profiler.out}")
    print(f"  py-spy on relay {phase}, share of busy samples — self time:")
    for frame, share in own:
        print(f"    {share:6.1%}  {frame}")
    print("  inclusive (relay frames):")
    for frame, share in inclusive:
        print(f"    {share:6.1%}  {frame}")
