"""Identity: identify, merge and the profile object."""

from __future__ import annotations

from msgspec import Struct

from relay.models.common import Counts
from relay.models.devices import Device
from relay.models.fields import Attributes, Email, Id, Rfc3339


class IdentifyIn(Struct, forbid_unknown_fields=True, kw_only=True):
    customer_id: Id
    anonymous_id: Id | None = None
    email: Email | None = None
    attributes: Attributes | None = None


class IdentifyAck(Struct):
    customer_id: str


class MergeIn(Struct, forbid_unknown_fields=True):
    primary: Id
    secondary: Id


class Profile(Struct, kw_only=True):
    customer_id: str
    email: str | None
    attributes: dict[str, str | int | float | bool]
    anonymous_ids: list[str]
    devices: list[Device]
    counts: Counts
    last_opened_at: Rfc3339 | None
    last_converted_at: Rfc3339 | None
    suppressed: bool = False


class Suppression(Struct):
    customer_id: str
    suppressed: bool
