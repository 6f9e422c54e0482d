"""The tracking plan: which properties each known event must (or may) carry, and of what type.

Pure: loading the plan file is the only I/O. The plan names events by their canonical name
(after ``[events] aliases``); a name it does not list is *unknown* — counted, never refused.
What the doors do with a violation (count it, or refuse the item) is the caller's business.
"""

from __future__ import annotations

import tomllib
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The JSON types a plan can require. bool is not a number; null is none of them.
PROPERTY_TYPES = ("string", "number", "bool", "object", "array")
EVENT_KEYS = ("required", "optional")


class PlanError(ValueError):
    """The plan file cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One property of one event breaking the plan. ``path`` is relative to the item
    (``properties.total``); ``property`` is the plan's own name for it (a metric label)."""

    path: str
    property: str
    message: str


@dataclass(frozen=True, slots=True)
class EventSpec:
    """The properties of one planned event, each with its JSON type."""

    required: Mapping[str, str] = field(default_factory=dict)
    optional: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PlanCheck:
    """What checking one event against the plan found (what the doors count)."""

    event: str
    known: bool
    violations: tuple[Violation, ...] = ()


# Told of every check, to count it: the doors pass one in so that checking stays pure.
PlanObserver = Callable[[PlanCheck], None]


def ignore_plan_checks(check: PlanCheck) -> None:
    """A `PlanObserver` that counts nothing (translations run outside a server)."""


@dataclass(frozen=True, slots=True)
class TrackingPlan:
    events: Mapping[str, EventSpec] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> TrackingPlan:
        """The plan in the TOML file at ``path``; `PlanError` naming the file otherwise."""
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PlanError(f"tracking plan file not found: {path}") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise PlanError(f"tracking plan {path}: cannot read TOML: {exc}") from None
        try:
            return cls.from_toml(raw)
        except PlanError as exc:
            raise PlanError(f"tracking plan {path}: {exc}") from None

    @classmethod
    def from_toml(cls, raw: Mapping[str, Any]) -> TrackingPlan:
        unknown = sorted(set(raw) - {"events"})
        if unknown:
            raise PlanError(f'unknown key {unknown[0]} (expected [events."NAME"] tables)')
        events = raw.get("events", {})
        if not isinstance(events, dict):
            raise PlanError("events must be a table")
        specs = {name: _event_spec(name, table) for name, table in events.items()}
        return cls(types.MappingProxyType(specs))

    def known(self, name: str) -> bool:
        return name in self.events

    def check(
        self, name: str, properties: Mapping[str, Any] | None, field: str = "properties"
    ) -> list[Violation]:
        """What ``properties`` of the event ``name`` (canonical) break; none for an unknown
        name. ``field`` is where the client sent the properties (``data`` for Track v1)."""
        spec = self.events.get(name)
        if spec is None:
            return []
        given = properties or {}
        violations = []
        for prop in spec.required:
            if prop not in given:
                violations.append(Violation(f"{field}.{prop}", prop, "is required"))
        for prop, expected in (*spec.required.items(), *spec.optional.items()):
            if prop in given and json_type(given[prop]) != expected:
                message = f"must be a{'n' if expected[0] in 'aeiou' else ''} {expected}, got "
                violations.append(
                    Violation(f"{field}.{prop}", prop, message + json_type(given[prop]))
                )
        return violations

    def inspect(
        self, name: str, properties: Mapping[str, Any] | None, field: str = "properties"
    ) -> PlanCheck:
        return PlanCheck(name, self.known(name), tuple(self.check(name, properties, field)))


def json_type(value: Any) -> str:
    """The JSON type of a decoded value, in the plan's vocabulary."""
    if value is None:
        return "null"
    if isinstance(value, bool):  # before numbers: True is an int in Python, not in JSON
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _event_spec(name: str, table: Any) -> EventSpec:
    where = f'events."{name}"'
    if not isinstance(table, dict):
        raise PlanError(f"{where} must be a table")
    unknown = sorted(set(table) - set(EVENT_KEYS))
    if unknown:
        raise PlanError(f"{where}: unknown key {unknown[0]} (expected required, optional)")
    required = _properties(where, "required", table.get("required", {}))
    optional = _properties(where, "optional", table.get("optional", {}))
    both = sorted(set(required) & set(optional))
    if both:
        raise PlanError(f"{where}: property {both[0]} is both required and optional")
    return EventSpec(types.MappingProxyType(required), types.MappingProxyType(optional))


def _properties(where: str, key: str, table: Any) -> dict[str, str]:
    if not isinstance(table, dict):
        raise PlanError(f"{where}.{key} must be a table of property = type")
    for prop, kind in table.items():
        if kind not in PROPERTY_TYPES:
            raise PlanError(
                f"{where}: property {prop}: unknown type {kind!r} "
                f"(expected one of {'|'.join(PROPERTY_TYPES)})"
            )
    return dict(table)


@dataclass(slots=True)
class PlanTally:
    """A `PlanObserver` for one request: passes each check on to ``observe`` (the Prometheus
    counters) and keeps its violations, (event, property) → n, for the data-health counters
    the store writes with the request's facts."""

    observe: PlanObserver = ignore_plan_checks
    violations: dict[tuple[str, str], int] = field(default_factory=dict)

    def __call__(self, check: PlanCheck) -> None:
        self.observe(check)
        for violation in check.violations:
            key = (check.event, violation.property)
            self.violations[key] = self.violations.get(key, 0) + 1
