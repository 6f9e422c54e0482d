"""The one settings object, loaded once: embedded defaults → TOML file → ``RELAY_*`` variables.

Every key that ``config/relay.example.toml`` documents is a field here, with its default.
Loading is strict: an unknown key, a wrong type or an impossible value is a `ConfigError`
that names the file (or environment variable) and the key, so a typo never silently falls
back to a default.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_ENV_VAR = "RELAY_CONFIG"
DEFAULT_APP_ID = "default"


class ConfigError(Exception):
    """The configuration cannot be used; the message names where and what."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    listen: str = "127.0.0.1:8080"
    public_url: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    shutdown_timeout_seconds: float = 30.0

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]") or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


@dataclass(frozen=True, slots=True)
class StorageSettings:
    url: str = "sqlite:///relay.db"
    # "full" fsyncs the WAL on every commit: a 2xx survives power loss, and group commit
    # amortises the cost. "normal" survives a crash of relay but not of the machine.
    synchronous: str = "full"
    read_connections: int = 2

    @property
    def sqlite_path(self) -> Path:
        """The database file named by a ``sqlite:///`` URL (four slashes = absolute path)."""
        scheme, _, rest = self.url.partition("://")
        if scheme != "sqlite" or not rest.startswith("/") or len(rest) < 2:
            raise ConfigError(f"storage.url: expected sqlite:///PATH, got {self.url!r}")
        return Path(rest[1:])


@dataclass(frozen=True, slots=True)
class CustomerioSettings:
    site_id: str = ""
    api_key: str = ""
    region: str = "us"
    track_url: str = ""
    cdp_api_key: str = ""
    pipelines_url: str = ""

    @property
    def has_track_credentials(self) -> bool:
        return bool(self.site_id and self.api_key)


@dataclass(frozen=True, slots=True)
class ForwardingSettings:
    max_requests_per_second: float = 100
    give_up_hours: float = 24
    retry_initial_seconds: float = 1
    retry_max_seconds: float = 60
    request_timeout_seconds: float = 10


@dataclass(frozen=True, slots=True)
class ApnsSettings:
    key_path: str = ""
    key_id: str = ""
    team_id: str = ""
    topic: str = ""
    endpoint: str = ""
    ca_path: str = ""


@dataclass(frozen=True, slots=True)
class FcmSettings:
    credentials_path: str = ""
    project_id: str = ""
    endpoint: str = ""


@dataclass(frozen=True, slots=True)
class AppSettings:
    id: str = DEFAULT_APP_ID
    apns: ApnsSettings = field(default_factory=ApnsSettings)
    fcm: FcmSettings = field(default_factory=FcmSettings)


@dataclass(frozen=True, slots=True)
class PushSettings:
    stale_after_days: float = 30
    hygiene_interval_seconds: float = 3600


@dataclass(frozen=True, slots=True)
class AttributionSettings:
    window_hours: float = 24
    conversion_events: tuple[str, ...] = ("Order Completed",)


@dataclass(frozen=True, slots=True)
class EventsSettings:
    aliases: Mapping[str, str] = field(default_factory=dict)

    def canonical_name(self, name: str) -> str:
        return self.aliases.get(name, name)


@dataclass(frozen=True, slots=True)
class SegmentsSettings:
    customerio_ids: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    customerio: CustomerioSettings = field(default_factory=CustomerioSettings)
    forwarding: ForwardingSettings = field(default_factory=ForwardingSettings)
    apps: tuple[AppSettings, ...] = (AppSettings(),)
    push: PushSettings = field(default_factory=PushSettings)
    attribution: AttributionSettings = field(default_factory=AttributionSettings)
    events: EventsSettings = field(default_factory=EventsSettings)
    segments: SegmentsSettings = field(default_factory=SegmentsSettings)

    @property
    def app_ids(self) -> frozenset[str]:
        return frozenset(app.id for app in self.apps)

    def app(self, app_id: str) -> AppSettings | None:
        return next((app for app in self.apps if app.id == app_id), None)


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Load settings from ``path`` (else ``$RELAY_CONFIG``, else none) and ``RELAY_*`` overrides."""
    environ = os.environ if environ is None else environ
    path = path or environ.get(CONFIG_ENV_VAR) or None
    raw: dict[str, Any] = {}
    source = "embedded defaults"
    if path:
        source = str(path)
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read TOML: {exc}") from None
    _apply_environment(raw, environ)
    settings = _build(Settings, raw, source, "")
    _validate(settings, source)
    return settings


def _apply_environment(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    """``RELAY_<SECTION>_<KEY>`` overrides any scalar key of a section (not ``[[apps]]``)."""
    for section, section_type in typing.get_type_hints(Settings).items():
        if section == "apps":
            continue
        for key in dataclasses.fields(section_type):
            variable = f"RELAY_{section}_{key.name}".upper()
            if variable in environ:
                raw.setdefault(section, {})[key.name] = _parse_env_value(environ[variable])


def _parse_env_value(value: str) -> Any:
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _build(cls: type, raw: Any, source: str, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'} must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{source}: unknown key {prefix}{unknown[0]}")
    values = {name: _coerce(hints[name], raw[name], source, f"{prefix}{name}") for name in raw}
    return cls(**values)


def _coerce(hint: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type, hint), value, source, f"{key}.")
    if origin is tuple:
        item_type = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} must be an array")
        return tuple(
            _coerce(item_type, item, source, f"{key}[{i}]") for i, item in enumerate(value)
        )
    if origin in (Mapping, dict) or hint is Mapping:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{source}: {key} must be a table of strings")
        return types.MappingProxyType(dict(value))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{source}: {key} must be a number, got {value!r}")
        return float(value)
    if hint is str and not isinstance(value, str):
        raise ConfigError(f"{source}: {key} must be a string, got {value!r}")
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{source}: {key} must be an integer, got {value!r}")
    return value


def _validate(settings: Settings, source: str) -> None:
    server, storage = settings.server, settings.storage
    host, sep, port = server.listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{source}: server.listen must be HOST:PORT, got {server.listen!r}")
    if bool(server.tls_cert) != bool(server.tls_key):
        raise ConfigError(f"{source}: server.tls_cert and server.tls_key must be set together")
    if storage.url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            f"{source}: storage.url: the PostgreSQL backend is not available in this release; "
            "use sqlite:///PATH"
        )
    storage.sqlite_path  # noqa: B018 - raises ConfigError for a malformed URL
    if storage.synchronous not in ("full", "normal"):
        raise ConfigError(f"{source}: storage.synchronous must be 'full' or 'normal'")
    if storage.read_connections < 1:
        raise ConfigError(f"{source}: storage.read_connections must be at least 1")
    if settings.customerio.region not in ("us", "eu"):
        raise ConfigError(f"{source}: customerio.region must be 'us' or 'eu'")
    if not settings.apps:
        raise ConfigError(f"{source}: [[apps]] is empty")
    ids = [app.id for app in settings.apps]
    if len(set(ids)) != len(ids) or not all(ids):
        raise ConfigError(f"{source}: [[apps]] ids must be non-empty and unique, got {ids}")
    for name, value in (
        ("forwarding.max_requests_per_second", settings.forwarding.max_requests_per_second),
        ("attribution.window_hours", settings.attribution.window_hours),
        ("push.stale_after_days", settings.push.stale_after_days),
        ("push.hygiene_interval_seconds", settings.push.hygiene_interval_seconds),
        ("forwarding.retry_initial_seconds", settings.forwarding.retry_initial_seconds),
        ("forwarding.retry_max_seconds", settings.forwarding.retry_max_seconds),
        ("forwarding.request_timeout_seconds", settings.forwarding.request_timeout_seconds),
        ("forwarding.give_up_hours", settings.forwarding.give_up_hours),
    ):
        if value <= 0:
            raise ConfigError(f"{source}: {name} must be positive, got {value}")
