"""API keys: generation, hashing, roles.

Keys are shown once and stored only as SHA-256 hashes. Generated keys carry 256 bits of
randomness, so a fast hash is enough; a key chosen with ``--value`` (a key a Customer.io
client already ships) is only as strong as its author made it. Lookup is by hash, and the
final check uses a constant-time comparison.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from ulid import ULID

from relay.models.keys import ROLES, KeyRecord, Role

__all__ = ["ROLES", "KeyRecord", "Role"]

KEY_PREFIX = "rly_"


def grants(held: Role, needed: Role) -> bool:
    """Whether a key of role ``held`` may do what needs ``needed``."""
    return ROLES.index(held) >= ROLES.index(needed)


def new_key_id() -> str:
    return f"key_{str(ULID()).lower()}"


def generate_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def hashes_match(stored: str, presented: str) -> bool:
    return hmac.compare_digest(stored.encode(), presented.encode())


def chosen_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be a key (``--value``): 8-256 printable ASCII, no spaces."""
    if not 8 <= len(value) <= 256:
        return "must be 8-256 characters long"
    if not all(33 <= ord(c) <= 126 for c in value):
        return "must be printable ASCII without spaces"
    return None
