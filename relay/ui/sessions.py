"""Dashboard sessions: server-side, in memory, keyed by a random cookie value.

A session holds the admin key it was opened with, so that every page checks the key again
(revoking it ends its sessions at once), a CSRF token for its forms, and the app it views.
Sessions end at logout, after ``LIFETIME`` seconds, or when relay restarts.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

COOKIE = "relay_session"
LOGIN_COOKIE = "relay_login_csrf"  # the login form's CSRF token, before any session exists
LIFETIME = 12 * 3600
MAX_SESSIONS = 1_000


@dataclass(slots=True)
class Session:
    id: str
    secret: str
    app_id: str
    csrf: str
    expires_at: float

    def csrf_ok(self, presented: str | None) -> bool:
        return tokens_match(self.csrf, presented)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, presented: str | None) -> bool:
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


class SessionStore:
    def __init__(self, lifetime: float = LIFETIME, limit: int = MAX_SESSIONS) -> None:
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lifetime = lifetime
        self._limit = limit

    def open(self, secret: str, app_id: str) -> Session:
        self._expire()
        while len(self._sessions) >= self._limit:
            self._sessions.popitem(last=False)  # the oldest goes first
        session = Session(new_token(), secret, app_id, new_token(), time.time() + self._lifetime)
        self._sessions[session.id] = session
        return session

    def find(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None or session.expires_at < time.time():
            self._sessions.pop(session_id or "", None)
            return None
        return session

    def close(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def _expire(self) -> None:
        now = time.time()
        for sid in [sid for sid, s in self._sessions.items() if s.expires_at < now]:
            del self._sessions[sid]
