"""``relay health data``: the data-health report (API.md "Data health") as a table."""

from __future__ import annotations

import click

from relay import timeutil
from relay.cli.common import app_option, config_option, echo_json, fail, run_with_store
from relay.health import since_from
from relay.models.health import DataHealth, Lateness
from relay.settings import Settings


@click.group()
def health() -> None:
    """Reports on the health of what relay receives."""


@health.command()
@config_option
@app_option
@click.option("--since", default=None, help="RFC 3339 or unix seconds (default: 24 h ago).")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON (as the API gives).")
def data(settings: Settings, app_id: str, since: str | None, as_json: bool) -> None:
    """Per event and metric: count, lateness p50/p95/p99, plan violations, type drift; then
    unknown names, duplicates and warnings."""
    moment = _since(since)
    plan = settings.tracking_plan.plan
    report = run_with_store(settings, lambda store: store.data_health(app_id, moment, plan))
    if as_json:
        echo_json(report)
    else:
        _print(report)


def _since(raw: str | None) -> float:
    try:
        return since_from(raw, timeutil.now())
    except ValueError as exc:
        fail(f"--since: {exc}", 2)
        raise AssertionError("unreachable") from exc


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.1f}s"


def _lateness(late: Lateness) -> list[str]:
    return [_seconds(late.p50), _seconds(late.p95), _seconds(late.p99)]


def _print(report: DataHealth) -> None:
    header = ["NAME", "COUNT", "P50", "P95", "P99", "VIOLATIONS", "DRIFT"]
    rows = [
        [
            e.name,
            str(e.count),
            *_lateness(e.lateness_seconds),
            ", ".join(f"{p}={n}" for p, n in e.violations.items()) or "-",
            ", ".join(f"{p}:{'/'.join(t)}" for p, t in e.type_drift.items()) or "-",
        ]
        for e in report.events
    ]
    rows += [
        [f"metric {m.metric}", str(m.count), *_lateness(m.lateness_seconds), "-", "-"]
        for m in report.metrics
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    if not rows:
        click.echo("(nothing received in the window)")
    if report.unknown_names:
        names = ", ".join(f"{u.name} ({u.count})" for u in report.unknown_names)
        click.echo(f"\nunknown names: {names}")
    click.echo(f"\nduplicates: {report.duplicates}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}")
