"""``relay segments list|export`` (API.md "CLI"), run as a real subprocess.

The database is prepared through the HTTP API of an in-process relay (the known-answer fleet of
``test_segments``); the CLI then reads the same file through a config that points at it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from relay.settings import EventsSettings
from tests import engines
from tests.support import (
    Api,
    RelayServer,
    free_port,
    make_settings,
    run_cli,
    two_apps,
    write_config,
)
from tests.test_segments import (
    ALIASES,
    AS_OF,
    CATALOGUE,
    PUSH_ENGAGED,
    build_fleet,
    csv_rows,
    csv_table,
    export,
    jsonl_rows,
)

APPS = '\n[[apps]]\nid = "default"\n\n[[apps]]\nid = "other"\n'


@dataclass
class Setup:
    admin: Api
    config: str
    workdir: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--config", self.config, cwd=self.workdir)

    def export(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.cli("segments", "export", *args, "--as-of", str(AS_OF))


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    settings = make_settings(tmp_path, apps=two_apps(), events=EventsSettings(aliases=ALIASES))
    server = RelayServer(settings)
    await server.start()
    await build_fleet(server)
    config = write_config(tmp_path / "relay.toml", tmp_path / "relay.db", free_port(), APPS)
    workdir = tmp_path / "work"
    workdir.mkdir()
    yield Setup(await server.admin_api(), str(config), workdir)
    await server.close()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def members(text: str) -> list[str]:
    return sorted(row["customer_id"] for row in csv_rows(text.encode("utf-8")))


async def test_segments_list_prints_every_segment_with_its_params_as_json(setup: Setup) -> None:
    listed = json.loads(ok(setup.cli("segments", "list")))
    assert {s["name"]: s["params"] for s in listed} == CATALOGUE


async def test_export_to_stdout_matches_the_http_export(setup: Setup) -> None:
    out = ok(setup.export("push_engaged"))  # text mode: line ends read as \n
    assert csv_table(out.encode("utf-8")) == csv_table(await export(setup.admin, "push_engaged"))


async def test_export_jsonl_matches_the_http_export(setup: Setup) -> None:
    out = ok(setup.export("push_engaged", "--format", "jsonl"))
    assert jsonl_rows(out.encode("utf-8")) == jsonl_rows(
        await export(setup.admin, "push_engaged", format="jsonl")
    )


async def test_export_param_sets_a_segment_parameter(setup: Setup) -> None:
    out = ok(setup.export("push_engaged", "--param", "days=30"))
    assert members(out) == sorted([*PUSH_ENGAGED, "delivered-and-opened", "engaged-edge-out"])


async def test_export_as_of_accepts_rfc3339_like_unix_seconds(setup: Setup) -> None:
    rfc3339 = datetime.fromtimestamp(AS_OF, UTC).isoformat().replace("+00:00", "Z")
    out = ok(setup.cli("segments", "export", "push_engaged", "--as-of", rfc3339))
    assert out == ok(setup.export("push_engaged"))


async def test_export_app_selects_the_app(setup: Setup) -> None:
    assert members(ok(setup.export("push_engaged", "--app", "other"))) == ["other-app"]


async def test_export_to_a_file_writes_the_whole_export(setup: Setup) -> None:
    target = setup.workdir / "engaged.csv"
    ok(setup.export("push_engaged", "-o", str(target)))
    assert target.read_bytes() == await export(setup.admin, "push_engaged")


async def test_export_to_a_jsonl_file_writes_json_lines(setup: Setup) -> None:
    target = setup.workdir / "engaged.jsonl"
    ok(setup.export("push_engaged", "-o", str(target)))
    assert target.read_bytes() == await export(setup.admin, "push_engaged", format="jsonl")


async def test_an_explicit_format_wins_over_the_suffix(setup: Setup) -> None:
    target = setup.workdir / "engaged.jsonl"
    ok(setup.export("push_engaged", "--format", "csv", "-o", str(target)))
    assert target.read_bytes() == await export(setup.admin, "push_engaged")


async def test_export_to_a_file_leaves_no_temporary_file(setup: Setup) -> None:
    target = setup.workdir / "engaged.csv"
    ok(setup.export("push_engaged", "-o", str(target)))
    assert sorted(p.name for p in setup.workdir.iterdir()) == ["engaged.csv"]


async def test_export_to_a_file_prints_nothing_on_stdout(setup: Setup) -> None:
    assert ok(setup.export("push_engaged", "-o", str(setup.workdir / "engaged.csv"))) == ""


async def test_export_to_an_existing_file_replaces_it_whole(setup: Setup) -> None:
    target = setup.workdir / "engaged.csv"
    target.write_bytes(b"old contents\n" * 10_000)
    ok(setup.export("push_engaged", "-o", str(target)))
    assert target.read_bytes() == await export(setup.admin, "push_engaged")


def test_a_failed_export_leaves_the_existing_file_untouched(tmp_path: Path) -> None:
    unopenable = tmp_path / "a-directory"
    unopenable.mkdir()
    database = unopenable if engines.engine == "sqlite" else "postgresql://relay@127.0.0.1:1/none"
    config = write_config(tmp_path / "relay.toml", database, free_port())
    workdir = tmp_path / "work"
    workdir.mkdir()
    target = workdir / "engaged.csv"
    target.write_text("previous export\n", encoding="utf-8")
    result = run_cli(
        "segments", "export", "push_engaged", "-o", str(target), "--config", str(config)
    )
    assert result.returncode != 0
    assert target.read_text(encoding="utf-8") == "previous export\n"
    assert sorted(p.name for p in workdir.iterdir()) == ["engaged.csv"]


async def test_export_of_an_unknown_segment_exits_2_naming_the_known_ones(setup: Setup) -> None:
    result = setup.export("nope")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert all(name in result.stderr for name in CATALOGUE), result.stderr


@pytest.mark.parametrize(
    "param", ["bogus=1", "days=abc", "days"], ids=["unknown", "ill-typed", "no-value"]
)
async def test_export_with_a_bad_param_exits_2(setup: Setup, param: str) -> None:
    result = setup.export("push_engaged", "--param", param)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0


async def test_export_with_another_format_exits_2(setup: Setup) -> None:
    assert setup.export("push_engaged", "--format", "xml").returncode == 2


async def test_export_with_an_unknown_app_exits_2(setup: Setup) -> None:
    assert setup.export("push_engaged", "--app", "nope").returncode == 2
