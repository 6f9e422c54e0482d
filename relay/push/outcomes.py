"""Provider answers, classified once: sent, dead token, retryable, or configuration.

APNs (aioapns ``NotificationResult``) and FCM (firebase-admin exceptions) speak differently;
everything after this module sees one `ProviderAnswer`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from aioapns.common import NotificationResult
from firebase_admin import exceptions as fb_errors
from firebase_admin import messaging


class Kind(enum.Enum):
    SENT = "sent"
    VALIDATED = "validated"
    DEAD_TOKEN = "dead_token"
    RETRYABLE = "retryable"
    CONFIGURATION = "configuration"
    FAILED = "failed"  # refused for a reason that is neither the token's nor the setup's


@dataclass(frozen=True, slots=True)
class ProviderAnswer:
    kind: Kind
    provider_id: str | None = None
    reason: str = ""
    setting: str | None = None  # the setting to fix, for CONFIGURATION
    unregistered_at: float | None = None  # APNs 410 timestamp, unix seconds


APNS_DEAD = frozenset({"BadDeviceToken", "Unregistered", "ExpiredToken"})
APNS_TOPIC_PROBLEMS = frozenset({"DeviceTokenNotForTopic", "TopicDisallowed", "BadTopic"})


def classify_apns(result: NotificationResult) -> ProviderAnswer:
    status, reason = str(result.status), result.description or ""
    if status == "200":
        return ProviderAnswer(Kind.SENT, result.notification_id)
    if reason in APNS_DEAD:
        moment = result.timestamp / 1000 if status == "410" and result.timestamp else None
        return ProviderAnswer(Kind.DEAD_TOKEN, reason=reason, unregistered_at=moment)
    if reason in APNS_TOPIC_PROBLEMS:
        return ProviderAnswer(Kind.CONFIGURATION, reason=reason, setting="apns.topic")
    if status == "403":
        return ProviderAnswer(
            Kind.CONFIGURATION, reason=reason, setting="apns.key_path, apns.key_id and apns.team_id"
        )
    if status == "429" or status.startswith("5"):
        return ProviderAnswer(Kind.RETRYABLE, reason=f"APNs {status} {reason}".strip())
    return ProviderAnswer(Kind.FAILED, reason=f"APNs {status} {reason}".strip())


def classify_fcm(response: messaging.SendResponse) -> ProviderAnswer:
    if response.success:
        return ProviderAnswer(Kind.SENT, response.message_id)
    error = response.exception
    text = str(error)
    if isinstance(error, messaging.UnregisteredError):
        return ProviderAnswer(Kind.DEAD_TOKEN, reason="UNREGISTERED")
    if isinstance(error, fb_errors.InvalidArgumentError):
        if "registration token" in text.lower() or "message.token" in text:
            return ProviderAnswer(Kind.DEAD_TOKEN, reason="INVALID_ARGUMENT (token)")
        return ProviderAnswer(Kind.FAILED, reason=f"INVALID_ARGUMENT: {text}")
    if isinstance(error, messaging.SenderIdMismatchError):
        return ProviderAnswer(
            Kind.CONFIGURATION,
            reason="SENDER_ID_MISMATCH",
            setting="fcm.credentials_path and fcm.project_id",
        )
    if isinstance(error, messaging.ThirdPartyAuthError):
        return ProviderAnswer(
            Kind.CONFIGURATION,
            reason="THIRD_PARTY_AUTH_ERROR (APNs credential in Firebase)",
            setting="fcm (the APNs key uploaded to the Firebase project)",
        )
    if isinstance(error, fb_errors.UnauthenticatedError | fb_errors.PermissionDeniedError):
        return ProviderAnswer(
            Kind.CONFIGURATION,
            reason=f"{type(error).__name__}: {text}",
            setting="fcm.credentials_path",
        )
    if isinstance(
        error,
        messaging.QuotaExceededError
        | fb_errors.UnavailableError
        | fb_errors.InternalError
        | fb_errors.DeadlineExceededError
        | fb_errors.ResourceExhaustedError,
    ):
        return ProviderAnswer(Kind.RETRYABLE, reason=f"{type(error).__name__}: {text}")
    return ProviderAnswer(Kind.FAILED, reason=f"{type(error).__name__}: {text}")
