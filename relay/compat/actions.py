"""What a Customer.io-shaped call means to relay: a small set of actions, applied in one
transaction per request through the same store functions as the native API."""

from __future__ import annotations

from dataclasses import dataclass

from relay.facts import NewEvent, NewMetric
from relay.forward.ops import Op
from relay.models.devices import DevicePut


@dataclass(frozen=True, slots=True)
class UpsertDevice:
    token: str
    body: DevicePut
    platform_given: bool = True  # False: keep a known device's platform (SDKs may omit it)


@dataclass(frozen=True, slots=True)
class LeaveDevice:
    """The device leaves ``customer_id``'s profile (a logout), if it is on it; not unregistered."""

    token: str
    customer_id: str | None


@dataclass(frozen=True, slots=True)
class Identify:
    customer_id: str
    anonymous_id: str | None
    email: str | None
    attributes: dict[str, object]


@dataclass(frozen=True, slots=True)
class Merge:
    primary: str
    secondary: str


@dataclass(frozen=True, slots=True)
class RecordMetric:
    metric: NewMetric


@dataclass(frozen=True, slots=True)
class RecordEvent:
    event: NewEvent


@dataclass(frozen=True, slots=True)
class Forward:
    """Relay has no model for it (screens, pages, groups, aliases…): pass it on as is."""

    op: Op


Action = UpsertDevice | LeaveDevice | Identify | Merge | RecordMetric | RecordEvent | Forward


@dataclass(frozen=True, slots=True)
class Call:
    """One client call: its de-duplication key (None: never a duplicate) and its actions."""

    message_id: str | None
    actions: tuple[Action, ...]
