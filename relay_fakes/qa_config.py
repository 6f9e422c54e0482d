"""What ``relay-fakes serve`` hands to relay: a fresh APNs signing key and an ``[[apps]]`` block.

The block is everything relay needs to send test pushes to the local fakes instead of Apple and
Google: the ``.p8`` key the fake APNs verifies provider JWTs against, its key and team ids, and
both endpoints. FCM gets no ``credentials_path``: with an endpoint and no credentials, relay sends
a static test bearer token, which the fake FCM accepts.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import string
import tempfile
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

TEAM_ID = "RELAYFAKES"  # Apple team ids are 10 characters
TOPIC = "com.example.relay-fakes"
PROJECT_ID = "relay-fakes"
KEY_FILE_MODE = 0o600  # a signing key, even a throwaway one, is nobody else's business
CONFIG_FILE_MODE = 0o644
_KEY_ID_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class FakeProviderIdentity:
    """The credentials relay signs with and the fakes check, made up for one run."""

    app_id: str
    key_id: str
    private_key: ec.EllipticCurvePrivateKey
    team_id: str = TEAM_ID
    topic: str = TOPIC
    project_id: str = PROJECT_ID

    def private_key_pem(self) -> bytes:
        """PKCS#8 PEM, the format of the ``.p8`` files Apple hands out."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def new_identity(app_id: str) -> FakeProviderIdentity:
    """A fresh EC P-256 key and a random 10-character key id (Apple's format)."""
    key_id = "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(10))
    return FakeProviderIdentity(app_id, key_id, ec.generate_private_key(ec.SECP256R1()))


def key_path_beside(config_path: Path, app_id: str) -> Path:
    """Where the ``.p8`` goes: next to the config, absolute, so relay finds it from any cwd."""
    return config_path.resolve().parent / f"relay-fakes-{app_id}.p8"


def apps_block(identity: FakeProviderIdentity, key_path: Path, apns_url: str, fcm_url: str) -> str:
    """A TOML ``[[apps]]`` block, to use as a whole relay config or to append to one."""
    written_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"""\
# Written by `relay-fakes serve` at {written_at}: relay sends app {_toml(identity.app_id)}'s
# pushes to the local fakes below, not to Apple or Google. Rewritten with a new key each time
# relay-fakes starts. Use it as a whole relay config, or append it to one.
[[apps]]
id = {_toml(identity.app_id)}

[apps.apns]
key_path = {_toml(str(key_path))}
key_id = {_toml(identity.key_id)}
team_id = {_toml(identity.team_id)}
topic = {_toml(identity.topic)}
endpoint = {_toml(apns_url)}

[apps.fcm]
project_id = {_toml(identity.project_id)}
endpoint = {_toml(fcm_url)}
"""
    tomllib.loads(text)  # a path with odd characters must fail here, not in relay later
    return text


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old file or the whole new one,
    never a part: write a temporary file in the same directory (rename is atomic only within a
    file system), flush it to disk, then rename it over ``path``."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _toml(value: str) -> str:
    """A TOML basic string: JSON's escapes (without ``ensure_ascii``) are all valid TOML."""
    return json.dumps(value, ensure_ascii=False)
