"""Numbered, forward-only SQL migrations, one chain per engine (``<engine>/migrations/``).

Never edit a migration that has shipped: add the next number, in both chains from 0010 on
(tests/test_migrations.py checks they end at the same version).
"""

from __future__ import annotations

from importlib import resources


def bundled(package: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of every ``NNNN_name.sql`` in ``package``'s migrations, in order."""
    found = []
    for entry in resources.files(package).joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            number, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append((int(number), name, entry.read_text(encoding="utf-8")))
    return sorted(found)
