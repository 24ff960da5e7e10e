"""Types every service-desk workflow shares: channels, ID numbers, phone numbers."""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

from baoflow.engine import SHANGHAI, format_when
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, ValidationInfo


class Channel(StrEnum):
    """报案/提请方式 (细则第四、五、六条)."""

    phone = "phone"  # 电话
    in_person = "in_person"  # 上门
    fax = "fax"  # 传真
    letter = "letter"  # 书信


CHANNEL_TITLES = {
    Channel.phone: "电话",
    Channel.in_person: "上门",
    Channel.fax: "传真",
    Channel.letter: "书信",
}

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")


def id_number_problem(value: str) -> str | None:
    """Why ``value`` is not a valid resident identity number (GB 11643-1999), or None."""
    if not _ID_SHAPE.match(value):
        return "must be 18 characters: 17 digits and a check character (0-9 or X)"
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return f"the birth date {value[6:14]} in it is not a real date"
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    expected = _ID_CHECK[total % 11]
    if value[17] != expected:
        return (
            f"the check digit is {value[17]!r} but the first 17 digits give {expected!r} "
            "(GB 11643); check the number with the customer"
        )
    return None


def _check_id(value: str) -> str:
    value = value.strip().upper()
    problem = id_number_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _check_phone(value: str) -> str:
    digits = re.sub(r"[\s-]", "", value)
    if not re.fullmatch(r"(\+?86)?(1[3-9]\d{9}|0\d{9,11})", digits):
        raise ValueError(
            "must be a mainland mobile (11 digits, 1[3-9]...) or a landline with area code"
        )
    return digits


def not_in_future(value: datetime, info: ValidationInfo) -> datetime:
    """An aware instant no later than the operation's now (given in the context)."""
    if value.tzinfo is None:
        # A desk enters local time; Beijing time is the only sensible reading.
        value = value.replace(tzinfo=SHANGHAI)
    now = (info.context or {}).get("now")
    if now is not None and value > now:
        raise ValueError(
            f"{value.isoformat()} is in the future (now is {now.astimezone(SHANGHAI).isoformat()})"
        )
    return value


IdNumber = Annotated[str, AfterValidator(_check_id)]
Phone = Annotated[str, AfterValidator(_check_phone)]
#: An e-mail address, checked for its shape only (whether it exists, only a mail tells).
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class Strict(BaseModel):
    """Payload models refuse unknown fields: a typo is an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Assignment(Strict):
    """指派经办人: the person who handles the case from now on — their id (as the desk's
    accounts or the app know them; the ``handler`` search key) and their name."""

    handler_id: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)
    ]
    handler_name: Text


def local_date(instant: Any) -> date:
    """The Beijing calendar day of an instant given as datetime or ISO text."""
    if isinstance(instant, str):
        return _local_date_of_text(instant)
    assert isinstance(instant, datetime)
    return instant.astimezone(SHANGHAI).date()


@lru_cache(maxsize=4096)
def _local_date_of_text(text: str) -> date:
    # Stored incident times are read on every review of their case: parse each once.
    return datetime.fromisoformat(text).astimezone(SHANGHAI).date()


class PolicyDetails(Strict):
    """The policy a request is about, as the customer gives it."""

    number: Text
    product_name: Text
    insured_name: Text


class Withdrawal(Strict):
    """The customer withdraws (a reason is recorded)."""

    reason: Text


def look_up_policy(ctx: Any) -> tuple[str, ...]:
    """Attach the product line of the request's policy from the directory (for rules
    that depend on it, e.g. life products' periods); if the policy is not one of ours,
    the request is still taken, and the note says to check where it was bought."""
    number = ctx.data["policy"]["number"]
    found = ctx.services.policies.get(number)
    if found is None:
        return (
            f"保单 {number} 不在本机构代理的保单中，请核实是否经本机构投保 "
            "(the policy is not one of ours)",
        )
    ctx.new_data["policy"] = {**ctx.new_data["policy"], "product_line": found.product_line}
    return ()


def beijing_minute(instant: Any) -> str:
    """An instant (datetime or ISO text) as people read it in a notice: Beijing time, to
    the minute (``2026-05-06 09:00``)."""
    return format_when(datetime.fromisoformat(instant) if isinstance(instant, str) else instant)
