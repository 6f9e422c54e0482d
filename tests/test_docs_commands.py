"""The README's commands run as written. Every ```sh block preceded by a ``doc-test`` comment
runs, in document order, in one bash session (so ``$ADMIN`` carries from block to block), with
``set -euo pipefail``, from a fresh directory holding only this checkout's ``.venv`` — as a
reader who just ran ``scripts/serve`` would, with relay serving on the README's port."""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO

MARKER = "<!-- doc-test"
README_PORT = 8080  # the port the README's curl commands name
# What the README's drop-in section says a reader already has: the keys their clients ship.
READER_ENV = {
    "CDP_API_KEY": "cdp-key-shipped-in-the-app",
    "TRACK_API_KEY": "track-key-of-the-backend",
}


def marked_blocks(markdown: str) -> list[str]:
    """The ```sh blocks that follow a doc-test marker line."""
    pattern = re.compile(r"^<!-- doc-test[^\n]*-->\n```sh\n(.*?)^```", re.S | re.M)
    return pattern.findall(markdown)


@pytest.fixture
def reader_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory with only ``.venv`` (this checkout's), and relay serving from it on 8080."""
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [str(tmp_path / ".venv" / "bin" / "relay"), "serve"],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("RELAY_")},
    )
    try:
        wait_ready(server, tmp_path / "serve.log")
        yield tmp_path
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def wait_ready(server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"relay serve exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{README_PORT}/readyz", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"relay did not become ready on port {README_PORT}")


def test_the_readme_marks_its_runnable_blocks() -> None:
    assert len(marked_blocks((REPO / "README.md").read_text(encoding="utf-8"))) >= 4


def test_the_readme_commands_run_as_written(reader_dir: Path) -> None:
    blocks = marked_blocks((REPO / "README.md").read_text(encoding="utf-8"))
    script = "set -euo pipefail\n" + "\n".join(blocks)
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=reader_dir,
        capture_output=True,
        text=True,
        timeout=120,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}, **READER_ENV},
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert '"status":"active"' in result.stdout  # the walk-through's registration answered
    assert (reader_dir / "out.csv").read_text().startswith("customer_id,")
