"""The dashboard's accounts: passwords, and the limit on guessing them (issue #13).

A password is what a person chose: short and guessable, so its hash must make each
guess expensive — argon2 (through ``pwdlib``), not the fast SHA-256 the API's random
tokens get (engine/tokens.py says why those may be fast).

Guessing is also limited by count: after :data:`LIMIT` wrong passwords within
:data:`WINDOW` for one user id, or from one client, the next attempts are refused
unheard until :data:`PAUSE` has passed since the last wrong one. A guesser then gets
one try per pause. The wrong attempts are rows in the database, so every process of a
deployment counts the same ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from . import limits
from .errors import InvalidData, LogInRefused, Problem
from .types import User

if TYPE_CHECKING:
    from .store.rows import UserRecord

#: Wrong passwords, for a user id or from a client, before attempts are refused.
LIMIT = 5
#: How far back wrong passwords count.
WINDOW = timedelta(minutes=15)
#: How long attempts are refused after the last wrong password, once at the limit.
PAUSE = timedelta(minutes=5)
#: The shortest password an account may be given.
MIN_PASSWORD = 8

_hasher = PasswordHash((Argon2Hasher(),))
#: Verified against when the user id is unknown, so an unknown id takes as long to
#: refuse as a wrong password (the time must not tell which ids exist).
_DUMMY = _hasher.hash("not a password of anyone")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _hasher.verify(password, _DUMMY)
        return False
    return _hasher.verify(password, password_hash)


def checked(
    user_id: str, name: str, password: str, roles: Sequence[str], org_unit: str | None
) -> None:
    """Refuse an account nobody could use, or one acting as the system.

    Raises:
        InvalidData: with every problem.
    """
    problems = limits.text_problems(
        {
            "name": (limits.ACTOR_NAME, name),
            **{f"roles[{i}]": (limits.ROLE, role) for i, role in enumerate(roles)},
            "org_unit": (limits.ORG_UNIT, org_unit),
        }
    )
    if not user_id.strip() or user_id != user_id.strip() or not limits.ACTOR_ID.fits(user_id):
        problems.append(
            Problem(
                "id",
                f"a user id is 1 to {limits.ACTOR_ID.chars} characters, without spaces "
                "around it or control characters",
            )
        )
    if not name.strip():
        problems.append(Problem("name", "give the person's name, as pages show it"))
    if len(password) < MIN_PASSWORD:
        problems.append(Problem("password", f"a password has at least {MIN_PASSWORD} characters"))
    for i, role in enumerate(roles):
        if not role.strip():
            problems.append(Problem(f"roles[{i}]", "a role has a name"))
        if role == "system":
            problems.append(Problem(f"roles[{i}]", "a person may not act as the system"))
    if org_unit is not None and not org_unit.strip():
        problems.append(Problem("org_unit", "give the org unit's code, or none"))
    if problems:
        raise InvalidData("a user", problems)


def row_values(
    user_id: str,
    name: str,
    password: str,
    roles: Sequence[str],
    org_unit: str | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": user_id,
        "name": name.strip(),
        "roles": list(roles),
        "org_unit": org_unit,
        "password_hash": hash_password(password),
        "created_at": now,
        "disabled_at": None,
    }


def user_from_row(r: UserRecord) -> User:
    return User(
        id=r.id,
        name=r.name,
        roles=tuple(r.roles),
        org_unit=r.org_unit,
        created_at=r.created_at,
        disabled_at=r.disabled_at,
    )


def throttle(by_user: Sequence[datetime], by_client: Sequence[datetime], now: datetime) -> None:
    """Refuse the attempt unheard when the user id or the client is at the limit and
    the pause after its last wrong password has not passed.

    Raises:
        LogInRefused: ``throttled``, with how long to wait.
    """
    waits = [
        failures[0] + PAUSE - now
        for failures in (by_user, by_client)
        if len(failures) >= LIMIT and failures[0] + PAUSE > now
    ]
    if waits:
        wait = max(waits)
        minutes = max(1, -(-int(wait.total_seconds()) // 60))
        raise LogInRefused(
            "throttled",
            f"too many wrong passwords lately: try again in {minutes} minute"
            f"{'s' if minutes != 1 else ''}, or ask an administrator",
            retry_after=wait,
        )


def wrong() -> LogInRefused:
    return LogInRefused("wrong", "the user id or the password is wrong")
