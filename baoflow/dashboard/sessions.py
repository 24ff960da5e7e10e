"""Who is looking: the signed session cookie, CSRF tokens, and the trusted header.

The session cookie holds the user id and the session's CSRF token, signed with the
dashboard's secret (itsdangerous: it cannot be forged or altered without the secret) and
valid for :data:`MAX_AGE`. It is ``HttpOnly`` (no script reads it), ``SameSite=Lax``
(another site's form post does not carry it) and ``Secure`` when the dashboard is served
over https. Every POST form carries the CSRF token as a hidden field, and a post whose
token does not match its session's — or whose ``Origin`` is another site — is refused.

The account is read on every request, so disabling a user ends their sessions at once.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "baoflow_session"
LANG_COOKIE = "baoflow_lang"
#: How long a session lasts after log-in (a working day and some).
MAX_AGE = 12 * 3600


@dataclass(frozen=True)
class Session:
    user_id: str | None
    csrf: str

    def with_user(self, user_id: str | None) -> Session:
        """A new session (a fresh CSRF token) for ``user_id``: a log-in or a log-out
        never keeps the token of the session before it."""
        return Session(user_id, secrets.token_urlsafe(24))


class Sessions:
    def __init__(self, secret: str | bytes) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="baoflow.dashboard.session")

    def read(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            raw: Any = self._signer.loads(cookie, max_age=MAX_AGE)
        except BadSignature:  # altered, signed with another secret, or expired
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("c"), str):
            return None
        user = raw.get("u")
        return Session(user if isinstance(user, str) else None, raw["c"])

    def new(self) -> Session:
        return Session(None, secrets.token_urlsafe(24))

    def dump(self, session: Session) -> str:
        return self._signer.dumps({"u": session.user_id, "c": session.csrf})


def csrf_ok(session: Session | None, posted: str | None) -> bool:
    return (
        session is not None
        and posted is not None
        and hmac.compare_digest(session.csrf.encode(), posted.encode())
    )
