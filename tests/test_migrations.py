"""Both engines' migration chains describe one schema."""

from __future__ import annotations

from relay.store.postgres import migrate as postgres_migrate
from relay.store.sqlite import migrate as sqlite_migrate


def test_both_chains_end_at_the_same_version() -> None:
    sqlite_versions = [v for v, _, _ in sqlite_migrate.available_migrations()]
    postgres_versions = [v for v, _, _ in postgres_migrate.available_migrations()]
    assert sqlite_versions[-1] == postgres_versions[-1]


def test_every_change_after_the_postgresql_baseline_is_in_both_chains() -> None:
    sqlite_chain = {v: name for v, name, _ in sqlite_migrate.available_migrations()}
    postgres_chain = {v: name for v, name, _ in postgres_migrate.available_migrations()}
    baseline = min(postgres_chain)
    assert {v: n for v, n in sqlite_chain.items() if v > baseline} == {
        v: n for v, n in postgres_chain.items() if v > baseline
    }
