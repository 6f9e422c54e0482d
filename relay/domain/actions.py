"""What a Customer.io-shaped call means to relay: a small set of actions, applied in one
transaction per request through the same store functions as the native API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relay.facts import NewEvent, NewMetric
from relay.forward.ops import Op
from relay.keys import Role
from relay.models.devices import DevicePut
from relay.settings import Settings
from relay.tracking_plan import PlanObserver, ignore_plan_checks


@dataclass(frozen=True, slots=True)
class UpsertDevice:
    """An explicit registration: it revives an ``unregistered`` token."""

    token: str
    body: DevicePut
    platform_given: bool = True  # False: keep a known device's platform (SDKs may omit it)


@dataclass(frozen=True, slots=True)
class UnregisterDevice:
    """A device delete (not a logout): the token becomes ``unregistered``.

    With ``customer_id`` (Track paths name the person), a device attached to someone else
    stays as it is, and Customer.io still hears the delete for that person.
    """

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
class DeletePerson:
    customer_id: str


@dataclass(frozen=True, slots=True)
class SuppressPerson:
    customer_id: str
    suppressed: bool


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


@dataclass(frozen=True, slots=True)
class Reject:
    """An item of a Pipelines batch relay refused: it goes to the rejected-items log, since the
    batch answers 200 (the SDKs drop a whole batch on a 4xx, good items included)."""

    surface: str
    path: str
    reason: str
    message: str
    item: dict[str, Any]


Action = (
    UpsertDevice
    | UnregisterDevice
    | Identify
    | Merge
    | DeletePerson
    | SuppressPerson
    | RecordMetric
    | RecordEvent
    | Forward
    | Reject
)


@dataclass(frozen=True, slots=True)
class Context:
    """What translating a call needs besides the call: settings, the key's role, the time,
    and who counts tracking-plan checks (injected, so translation itself stays pure)."""

    settings: Settings
    role: Role
    now: float
    observe_plan: PlanObserver = ignore_plan_checks


@dataclass(frozen=True, slots=True)
class Call:
    """One client call: its de-duplication key (None: never a duplicate) and its actions."""

    message_id: str | None
    actions: tuple[Action, ...]
