"""The attribution rule's primitives: which profile a device, metric or event belongs to.

A metric or event is stamped with its device's profile when relay receives it. Facts received
while their device (or anonymous id) had no profile keep ``customer_id`` NULL until an
identify (or a login on that device) attaches them; attributed history never moves, except
through refresh (it follows the device) and merge (everything moves).
"""

from __future__ import annotations

from relay.forward import ops
from relay.store.connection import Connection, Row
from relay.store.sql.attribution import (
    attach_anonymous_facts,
    attach_device_facts,
    attach_waiting_facts,
)
from relay.store.sql.outbox import enqueue
from relay.store.sql.profiles import create_profile, customer_of_anonymous_id

# A profile exists once anything names its customer_id: (conn, app_id, customer_id, now),
# True if this call created it.
ensure_profile = create_profile

# The customer an anonymous id was last identified as, if any: (conn, app_id, anonymous_id).
linked_customer = customer_of_anonymous_id


def ensure_person(conn: Connection, app_id: str, customer_id: str, now: float) -> None:
    """`ensure_profile`, and a new profile is identified to Customer.io before anything else
    about the person (a device or an event) is sent."""
    if create_profile(conn, app_id, customer_id, now):
        enqueue(conn, app_id, [ops.identify(customer_id, None, None, None, now)], now)


def claim_waiting_facts(conn: Connection, device: Row) -> None:
    """Metrics and events that arrived before their token registered join the device now."""
    attach_waiting_facts(conn, device)


def attach_device_history(conn: Connection, app_id: str, device_id: int, customer_id: str) -> None:
    """The device's facts that have no profile yet join ``customer_id``."""
    attach_device_facts(conn, app_id, device_id, customer_id)


def attach_anonymous_history(
    conn: Connection, app_id: str, anonymous_id: str, customer_id: str
) -> None:
    """Facts recorded under ``anonymous_id`` that have no profile yet join ``customer_id``."""
    attach_anonymous_facts(conn, app_id, anonymous_id, customer_id)
