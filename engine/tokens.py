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
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from .errors import ApiTokenRejected, InvalidData, Problem
from .types import Actor, ApiToken

#: What every secret starts with (so a leaked one is recognisable, e.g. by scanners).
SECRET_PREFIX = "bf_"
#: How many characters of the secret are kept in clear to tell tokens apart.
SHOWN = 10
#: ``last_used_at`` is written at most this often per token: a request is a read, not
#: a write, except the first one in each such span.
TOUCH_EVERY = timedelta(minutes=1)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def checked(app: str, actor: Actor | None, act_for: Sequence[Actor]) -> None:
    """Refuse a token that could act as nobody, as the system, or twice as one person.

    Raises:
        InvalidData: with every problem.
    """
    problems = []
    if not app.strip():
        problems.append(Problem("app", "name the app the token is for"))
    if actor is None and not act_for:
        problems.append(
            Problem("actor", "a token acts as an actor or for named people: give one of them")
        )
    for where, a in [("actor", actor), *((f"act_for[{i}]", p) for i, p in enumerate(act_for))]:
        if a is None:
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


def token_from_row(r: Any) -> ApiToken:
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
