"""API tokens: how an app proves who it is to the HTTP API (issue #12).

A token is a random secret of 256 bits (``bf_`` and 43 URL-safe characters), shown once
when made. The database keeps only its SHA-256: a stolen copy of the table gives no
token. A slow password hash (argon2, bcrypt) is for what people choose — short,
guessable secrets, where each guess must be made expensive; a 256-bit random secret
cannot be guessed at any speed, so the fast hash loses nothing and lets every request
be checked with one indexed lookup of the digest.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import limits
from .clock import monotonic
from .errors import ApiTokenRejected, InvalidData, Problem
from .types import Actor, ApiToken

if TYPE_CHECKING:
    from .store.rows import ApiTokenRecord

#: What every secret starts with (so a leaked one is recognisable, e.g. by scanners).
SECRET_PREFIX = "bf_"
#: How many characters of the secret are kept in clear to tell tokens apart.
SHOWN = 10
#: ``last_used_at`` is written at most this often per token: a request is a read, not
#: a write, except the first one in each such span.
TOUCH_EVERY = timedelta(minutes=1)
#: How long a process trusts a token it has looked up before looking again. A revocation
#: reaches the process that made it at once and every other process within this.
TRUSTED_FOR = 2.0
#: How many tokens a process keeps looked up (the least recently looked up go first).
TRUSTED_MAX = 1024


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def checked(app: str, actor: Actor | None, act_for: Sequence[Actor]) -> None:
    """Refuse a token that could act as nobody, as the system, or twice as one person.

    Raises:
        InvalidData: with every problem.
    """
    problems = limits.text_problems({"app": (limits.APP, app)}, optional=False)
    if not app.strip():
        problems.append(Problem("app", "name the app the token is for"))
    if actor is None and not act_for:
        problems.append(
            Problem("actor", "a token acts as an actor or for named people: give one of them")
        )
    for where, a in [("actor", actor), *((f"act_for[{i}]", p) for i, p in enumerate(act_for))]:
        if a is None:
            continue
        if found := limits.actor_problems(a, where):
            problems += found
            continue
        if a.is_system:
            problems.append(Problem(where, "a token may not act as the system"))
        if not a.id.strip():
            problems.append(Problem(where, "an actor needs an id"))
    ids = [p.id for p in act_for]
    doubles = sorted({i for i in ids if ids.count(i) > 1})
    if doubles:
        problems.append(Problem("act_for", f"named more than once: {', '.join(doubles)}"))
    if problems:
        raise InvalidData("an API token", problems)


class Trusted:
    """The tokens this process looked up in the last :data:`TRUSTED_FOR` seconds, by
    digest: most requests of an app are then checked without a query (the lookup
    through the store costs several times a request's own work). Thread-safe."""

    def __init__(self, clock: Callable[[], float] = monotonic) -> None:
        self._clock = clock
        self._seen: OrderedDict[str, tuple[ApiToken, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest_: str) -> ApiToken | None:
        with self._lock:
            found = self._seen.get(digest_)
            if found is None:
                return None
            if self._clock() - found[1] > TRUSTED_FOR:
                del self._seen[digest_]
                return None
            self._seen.move_to_end(digest_)
            return found[0]

    def put(self, digest_: str, token: ApiToken) -> None:
        with self._lock:
            self._seen[digest_] = (token, self._clock())
            self._seen.move_to_end(digest_)
            while len(self._seen) > TRUSTED_MAX:
                self._seen.popitem(last=False)

    def forget(self, token_id: int) -> None:
        """Drop ``token_id`` (revoked here): its next request is looked up again."""
        with self._lock:
            for key in [k for k, (t, _) in self._seen.items() if t.id == token_id]:
                del self._seen[key]


def token_from_row(r: ApiTokenRecord) -> ApiToken:
    return ApiToken(
        id=r.id,
        app=r.app,
        prefix=r.prefix,
        actor=None if r.actor is None else Actor.from_json(r.actor),
        act_for=tuple(Actor.from_json(a) for a in r.act_for),
        created_at=r.created_at,
        last_used_at=r.last_used_at,
        revoked_at=r.revoked_at,
    )


def acting(token: ApiToken, act_for: str | None) -> Actor:
    """Who a request with ``token`` acts as: the person ``act_for`` names (one of the
    token's list), or the token's own actor.

    Raises:
        ApiTokenRejected: (reason ``act_for``) the token may not act for that person,
            or acts only for named people and the request names nobody.
    """
    allowed = [a.id for a in token.act_for]
    if act_for is None:
        if token.actor is None:
            raise ApiTokenRejected(
                "act_for",
                f"token {token.prefix}… ({token.app}) acts only for named people; name one "
                f"in the X-Act-For header: {', '.join(allowed)}",
                allowed,
            )
        return token.actor
    for person in token.act_for:
        if person.id == act_for:
            return person
    raise ApiTokenRejected(
        "act_for",
        f"token {token.prefix}… ({token.app}) may not act for {act_for!r}; it may act for: "
        f"{', '.join(allowed) or 'nobody (it acts as itself only)'}",
        allowed,
    )


def row_values(
    app: str, secret: str, actor: Actor | None, act_for: Sequence[Actor], now: datetime
) -> Mapping[str, Any]:
    return {
        "app": app.strip(),
        "prefix": secret[:SHOWN],
        "secret_hash": digest(secret),
        "actor": None if actor is None else actor.to_json(),
        "act_for": [p.to_json() for p in act_for],
        "created_at": now,
        "last_used_at": None,
        "revoked_at": None,
    }
