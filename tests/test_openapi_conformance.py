"""relay answers as its /openapi.json says: schemathesis generates requests from the served
document (valid ones and ones that break its rules) and checks every answer against it.

The runs are seeded, so a failure replays; schemathesis prints each failing request as a curl
command. What is left out, and why:
- ``positive_data_acceptance``: some rules span fields (a merge's primary and secondary must
  differ, a test push takes exactly one of token and customer_id), which a schema cannot say.
- ``negative_data_rejection`` on /v1/metrics and /v1/events: they refuse bad items one by one
  in a 200 that names each (API.md), so a schema-breaking item is not a 4xx.
- ``allow_header_conformance``: /v1/profiles/merge also matches /v1/profiles/{customer_id}, so
  its 405 truthfully allows GET and DELETE (of a profile named "merge").
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from relay.keys import Role
from tests.support import RelayServer

SCHEMATHESIS = Path(sys.executable).with_name("st")
ANSWER_CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)
NATIVE = r"^/(v1|healthz|readyz|metrics|openapi)"
PER_ITEM_INGEST = r"^/v1/(metrics|events)$"


async def schemathesis(
    relay: RelayServer,
    cwd: Path,
    credentials: tuple[str, str],
    paths: str,
    checks: str,
    *more: str,
) -> None:
    """Runs ``st`` on the operations whose path matches ``paths``; fails with its report."""
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "run",
        f"{relay.base_url}/openapi.json",
        *("--seed", "20261207", "--max-examples", "25", "--workers", "1"),
        *("--generation-database", "none", "--no-color"),
        *credentials,
        *("--include-path-regex", paths, "--checks", checks),
        *more,
        cwd=cwd,  # where it keeps its own files
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode(errors="replace")[-30_000:]


async def bearer(relay: RelayServer, role: Role) -> tuple[str, str]:
    return ("--header", f"Authorization: Bearer {await relay.key(role)}")


async def test_native_routes_answer_as_documented(relay: RelayServer, tmp_path: Path) -> None:
    await schemathesis(relay, tmp_path, await bearer(relay, "admin"), NATIVE, ANSWER_CHECKS)


async def test_native_routes_refuse_what_their_schemas_rule_out(
    relay: RelayServer, tmp_path: Path
) -> None:
    checks = "not_a_server_error,negative_data_rejection"
    credentials = await bearer(relay, "admin")
    skipped = ("--exclude-path-regex", PER_ITEM_INGEST)
    await schemathesis(relay, tmp_path, credentials, NATIVE, checks, *skipped)


async def test_track_compatible_routes_answer_as_documented(
    relay: RelayServer, tmp_path: Path
) -> None:
    credentials = ("--auth", f"any-site-id:{await relay.key('server')}")
    await schemathesis(relay, tmp_path, credentials, r"^/(api|push)/", ANSWER_CHECKS)


async def test_pipelines_compatible_routes_answer_as_documented(
    relay: RelayServer, tmp_path: Path
) -> None:
    credentials = ("--auth", f"{await relay.key('server')}:")
    await schemathesis(relay, tmp_path, credentials, r"^/cdp/", ANSWER_CHECKS)
