"""The one settings object, loaded once: embedded defaults → TOML file → ``RELAY_*`` variables.

Every key that ``config/relay.example.toml`` documents is a field here, with its default.
Loading is strict: an unknown key, a wrong type or an impossible value is a `ConfigError`
that names where the value came from (the file, or the ``RELAY_*`` variable) and the key, so a
typo never silently falls back to a default. A ``RELAY_*`` variable that names no setting is
reported as a warning with the closest name.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from relay.tracking_plan import PlanCheck, PlanError, TrackingPlan

CONFIG_ENV_VAR = "RELAY_CONFIG"
ENV_PREFIX = "RELAY_"
# RELAY_* variables read on purpose that set no setting, so never reported as typos.
NON_SETTING_VARIABLES = frozenset(
    {
        CONFIG_ENV_VAR,
        "RELAY_BENCH_DATA",  # bench/: where benchmarks keep their data
    }
)
DEFAULT_APP_ID = "default"


class ConfigError(Exception):
    """The configuration cannot be used; the message names where and what."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    listen: str = "127.0.0.1:8080"
    public_url: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    # headers and body must arrive within this, else 408 and the connection closes
    request_timeout_seconds: float = 30.0
    idle_timeout_seconds: float = 75.0  # keep-alive connections idle longer are closed
    shutdown_timeout_seconds: float = 30.0
    # beyond this many open connections new ones are closed at once (a rate-limited log line)
    max_connections: int = 1024

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
    pool_size: int = 10  # PostgreSQL connections per process

    @property
    def engine(self) -> str:
        """``sqlite`` or ``postgresql``: the storage engine the URL names."""
        return "postgresql" if self.url.startswith(("postgresql://", "postgres://")) else "sqlite"

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
    # > 0: past this many operations waiting for Customer.io, writes that would add to them
    # answer 503 + Retry-After until the backlog drains (only while forwarding is enabled)
    max_pending: int = 0
    # a claimed outbox batch returns to the queue if its holder dies (N instances sharing one
    # database; one SQLite process claims nothing)
    lease_seconds: float = 60


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """By timestamp; 0 = keep forever. Older items are refused at ingest (a pruned id never
    comes back) and deleted daily and by ``relay prune``."""

    metrics_days: float = 400
    events_days: float = 400


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


TRACKING_PLAN_MODES = ("report", "enforce")


# Not slotted: the loaded plan is cached on the instance (``plan``), beside the two settings
# rather than as a third field, so it is no config key (``relay config show``, RELAY_* names,
# the strict loader and equality all see only ``path`` and ``mode``).
@dataclass(frozen=True)
class TrackingPlanSettings:
    path: str = ""  # "" = no plan: nothing is checked or counted
    mode: str = "report"  # report: accept and count violations | enforce: reject the item

    @functools.cached_property
    def plan(self) -> TrackingPlan | None:
        """The plan file, read the first time it is asked for: `load_sourced_settings` asks,
        so a server or a CLI command reads it once, at start-up."""
        if not self.path:
            return None
        try:
            return TrackingPlan.load(self.path)
        except PlanError as exc:
            raise ConfigError(f"tracking_plan.path: {exc}") from None

    @property
    def enforced(self) -> bool:
        """Items breaking the plan are refused (rather than only counted)."""
        return self.mode == "enforce" and self.plan is not None

    def inspect(
        self, name: str, properties: Mapping[str, Any] | None, field: str = "properties"
    ) -> PlanCheck | None:
        """The event ``name`` (canonical) checked against the plan; None without a plan."""
        return None if self.plan is None else self.plan.inspect(name, properties, field)


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    customerio: CustomerioSettings = field(default_factory=CustomerioSettings)
    forwarding: ForwardingSettings = field(default_factory=ForwardingSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    apps: tuple[AppSettings, ...] = (AppSettings(),)
    push: PushSettings = field(default_factory=PushSettings)
    attribution: AttributionSettings = field(default_factory=AttributionSettings)
    events: EventsSettings = field(default_factory=EventsSettings)
    segments: SegmentsSettings = field(default_factory=SegmentsSettings)
    tracking_plan: TrackingPlanSettings = field(default_factory=TrackingPlanSettings)

    @property
    def app_ids(self) -> frozenset[str]:
        return frozenset(app.id for app in self.apps)

    def app(self, app_id: str) -> AppSettings | None:
        return next((app for app in self.apps if app.id == app_id), None)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a setting's value came from: the config file, a ``RELAY_*`` variable, or neither."""

    kind: Literal["file", "env", "default"]
    name: str = ""  # the file's path or the variable's name

    @property
    def label(self) -> str:
        """As ``relay config show`` names it: ``file``, ``env RELAY_X`` or ``default``."""
        return f"env {self.name}" if self.kind == "env" else self.kind

    @property
    def blame(self) -> str:
        """What an error message starts with, so the operator knows what to fix."""
        return self.name or "embedded defaults"


DEFAULT_ORIGIN = Origin("default")


@dataclass(frozen=True, slots=True)
class Origins:
    """The origin of every ``section.key`` (and of ``apps``, which is file-only)."""

    by_setting: Mapping[str, Origin]
    # Anything else (an unknown key, a non-table section) can only have come from the file.
    file: Origin

    def of(self, key: str) -> Origin:
        """The origin of ``key`` or of the setting it is part of (``apps[0].apns.topic``)."""
        section, _, rest = key.partition(".")
        section = section.partition("[")[0]
        setting = f"{section}.{rest.partition('.')[0].partition('[')[0]}"
        return self.by_setting.get(setting) or self.by_setting.get(section) or self.file

    def blame(self, key: str) -> str:
        return self.of(key).blame


@dataclass(frozen=True, slots=True)
class SourcedSettings:
    """The settings, and where each value came from (what ``relay config show`` prints)."""

    settings: Settings
    origins: Origins


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Settings:
    """Load settings from ``path`` (else ``$RELAY_CONFIG``, else none) and ``RELAY_*`` overrides.

    ``warn`` gets one message per ``RELAY_*`` variable that names no setting.
    """
    return load_sourced_settings(path, environ, warn).settings


def load_sourced_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> SourcedSettings:
    """`load_settings`, also telling where each value came from."""
    environ = os.environ if environ is None else environ
    # Before anything can fail: a misspelt variable often explains the error that follows.
    if warn is not None:
        for message in unknown_variable_warnings(environ):
            warn(message)
    path = path or environ.get(CONFIG_ENV_VAR) or None
    file_origin = Origin("file", str(path)) if path else DEFAULT_ORIGIN
    raw = _read_toml(path) if path else {}
    by_setting = _origins_in_file(raw, file_origin)
    by_setting.update(_apply_environment(raw, environ))
    origins = Origins(by_setting, file_origin)
    settings = _build(Settings, raw, origins, "")
    _validate(settings, origins)
    return SourcedSettings(settings, origins)


def unknown_variable_warnings(environ: Mapping[str, str]) -> list[str]:
    """One message per ``RELAY_*`` variable that names no setting, with the closest name."""
    known = [*_environment_settings(), *sorted(NON_SETTING_VARIABLES)]
    unknown = {name for name in environ if name.startswith(ENV_PREFIX)} - set(known)
    return [_names_no_setting(name, known) for name in sorted(unknown)]


def _names_no_setting(variable: str, known: list[str]) -> str:
    message = f"{variable} names no setting"
    if variable.startswith(f"{ENV_PREFIX}APPS_"):
        return f"{message}; [[apps]] is set in the config file only"
    # Compared without the prefix they all share, which would make every name look close.
    stems = {name.removeprefix(ENV_PREFIX): name for name in known}
    closest = difflib.get_close_matches(variable.removeprefix(ENV_PREFIX), list(stems), n=1)
    return f"{message}; did you mean {stems[closest[0]]}?" if closest else message


def _read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read TOML: {exc}") from None


@functools.cache
def _environment_settings() -> dict[str, tuple[str, str, Any]]:
    """``RELAY_<SECTION>_<KEY>`` → (section, key, type) for every key of every section but
    ``[[apps]]``, whose entries have no stable name to put in a variable."""
    variables = {}
    for section, section_type in typing.get_type_hints(Settings).items():
        if section == "apps":
            continue
        hints = typing.get_type_hints(section_type)
        for key in dataclasses.fields(section_type):
            variable = f"{ENV_PREFIX}{section}_{key.name}".upper()
            variables[variable] = (section, key.name, hints[key.name])
    return variables


def _origins_in_file(raw: Mapping[str, Any], file_origin: Origin) -> dict[str, Origin]:
    origins = {"apps": file_origin if "apps" in raw else DEFAULT_ORIGIN}
    for section, key, _ in _environment_settings().values():
        table = raw.get(section)
        in_file = isinstance(table, dict) and key in table
        origins[f"{section}.{key}"] = file_origin if in_file else DEFAULT_ORIGIN
    return origins


def _apply_environment(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Origin]:
    """Put every ``RELAY_<SECTION>_<KEY>`` over the file's value; return what each one set."""
    origins = {}
    for variable, (section, key, hint) in _environment_settings().items():
        if variable not in environ:
            continue
        table = raw.setdefault(section, {})
        if not isinstance(table, dict):
            continue  # the file's own error ("must be a table") is the one to report
        table[key] = _environment_value(hint, environ[variable])
        origins[f"{section}.{key}"] = Origin("env", variable)
    return origins


def _environment_value(hint: Any, text: str) -> Any:
    """A ``str`` setting takes the text as written (``12e45`` is an API key, not a float); any
    other type reads it as a TOML value. Text that does not parse is passed on as it is, for
    `_coerce` to refuse with the variable's name."""
    if hint is str:
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _build(cls: type, raw: Any, origins: Origins, prefix: str) -> Any:
    table = prefix.rstrip(".") or "config"
    if not isinstance(raw, dict):
        raise ConfigError(f"{origins.blame(table)}: {table} must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        key = f"{prefix}{unknown[0]}"
        raise ConfigError(f"{origins.blame(key)}: unknown key {key}")
    values = {name: _coerce(hints[name], raw[name], origins, f"{prefix}{name}") for name in raw}
    return cls(**values)


def _coerce(hint: Any, value: Any, origins: Origins, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type, hint), value, origins, f"{key}.")
    if origin is tuple:
        item_type = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise ConfigError(f"{origins.blame(key)}: {key} must be an array, got {value!r}")
        return tuple(
            _coerce(item_type, item, origins, f"{key}[{i}]") for i, item in enumerate(value)
        )
    if origin in (Mapping, dict) or hint is Mapping:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{origins.blame(key)}: {key} must be a table of strings")
        return types.MappingProxyType(dict(value))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{origins.blame(key)}: {key} must be a number, got {value!r}")
        return float(value)
    if hint is str and not isinstance(value, str):
        raise ConfigError(f"{origins.blame(key)}: {key} must be a string, got {value!r}")
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{origins.blame(key)}: {key} must be an integer, got {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{origins.blame(key)}: {key} must be true or false, got {value!r}")
    return value


def _validate(settings: Settings, origins: Origins) -> None:
    where = origins.blame
    server, storage = settings.server, settings.storage
    host, sep, port = server.listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(
            f"{where('server.listen')}: server.listen must be HOST:PORT, got {server.listen!r}"
        )
    if bool(server.tls_cert) != bool(server.tls_key):
        the_one_set = "server.tls_cert" if server.tls_cert else "server.tls_key"
        raise ConfigError(
            f"{where(the_one_set)}: server.tls_cert and server.tls_key must be set together"
        )
    if storage.engine == "sqlite":
        try:
            storage.sqlite_path  # noqa: B018 - raises ConfigError for a malformed URL
        except ConfigError as exc:
            raise ConfigError(f"{where('storage.url')}: {exc}") from None
    elif "@" not in storage.url and "/" not in storage.url.split("://", 1)[1]:
        raise ConfigError(
            f"{where('storage.url')}: storage.url: expected postgresql://USER@HOST:PORT/DB"
        )
    if storage.pool_size < 2:
        raise ConfigError(f"{where('storage.pool_size')}: storage.pool_size must be at least 2")
    if storage.synchronous not in ("full", "normal"):
        raise ConfigError(
            f"{where('storage.synchronous')}: storage.synchronous must be 'full' or 'normal'"
        )
    for key, value in (
        ("server.request_timeout_seconds", server.request_timeout_seconds),
        ("server.idle_timeout_seconds", server.idle_timeout_seconds),
        ("server.shutdown_timeout_seconds", server.shutdown_timeout_seconds),
        ("server.max_connections", server.max_connections),
        ("forwarding.lease_seconds", settings.forwarding.lease_seconds),
    ):
        if value <= 0:
            raise ConfigError(f"{where(key)}: {key} must be greater than 0")
    for key, value in (
        ("forwarding.max_pending", settings.forwarding.max_pending),
        ("retention.metrics_days", settings.retention.metrics_days),
        ("retention.events_days", settings.retention.events_days),
    ):
        if value < 0:
            raise ConfigError(f"{where(key)}: {key} must be 0 (off) or more")
    if storage.read_connections < 1:
        raise ConfigError(
            f"{where('storage.read_connections')}: storage.read_connections must be at least 1"
        )
    if settings.customerio.region not in ("us", "eu"):
        raise ConfigError(f"{where('customerio.region')}: customerio.region must be 'us' or 'eu'")
    if not settings.apps:
        raise ConfigError(f"{where('apps')}: [[apps]] is empty")
    ids = [app.id for app in settings.apps]
    if len(set(ids)) != len(ids) or not all(ids):
        raise ConfigError(f"{where('apps')}: [[apps]] ids must be non-empty and unique, got {ids}")
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
            raise ConfigError(f"{where(name)}: {name} must be positive, got {value}")
    _validate_tracking_plan(settings.tracking_plan, origins)


def _validate_tracking_plan(tracking_plan: TrackingPlanSettings, origins: Origins) -> None:
    if tracking_plan.mode not in TRACKING_PLAN_MODES:
        raise ConfigError(
            f"{origins.blame('tracking_plan.mode')}: tracking_plan.mode must be 'report' or "
            f"'enforce', got {tracking_plan.mode!r}"
        )
    try:
        tracking_plan.plan  # noqa: B018 - loads the plan file now, once, or refuses to start
    except ConfigError as exc:
        raise ConfigError(f"{origins.blame('tracking_plan.path')}: {exc}") from None
