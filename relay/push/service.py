"""Test pushes (QA): resolve targets, check everything that can be checked before sending,
send through the providers with bounded retries, and record what happened.

Nothing is sent unless every targeted payload fits (413) and at least one target's platform
has credentials (422). The delivery is recorded before the first send, so metrics the device
reports back are recognised as relay's own (kept local, never forwarded to Customer.io).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from aioapns.exceptions import ConnectionError as ApnsConnectionError
from aioapns.exceptions import MaxAttemptsExceeded
from ulid import ULID

from relay.domain import Store
from relay.errors import PayloadTooLarge, ValidationFailed
from relay.models.push import PushResult, TestPushIn, TestPushOut
from relay.observability import Metrics
from relay.push.outcomes import Kind, ProviderAnswer
from relay.push.payload import (
    MAX_PAYLOAD_BYTES,
    PushMessage,
    apns_payload,
    encoded_size,
    fcm_data,
)
from relay.push.providers import ConfigurationError, Providers, configuration_problem
from relay.redact import mask_token
from relay.settings import Settings
from relay.store.sql.push import PushTarget

log = logging.getLogger(__name__)

MAX_TRIES = 3
RETRY_BUDGET_SECONDS = 10.0
FIRST_RETRY_DELAY = 0.5
UNSENDABLE = ("invalid", "unregistered", "replaced")


@dataclass(frozen=True, slots=True)
class Prepared:
    target: PushTarget
    payload: dict[str, object]  # APNs payload, or FCM data map
    problem: str | None  # missing credentials for the platform


class PushService:
    def __init__(
        self,
        store: Store,
        providers: Providers,
        settings: Settings,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._providers = providers
        self._settings = settings
        self._metrics = metrics
        self._clock = clock

    async def test_push(self, app_id: str, request: TestPushIn) -> TestPushOut:
        targets = await self._targets(app_id, request)
        delivery_id = f"rly_{ULID()}"
        message = PushMessage(
            request.title, request.body, request.deep_link, request.image, request.data or {}
        )
        prepared = self._prepare(app_id, targets, message, delivery_id)
        if not request.dry_run:
            await self._store.record_test_delivery(
                app_id, delivery_id, request.title, request.body, request.deep_link
            )
        results = await asyncio.gather(
            *(self._deliver(app_id, p, delivery_id, request.dry_run) for p in prepared)
        )
        sent = [r.token for r in results if r.status == "sent"]
        if sent:
            await self._store.record_sent(app_id, delivery_id, sent)
        return TestPushOut(delivery_id, list(results))

    async def _targets(self, app_id: str, request: TestPushIn) -> list[PushTarget]:
        if (request.token is None) == (request.customer_id is None):
            raise ValidationFailed.at("token", "give exactly one of token or customer_id")
        if request.token is not None:
            (target,) = await self._store.push_targets(app_id, token=request.token)
            if target.status in UNSENDABLE:
                raise ValidationFailed.at(
                    "token",
                    f"device {target.token!r} is {target.status}; relay will not send to it",
                )
            return [target]
        devices = await self._store.push_targets(app_id, customer_id=request.customer_id)
        reachable = [d for d in devices if d.status == "active" and d.push_enabled]
        if not reachable:
            statuses = ", ".join(
                f"{d.token[:8]}…: {d.status}{'' if d.push_enabled else ', push disabled'}"
                for d in devices
            )
            raise ValidationFailed.at(
                "customer_id",
                f"customer {request.customer_id!r} has no reachable device"
                + (f" ({statuses})" if devices else " (no devices)"),
            )
        return reachable

    def _prepare(
        self, app_id: str, targets: list[PushTarget], message: PushMessage, delivery_id: str
    ) -> list[Prepared]:
        app = self._settings.app(app_id)
        assert app is not None
        prepared = []
        for target in targets:
            if target.platform == "ios":
                payload: dict[str, object] = apns_payload(message, delivery_id, target.token)
            else:
                payload = dict(fcm_data(message, delivery_id, target.token))
            size = encoded_size(payload)
            if size > MAX_PAYLOAD_BYTES:
                provider = "APNs payload" if target.platform == "ios" else "FCM message.data"
                raise PayloadTooLarge(
                    f"the {provider} would be {size} bytes; the limit is {MAX_PAYLOAD_BYTES}"
                )
            prepared.append(Prepared(target, payload, configuration_problem(app, target.platform)))
        if all(p.problem for p in prepared):
            raise ValidationFailed.at(
                "token" if len(prepared) == 1 else "customer_id", str(prepared[0].problem)
            )
        return prepared

    async def _deliver(
        self, app_id: str, prepared: Prepared, delivery_id: str, dry_run: bool
    ) -> PushResult:
        target = prepared.target
        if prepared.problem:
            return self._result(target, "failed", error=prepared.problem, outcome="configuration")
        answer = await self._send_with_retries(app_id, prepared, delivery_id, dry_run)
        if answer.kind in (Kind.SENT, Kind.VALIDATED):
            return self._result(target, answer.kind.value, provider_id=answer.provider_id)
        if answer.kind is Kind.DEAD_TOKEN:
            invalidated = await self._store.invalidate_device(
                app_id, target.token, answer.reason, answer.unregistered_at
            )
            if invalidated:
                self._metrics.push_invalidations.labels(target.platform, answer.reason).inc()
                log.info("token %s invalid: %s", mask_token(target.token), answer.reason)
                return self._result(target, "invalid_token", error=answer.reason)
            return self._result(
                target,
                "failed",
                error=f"{answer.reason}, but the token was re-registered after the provider's"
                " timestamp; device kept",
                outcome="reregistered",
            )
        if answer.kind is Kind.CONFIGURATION:
            error = answer.reason
            if answer.setting is not None:
                error = f"app {app_id!r}: {answer.reason}; check apps.{answer.setting}"
            log.error("push configuration problem: %s", error)
            return self._result(target, "failed", error=error, outcome="configuration")
        return self._result(target, "failed", error=answer.reason, outcome=answer.kind.value)

    async def _send_with_retries(
        self, app_id: str, prepared: Prepared, delivery_id: str, dry_run: bool
    ) -> ProviderAnswer:
        deadline = self._clock() + RETRY_BUDGET_SECONDS
        answer = ProviderAnswer(Kind.RETRYABLE, reason="not sent")
        for attempt in range(MAX_TRIES):
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            started = self._clock()
            answer = await self._send_once(app_id, prepared, delivery_id, dry_run, remaining)
            self._metrics.push_provider_seconds.labels(prepared.target.platform).observe(
                self._clock() - started
            )
            if answer.kind is not Kind.RETRYABLE:
                return answer
            delay = FIRST_RETRY_DELAY * 2**attempt
            if attempt + 1 < MAX_TRIES and self._clock() + delay < deadline:
                await asyncio.sleep(delay)
        return ProviderAnswer(
            Kind.RETRYABLE, reason=f"gave up after {attempt + 1} tries: {answer.reason}"
        )

    async def _send_once(
        self, app_id: str, prepared: Prepared, delivery_id: str, dry_run: bool, budget: float
    ) -> ProviderAnswer:
        target = prepared.target
        try:
            async with asyncio.timeout(budget):
                if target.platform == "ios":
                    if dry_run:  # APNs has no validate-only mode: building the client checks
                        await self._providers.apns(app_id, target.environment)  # the key
                        return ProviderAnswer(Kind.VALIDATED)
                    return await self._providers.send_apns(
                        app_id, target.environment, target.token, prepared.payload, delivery_id
                    )
                # _prepare built a non-iOS target's payload with fcm_data(): string values only.
                data = cast("dict[str, str]", prepared.payload)
                return await self._providers.send_fcm(app_id, target.token, data, dry_run)
        except ConfigurationError as exc:  # its message names the app and the setting
            return ProviderAnswer(Kind.CONFIGURATION, reason=str(exc))
        except TimeoutError:
            return ProviderAnswer(Kind.RETRYABLE, reason="no answer from the provider in time")
        except (MaxAttemptsExceeded, ApnsConnectionError, OSError) as exc:
            return ProviderAnswer(Kind.RETRYABLE, reason=f"cannot reach the provider: {exc!r}")

    def _result(
        self,
        target: PushTarget,
        status: str,
        provider_id: str | None = None,
        error: str | None = None,
        outcome: str | None = None,
    ) -> PushResult:
        self._metrics.push_sends.labels(target.platform, outcome or status).inc()
        return PushResult(
            token=target.token,
            platform=target.platform,
            status=status,  # type: ignore[arg-type]
            provider_id=provider_id,
            error=error,
        )
