"""Devices: registration, refresh and the device object."""

from __future__ import annotations

from msgspec import UNSET, Struct, UnsetType

from relay.models.common import Counts
from relay.models.fields import (
    Attributes,
    DeviceStatus,
    Environment,
    Id,
    Platform,
    Rfc3339,
    ShortText,
    Text,
    Token,
    Url,
)


class DevicePut(Struct, forbid_unknown_fields=True, kw_only=True):
    """PUT /v1/devices/{token}. Omitted fields keep their stored values."""

    platform: Platform
    anonymous_id: Id | UnsetType = UNSET
    customer_id: Id | UnsetType | None = UNSET
    push_enabled: bool | UnsetType = UNSET
    environment: Environment | UnsetType = UNSET
    app_version: ShortText | UnsetType = UNSET
    os_version: ShortText | UnsetType = UNSET
    device_model: ShortText | UnsetType = UNSET
    locale: ShortText | UnsetType = UNSET
    timezone: ShortText | UnsetType = UNSET
    attributes: Attributes | UnsetType = UNSET


class DeviceRefresh(Struct, forbid_unknown_fields=True):
    new_token: Token


class DeviceAck(Struct):
    """What an app key gets back: only what it sent."""

    token: str
    status: DeviceStatus


class Device(Struct, kw_only=True):
    token: str
    app_id: str
    platform: Platform
    status: DeviceStatus
    customer_id: str | None
    anonymous_id: str | None
    push_enabled: bool
    environment: Environment
    app_version: str | None
    os_version: str | None
    device_model: str | None
    locale: str | None
    timezone: str | None
    attributes: dict[str, str | int | float | bool]
    first_seen: Rfc3339
    last_seen: Rfc3339
    token_updated_at: Rfc3339
    invalid_reason: str | None
    replaced_by: str | None
    counts: Counts


class MetricView(Struct, kw_only=True):
    id: str
    metric: str
    token: str
    delivery_id: str | None
    customer_id: str | None
    timestamp: Rfc3339
    received_at: Rfc3339
    action: Text | None
    deep_link: Url | None
    reason: Text | None
    source: str | None


class DeviceDetail(Device, kw_only=True):
    recent_metrics: list[MetricView]
