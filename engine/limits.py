"""How long every text a user can give may be, and which characters it may hold:
declared once, here.

The schema's columns take their lengths from these declarations
(``engine/store/tables.py``), and the facade checks them on entry, before anything is
written: SQLite does not enforce a ``VARCHAR``'s length and PostgreSQL refuses a longer
value (and any NUL) with a driver error, so without the check the same input was stored
on one and a raw ``DataError`` on the other. Now both answer :class:`InvalidData`,
naming the field and its limit (docs/embedding.md has the table, checked against this
module by tests/test_entry_limits.py).

Characters: NUL, the C0 and C1 control characters and lone surrogates are refused
everywhere, with two exceptions — free text (strings in case and event data, an
insurer's payload, a reason given in words) may hold tab, line feed and carriage
return. Names, numbers, keys and ids hold none: a control character there is a paste
accident or an attack on whoever reads it on a terminal (ESC ``[2J`` clears a screen).
An insurer's message with one is refused, not stripped: a legal record is kept as sent
or not at all, and the sender is told why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidData, Problem

#: C0 controls (with NUL), DEL, C1 controls and lone surrogates: never in a name.
_NOT_IN_A_NAME = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: The same, except tab, line feed and carriage return: free text may break lines.
_NOT_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(frozen=True)
class Limit:
    """One kind of text someone can give.

    Attributes:
        field: what the field is called (in errors and in the docs' table).
        chars: the most characters it holds (code points, as Python and PostgreSQL's
            ``varchar(n)`` count them).
        lines: free text: tab, line feed and carriage return are allowed in it.
        stored: where it is kept: the column whose length is ``chars``, or the JSON it
            is part of.
    """

    field: str
    chars: int
    lines: bool = False
    stored: str = ""

    def problem(self, value: str, location: str, *, field: str | None = None) -> Problem | None:
        """What is wrong with ``value`` as this field (None: nothing); ``field`` names
        it in the message instead of :attr:`field`."""
        if len(value) > self.chars:
            return Problem(
                location,
                f"is {len(value)} characters; {field or self.field} holds at most {self.chars}",
            )
        bad = (_NOT_IN_TEXT if self.lines else _NOT_IN_A_NAME).search(value)
        if bad is not None:
            return Problem(
                location, _character(bad.group(), bad.start(), self.lines, field or self.field)
            )
        return None

    def fits(self, value: str) -> bool:
        return self.problem(value, "") is None


def _character(ch: str, at: int, lines: bool, field: str) -> str:
    code = f"U+{ord(ch):04X}"
    if ch == "\x00":
        return f"holds a NUL character ({code}) at position {at}: no text may"
    if "\ud800" <= ch <= "\udfff":
        return (
            f"holds a lone surrogate ({code}) at position {at}: not a character (the text "
            "was decoded wrongly)"
        )
    allowed = (
        "free text takes tab, line feed and carriage return, no other control character"
        if lines
        else f"{field} takes no control character"
    )
    return f"holds the control character {code} at position {at}: {allowed}"


# --- the fields ---------------------------------------------------------------------------
IDEMPOTENCY_KEY = Limit("an idempotency key", 200, stored="idempotency_keys.key")
WORKFLOW = Limit("a workflow name", 64, stored="cases.workflow")
EVENT = Limit("an event name", 64, stored="history.event")
STATE = Limit("a state name", 64, stored="cases.state")
CASE_NUMBER = Limit("a case number", 40, stored="cases.number")

# The search keys a workflow copies out of its case data (``[workflow.index]``).
POLICY_NUMBER = Limit("a policy number", 64, stored="cases.policy_number")
INSURED_NAME = Limit("an insured's name", 128, stored="cases.insured_name")
ID_NUMBER = Limit("an ID number", 32, stored="cases.id_number")
INSURER_REFERENCE = Limit(
    "an insurer reference (insurer:reference)", 200, stored="cases.insurer_reference"
)
HANDLER = Limit("a handler's id", 64, stored="cases.handler")
OWN_KEY_NAME = Limit("a workflow's own search key name", 32, stored="case_keys.key")
OWN_KEY_VALUE = Limit("a workflow's own search key value", 200, stored="case_keys.value")

#: The built-in search keys (``definitions.SEARCH_KEYS``), each a column of ``cases``.
SEARCH_KEYS: Mapping[str, Limit] = {
    "policy_number": POLICY_NUMBER,
    "insured_name": INSURED_NAME,
    "id_number": ID_NUMBER,
    "insurer_reference": INSURER_REFERENCE,
    "handler": HANDLER,
}

# Who acts (kept whole in the history's JSON; the org unit also in cases.org_unit).
ACTOR_ID = Limit("an actor's id", 64, stored="history.actor (JSON), users.id")
ACTOR_NAME = Limit("an actor's name", 200, stored="history.actor (JSON), users.name")
ORG_UNIT = Limit("an org unit", 64, stored="cases.org_unit, history.actor (JSON)")
ROLE = Limit("a role", 64, stored="history.actor (JSON)")
#: The most roles one actor has.
ROLES_MAX = 32

# An insurer's message (engine/inbound.py, baoflow/api/webhooks.py).
INSURER = Limit("an insurer's name", 64, stored="inbound_messages.insurer")
MESSAGE_ID = Limit("an insurer's message id", 200, stored="inbound_messages.message_id")
MESSAGE_KIND = Limit("a message kind", 32, stored="inbound_messages.kind")
REFERENCE = Limit("an insurer's reference", 200, stored="inbound_messages.reference")
PERSON = Limit("who resolves it", 200, stored="inbound_messages.resolved_by")

# Case and event data, an insurer's payload: JSON.
DATA_TEXT = Limit("text in data", 10_000, lines=True, stored="cases.data, history.data (JSON)")
DATA_KEY = Limit("a key in data", 128, stored="cases.data, history.data (JSON)")
#: The deepest nesting of mappings and lists in data (the top mapping is level 1).
DATA_DEPTH = 16
#: The most data one request carries, as UTF-8 JSON text (the HTTP API's body limit).
DATA_BYTES = 1 << 20
#: The largest integer in data, either sign: what every JSON reader (JavaScript's
#: included) reads exactly. Larger numbers go as text (amounts are decimals in text).
INTEGER_MAX = 2**53 - 1
#: A request stops being checked after this many problems (they are listed).
PROBLEMS_MAX = 20

#: Every declared text field, in the docs' order.
TEXTS = (
    IDEMPOTENCY_KEY,
    WORKFLOW,
    EVENT,
    STATE,
    CASE_NUMBER,
    POLICY_NUMBER,
    INSURED_NAME,
    ID_NUMBER,
    INSURER_REFERENCE,
    HANDLER,
    OWN_KEY_NAME,
    OWN_KEY_VALUE,
    ACTOR_ID,
    ACTOR_NAME,
    ORG_UNIT,
    ROLE,
    INSURER,
    MESSAGE_ID,
    MESSAGE_KIND,
    REFERENCE,
    PERSON,
    DATA_TEXT,
    DATA_KEY,
)


# --- checks -------------------------------------------------------------------------------
def refuse(what: str, problems: list[Problem]) -> None:
    """Raise :class:`InvalidData` for ``what`` if there is any problem."""
    if problems:
        raise InvalidData(what, problems[:PROBLEMS_MAX])


def text_problems(
    fields: Mapping[str, tuple[Limit, Any]], *, optional: bool = True
) -> list[Problem]:
    """The problems of each ``location: (limit, value)``; None is fine if ``optional``."""
    problems = []
    for location, (limit, value) in fields.items():
        if value is None and optional:
            continue
        if not isinstance(value, str):
            problems.append(Problem(location, f"must be text, not {type(value).__name__}"))
        elif (p := limit.problem(value, location)) is not None:
            problems.append(p)
    return problems


def actor_problems(actor: Any, location: str = "actor") -> list[Problem]:
    """What is wrong with an actor someone gave (its id, name, roles, org unit)."""
    roles = getattr(actor, "roles", None)
    if not isinstance(roles, tuple | list):
        return [Problem(f"{location}.roles", "must be a list of roles")]
    problems = text_problems(
        {
            f"{location}.id": (ACTOR_ID, getattr(actor, "id", None)),
            f"{location}.name": (ACTOR_NAME, getattr(actor, "name", None)),
        },
        optional=False,
    )
    problems += text_problems(
        {f"{location}.org_unit": (ORG_UNIT, getattr(actor, "org_unit", None))}
    )
    if len(roles) > ROLES_MAX:
        problems.append(
            Problem(
                f"{location}.roles", f"has {len(roles)} roles; an actor has at most {ROLES_MAX}"
            )
        )
    else:
        problems += text_problems(
            {f"{location}.roles[{i}]": (ROLE, r) for i, r in enumerate(roles)}, optional=False
        )
    return problems


def data_problems(data: Any, location: str = "") -> list[Problem]:
    """What is wrong with case or event data as JSON can keep it: every string (free
    text) and key within its limit, integers within ``INTEGER_MAX``, floats finite,
    nesting within ``DATA_DEPTH``, all of it within ``DATA_BYTES``. Other values
    (dates, decimals) are left to the workflow's schema."""
    walk = _Walk()
    walk.visit(data, location, 1)
    if walk.size > DATA_BYTES:
        walk.problems.append(
            Problem(
                location,
                f"the data is more than {DATA_BYTES} bytes as JSON; at most {DATA_BYTES} "
                "(keep documents outside and refer to them)",
            )
        )
    return walk.problems


class _Walk:
    """One pass over the data, stopping at the size limit or after PROBLEMS_MAX."""

    __slots__ = ("problems", "size")

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.size = 0

    def done(self) -> bool:
        return self.size > DATA_BYTES or len(self.problems) >= PROBLEMS_MAX

    def visit(self, value: Any, location: str, depth: int) -> None:
        if isinstance(value, str):
            if (p := DATA_TEXT.problem(value, location)) is not None:
                self.problems.append(p)
                self.size += len(value)
            elif value.isascii():
                self.size += len(value) + 2
            else:  # no lone surrogate is left: the check refused those
                self.size += len(value.encode()) + 2
        elif isinstance(value, bool) or value is None:
            self.size += 5
        elif isinstance(value, int):
            self.size += 20
            if not -INTEGER_MAX <= value <= INTEGER_MAX:
                self.problems.append(
                    Problem(
                        location,
                        f"is a {value.bit_length()}-bit integer; an integer in data is at "
                        f"most {INTEGER_MAX} (2**53 - 1) either way: give a longer number "
                        "as text",
                    )
                )
        elif isinstance(value, float):
            self.size += 24
            if not math.isfinite(value):
                self.problems.append(
                    Problem(location, f"is {value}: numbers in data must be finite")
                )
        elif isinstance(value, bytes | bytearray | memoryview):
            self.problems.append(Problem(location, "give text (str), not bytes"))
        elif isinstance(value, Mapping | list | tuple | set | frozenset):
            self._container(value, location, depth)
        else:  # a date, a decimal, an enum: the schema decides
            self.size += 32

    def _container(self, value: Any, location: str, depth: int) -> None:
        if depth > DATA_DEPTH:
            self.problems.append(
                Problem(
                    location, f"is nested deeper than {DATA_DEPTH} levels; at most {DATA_DEPTH}"
                )
            )
            return
        self.size += 2
        prefix = f"{location}." if location else ""
        if isinstance(value, Mapping):
            for key, item in value.items():
                if self.done():
                    return
                if not isinstance(key, str):
                    self.problems.append(
                        Problem(f"{prefix}{key!r}"[:200], "a key in data must be text")
                    )
                    continue
                where = f"{prefix}{key}" if len(key) <= DATA_KEY.chars else f"{prefix}{key[:40]}…"
                if (p := DATA_KEY.problem(key, where)) is not None:
                    self.problems.append(p)
                    continue
                self.size += len(key) + 4
                self.visit(item, where, depth + 1)
        else:
            for i, item in enumerate(value):
                if self.done():
                    return
                self.size += 1
                self.visit(item, f"{prefix}{i}", depth + 1)
