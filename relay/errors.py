"""relay's error hierarchy. One middleware (`relay.api.middleware`) maps it to problem+json.

    RelayError                      500  unexpected; logged with its traceback, body says nothing
    ├── ClientError                 4xx  the request is at fault; the body says exactly why
    │   ├── MalformedRequest        400  the body is not JSON
    │   ├── Unauthenticated         401  missing, unknown or revoked key
    │   ├── Forbidden               403  the key's role may not do this
    │   ├── NotFound                404  no such resource (in this key's app)
    │   ├── PayloadTooLarge         413  body over the limit
    │   ├── RequestTimeout          408  the request did not arrive whole in time
    │   ├── Conflict                409  the thing exists already (a key's value)
    │   ├── UnsupportedMediaType    415  body is not application/json
    │   └── ValidationFailed        422  parses, but fields are wrong; carries FieldErrors
    ├── Unavailable                 503  not ready, shutting down, storage unavailable
    └── CannotStart                      start-up failed (an unusable database, a busy port)

Every client error names what failed; `errors` lists `{"path", "message"}` per field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class FieldError:
    """One failing field: ``path`` like ``metrics[3].token``, relative to the request body."""

    path: str
    message: str


class RelayError(Exception):
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"

    def __init__(self, detail: str = "", errors: list[FieldError] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors or []


class ClientError(RelayError):
    status = 400
    title = "Bad Request"


class MalformedRequest(ClientError):
    status = 400
    title = "Malformed request body"


class Unauthenticated(ClientError):
    status = 401
    title = "Unauthorized"


class Forbidden(ClientError):
    status = 403
    title = "Forbidden"


class NotFound(ClientError):
    status = 404
    title = "Not Found"


class PayloadTooLarge(ClientError):
    status = 413
    title = "Payload Too Large"


class RequestTimeout(ClientError):
    status = 408
    title = "Request Timeout"


class Conflict(ClientError):
    status = 409
    title = "Conflict"


class UnsupportedMediaType(ClientError):
    status = 415
    title = "Unsupported Media Type"


class ValidationFailed(ClientError):
    status = 422
    title = "Validation failed"

    @classmethod
    def at(cls, path: str, message: str) -> ValidationFailed:
        """A validation failure of a single field."""
        return cls(f"{path}: {message}", [FieldError(path, message)])


class Unavailable(RelayError):
    status = 503
    title = "Service Unavailable"

    def __init__(self, detail: str = "", retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class CannotStart(RelayError):
    """relay cannot start: the message names what (the database file, the address) and why."""
