"""API keys as stored: the record and the roles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["app", "server", "admin"]
# Each role may do what the ones before it may: app (public, ships inside apps) < server
# (a back end's secret: person-level writes too) < admin (reads and operations too).
ROLES: tuple[Role, ...] = ("app", "server", "admin")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    app_id: str
    role: Role
    name: str
    created_at: float
    revoked_at: float | None = None
