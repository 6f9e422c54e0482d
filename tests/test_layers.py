"""The layers point down only: storage decides nothing and knows no layer above it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import REPO

# What storage may build on: itself, the shared value objects, errors and small utilities.
STORAGE_MAY_IMPORT = (
    "relay.store",
    "relay.models",
    "relay.errors",
    "relay.timeutil",
    "relay.redact",
)


def _imports(path: Path) -> set[str]:
    """The absolute module names ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_storage_imports_no_layer_above_it() -> None:
    above = {
        f"{path.relative_to(REPO)}: {name}"
        for path in (REPO / "relay" / "store").rglob("*.py")
        for name in _imports(path)
        if name.startswith("relay") and not name.startswith(STORAGE_MAY_IMPORT)
    }
    assert not above


def test_the_domain_imports_no_surface_above_it() -> None:
    surfaces = ("relay.api", "relay.compat", "relay.ui", "relay.cli", "relay.app")
    above = {
        f"{path.relative_to(REPO)}: {name}"
        for path in (REPO / "relay" / "domain").rglob("*.py")
        for name in _imports(path)
        if name.startswith(surfaces)
    }
    assert not above


def test_the_production_package_never_imports_the_test_fakes() -> None:
    offenders = {
        f"{path.relative_to(REPO)}: {name}"
        for path in (REPO / "relay").rglob("*.py")
        for name in _imports(path)
        if name.startswith("relay_fakes")
    }
    assert not offenders
