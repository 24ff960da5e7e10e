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
        stored: the columns (``table.column``) it is kept in: a text column is
            ``chars`` long (tables.py takes the length from here), a JSON column holds
            it inside a document.
    """

    field: str
    chars: int
    lines: bool = False
    stored: tuple[str, ...] = ()

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
IDEMPOTENCY_KEY = Limit("an idempotency key", 200, stored=("idempotency_keys.key",))
WORKFLOW = Limit("a workflow name", 64, stored=("cases.workflow",))
EVENT = Limit(
    "an event name",
    64,
    stored=("history.event", "idempotency_keys.event", "refusals.event", "inbound_messages.event"),
)
STATE = Limit("a state name", 64, stored=("cases.state", "history.from_state", "history.to_state"))
CASE_NUMBER = Limit(
    "a case number",
    40,
    stored=("cases.number", "inbound_messages.case_number", "inbox.case_number"),
)

# The search keys a workflow copies out of its case data (``[workflow.index]``).
POLICY_NUMBER = Limit("a policy number", 64, stored=("cases.policy_number", "policies.number"))
INSURED_NAME = Limit(
    "an insured's name", 128, stored=("cases.insured_name", "policies.insured_name")
)
ID_NUMBER = Limit("an ID number", 32, stored=("cases.id_number", "policies.insured_id_number"))
INSURER_REFERENCE = Limit(
    "an insurer reference (insurer:reference)", 200, stored=("cases.insurer_reference",)
)
HANDLER = Limit("a handler's id", 64, stored=("cases.handler",))
OWN_KEY_NAME = Limit("a workflow's own search key name", 32, stored=("case_keys.key",))
OWN_KEY_VALUE = Limit("a workflow's own search key value", 200, stored=("case_keys.value",))

#: The built-in search keys (``definitions.SEARCH_KEYS``), each a column of ``cases``.
SEARCH_KEYS: Mapping[str, Limit] = {
    "policy_number": POLICY_NUMBER,
    "insured_name": INSURED_NAME,
    "id_number": ID_NUMBER,
    "insurer_reference": INSURER_REFERENCE,
    "handler": HANDLER,
}

# Who acts (kept whole in the history's JSON; the org unit also in cases.org_unit).
ACTOR_ID = Limit(
    "an actor's id",
    64,
    stored=("history.actor", "users.id", "inbox.user_id", "login_failures.user_id"),
)
ACTOR_NAME = Limit("an actor's name", 200, stored=("history.actor", "users.name"))
ORG_UNIT = Limit(
    "an org unit",
    64,
    stored=("cases.org_unit", "history.actor", "users.org_unit", "outbox.org_unit"),
)
ROLE = Limit("a role", 64, stored=("history.actor",))
#: The most roles one actor has.
ROLES_MAX = 32

# An insurer's message (engine/inbound.py, baoflow/api/webhooks.py).
INSURER = Limit("an insurer's name", 64, stored=("inbound_messages.insurer",))
MESSAGE_ID = Limit("an insurer's message id", 200, stored=("inbound_messages.message_id",))
MESSAGE_KIND = Limit("a message kind", 32, stored=("inbound_messages.kind",))
REFERENCE = Limit("an insurer's reference", 200, stored=("inbound_messages.reference",))
PERSON = Limit("who resolves an insurer's message", 200, stored=("inbound_messages.resolved_by",))

# The desk's own records of who may use it.
APP = Limit("an API token's app", 100, stored=("api_tokens.app",))

# Case and event data, an insurer's payload: JSON.
DATA_TEXT = Limit("text in data", 10_000, lines=True, stored=("cases.data", "history.data"))
DATA_KEY = Limit("a key in data", 128, stored=("cases.data", "history.data"))
#: The deepest nesting of mappings and lists in data (the top mapping is level 1).
DATA_DEPTH = 16
#: The most data one request carries, as compact UTF-8 JSON text, escapes aside (the
#: HTTP API's body limit).
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
    APP,
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


def filter_problems(fields: Mapping[str, Any]) -> list[Problem]:
    """The problems of search filters given as ``location: value``: a character no
    stored name can hold (a control character, NUL, a lone surrogate — which the
    databases' drivers refuse with their own errors). Length is no problem: a value
    longer than its column simply finds nothing."""
    return [
        Problem(location, _character(bad.group(), bad.start(), False, "a filter"))
        for location, value in fields.items()
        if isinstance(value, str) and (bad := _NOT_IN_A_NAME.search(value)) is not None
    ]


def actor_problems(actor: Any, location: str = "actor") -> list[Problem]:
    """What is wrong with an actor someone gave (its id, name, roles, org unit)."""
    try:
        id_, name, roles, unit = actor.id, actor.name, actor.roles, actor.org_unit
    except AttributeError:
        return [Problem(location, f"must be an Actor, not {type(actor).__name__}")]
    # On every fire(): one test of the lengths and one search of all the text.
    if (
        type(id_) is str
        and type(name) is str
        and type(roles) is tuple
        and (unit is None or type(unit) is str)
        and len(id_) <= ACTOR_ID.chars
        and len(name) <= ACTOR_NAME.chars
        and (unit is None or len(unit) <= ORG_UNIT.chars)
        and len(roles) <= ROLES_MAX
        and all(type(r) is str and len(r) <= ROLE.chars for r in roles)
        and not _NOT_IN_A_NAME.search("".join((id_, name, unit or "", *roles)))
    ):
        return []
    problems = text_problems(
        {f"{location}.id": (ACTOR_ID, id_), f"{location}.name": (ACTOR_NAME, name)},
        optional=False,
    )
    problems += text_problems({f"{location}.org_unit": (ORG_UNIT, unit)})
    if not isinstance(roles, tuple | list):
        problems.append(Problem(f"{location}.roles", "must be a list of roles"))
    elif len(roles) > ROLES_MAX:
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
    if type(data) is dict and not data:  # most events carry none
        return []
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


_TEXT_MAX = DATA_TEXT.chars
_KEY_MAX = DATA_KEY.chars
_text_bad = _NOT_IN_TEXT.search
_name_bad = _NOT_IN_A_NAME.search


def _utf8(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


class _Walk:
    """One pass over the data, stopping at the size limit or after PROBLEMS_MAX.

    ``size`` counts the data as compact UTF-8 JSON (``{"a":[1,"b"]}``), escapes aside;
    a date or a decimal as 32 bytes. A plain string, integer, boolean or None within
    its limits is taken in the loop over its mapping or list; only the rest goes
    through :meth:`visit`, where a problem is described. That keeps the check a few
    microseconds on a typical payload (it runs on every fire()).
    """

    __slots__ = ("problems", "size")

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.size = 0

    def done(self) -> bool:
        return self.size > DATA_BYTES or len(self.problems) >= PROBLEMS_MAX

    def visit(self, value: Any, location: str, depth: int) -> None:
        kind = type(value)  # the plain containers first: ABC checks cost a microsecond
        if (kind is dict or kind is list or kind is tuple) and depth <= DATA_DEPTH:
            if kind is dict:
                self._mapping(value, location, depth)
            else:
                self._items(value, location, depth)
        elif isinstance(value, str):
            if (p := DATA_TEXT.problem(value, location)) is not None:
                self.problems.append(p)
                self.size += len(value)
            else:  # no lone surrogate is left: the check refused those
                self.size += _utf8(value) + 2
        elif value is None or isinstance(value, bool):
            self.size += 5 if value is False else 4
        elif isinstance(value, int):
            if -INTEGER_MAX <= value <= INTEGER_MAX:
                self.size += len(str(value))
            else:
                self.size += 20
                self.problems.append(
                    Problem(
                        location,
                        f"is a {value.bit_length()}-bit integer; an integer in data is at "
                        f"most {INTEGER_MAX} (2**53 - 1) either way: give a longer number "
                        "as text",
                    )
                )
        elif isinstance(value, float):
            self.size += len(repr(value))
            if not math.isfinite(value):
                self.problems.append(
                    Problem(location, f"is {value}: numbers in data must be finite")
                )
        elif isinstance(value, bytes | bytearray | memoryview):
            self.problems.append(Problem(location, "give text (str), not bytes"))
        elif isinstance(value, Mapping | list | tuple | set | frozenset):
            if depth > DATA_DEPTH:
                self.problems.append(
                    Problem(
                        location,
                        f"is nested deeper than {DATA_DEPTH} levels; at most {DATA_DEPTH}",
                    )
                )
            elif isinstance(value, Mapping):
                self._mapping(value, location, depth)
            else:
                self._items(value, location, depth)
        else:  # a date, a decimal, an enum: the schema decides
            self.size += 32

    def _mapping(self, value: Mapping[Any, Any], location: str, depth: int) -> None:
        prefix = f"{location}." if location else ""
        size = 2 - bool(value)  # the braces; a comma after each entry but the last
        for key, item in value.items():
            if type(key) is not str:
                self.problems.append(Problem(f"{prefix}{key!r:.40}", "a key in data must be text"))
            elif len(key) > _KEY_MAX or _name_bad(key):
                problem = DATA_KEY.problem(key, f"{prefix}{shown(key)}")
                assert problem is not None
                self.problems.append(problem)
            else:
                size += _utf8(key) + 4  # its quotes, the colon, the comma
                plain = _plain_size(item)
                if plain is not None:
                    size += plain
                    continue
                self.size += size
                size = 0
                self.visit(item, f"{prefix}{key}", depth + 1)
            if self.done():
                break
        self.size += size

    def _items(self, value: Any, location: str, depth: int) -> None:
        prefix = f"{location}." if location else ""
        size = 2 - bool(value)
        for i, item in enumerate(value):
            size += 1  # its comma
            plain = _plain_size(item)
            if plain is not None:
                size += plain
                continue
            self.size += size
            size = 0
            self.visit(item, f"{prefix}{i}", depth + 1)
            if self.done():
                break
        self.size += size


def _plain_size(item: Any) -> int | None:
    """The compact-JSON size of a string, integer, boolean or null that breaks no limit
    (the common case, counted without a visit); None for anything to visit."""
    kind = type(item)
    if kind is str:
        return _utf8(item) + 2 if len(item) <= _TEXT_MAX and not _text_bad(item) else None
    if kind is int:
        return len(str(item)) if -INTEGER_MAX <= item <= INTEGER_MAX else None
    if kind is bool or item is None:
        return 5 if item is False else 4
    return None


def shown(key: str) -> str:
    """A refused key as a location: its first 40 characters, controls escaped (an error
    message must not carry what it refuses to a terminal)."""
    return escaped(key[:40])


def escaped(text: str) -> str:
    """``text`` with each character a name may not hold written as ``\\uXXXX``."""
    return _NOT_IN_A_NAME.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def markdown() -> str:
    """The limits as the Markdown table docs/embedding.md shows (a test keeps the two
    equal: regenerate with ``python -c "from baoflow.engine import limits;
    print(limits.markdown())"``)."""
    rows = ["| What | At most | Characters | Kept in |", "|---|---|---|---|"]
    for limit in TEXTS:
        characters = (
            "tab, line feed, carriage return; no other control character"
            if limit.lines
            else "no control character"
        )
        kept = ", ".join(f"`{column}`" for column in limit.stored)
        rows.append(f"| {limit.field} | {limit.chars:,} characters | {characters} | {kept} |")
    rows += [
        f"| roles of one actor | {ROLES_MAX} | | `history.actor` |",
        f"| nesting of data | {DATA_DEPTH} levels (the top mapping is 1) | | |",
        f"| data of one request | {DATA_BYTES:,} bytes as compact UTF-8 JSON | | |",
        f"| an integer in data | {INTEGER_MAX:,} either way (2**53 - 1) | | |",
        "| a float in data | finite (no NaN, no infinity) | | |",
    ]
    return "\n".join(rows)
