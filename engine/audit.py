"""The tamper-evident history: each history row's hash, chained to the row before it in
its case, and each day's anchor, chained to the day before (issue #15 item 4).

A row's hash is SHA-256 over the hash of the row before it (``""`` for a case's first
row) and the row's content in one canonical form: its case's number, its sequence
number, its time in UTC to the microsecond, the actor, the event, both states, the data
and the notes, as JSON with sorted keys and every number written one way. The form is
that of the values as the database gives them back, so SQLite and PostgreSQL (whose
JSONB reorders keys and may write ``1e20`` as ``100000000000000000000``) agree, and an
export imported elsewhere keeps its hashes (the case's number, not the database's own
id, is hashed). Changing a row, removing one or putting one in another's place breaks
its case's chain: :func:`verify_case` says where.

A day's anchor (:func:`anchor`) is SHA-256 over the anchor of the day before and every
row recorded that day (by its time, in the desk's time zone), each by its case number,
sequence number and hash. An auditor who notes a day's anchor down can later tell that
no row of that day or before was removed or changed since, even the last row of a case,
which no later row of its own chain covers.

Pure functions: the store computes hashes as it writes rows, ``Engine.verify_audit``
reads them back and checks them here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson

from .clock import SHANGHAI

#: the hash before a case's first row
GENESIS = ""
#: the anchor before the first day's
FIRST_ANCHOR = ""
#: how many hexadecimal characters a hash has (SHA-256)
HASH_CHARS = 64


def row_hash(
    prev: str,
    *,
    number: str,
    seq: int,
    at: datetime,
    actor: Mapping[str, Any],
    event: str,
    from_state: str | None,
    to_state: str,
    data: Any,
    notes: Sequence[str],
) -> str:
    """The hash of one history row of case ``number`` following a row whose hash is
    ``prev`` (``GENESIS`` for the first). ``actor``, ``data`` and ``notes`` as JSON
    decodes them (what the database gives back)."""
    return _digest(
        prev,
        [
            number,
            seq,
            _instant(at),
            _canonical(actor),
            event,
            from_state,
            to_state,
            _canonical(data),
            _canonical(notes),
        ],
    )


def written_row_hash(
    prev: str,
    *,
    number: str,
    seq: int,
    at: datetime,
    actor_json: str,
    event: str,
    from_state: str | None,
    to_state: str,
    data_json: bytes,
    notes: Sequence[str],
) -> str:
    """:func:`row_hash` of a row being written, from the JSON the store writes: the
    actor's as stored, and the data as orjson writes it with sorted keys (``data_json``).
    The same hash, without decoding the data and walking it when it holds no
    fraction or exponent (no float: nothing for :func:`_canonical` to rewrite)."""
    data = (
        orjson.Fragment(data_json)
        if _FRACTION.search(data_json) is None
        else _canonical(orjson.loads(data_json))
    )
    return _digest(
        prev,
        [
            number,
            seq,
            _instant(at),
            _actor(actor_json),
            event,
            from_state,
            to_state,
            data,
            _canonical(list(notes)),
        ],
    )


#: what every float orjson writes has, and no integer: a digit then a point or exponent
_FRACTION = re.compile(rb"[0-9][.eE]")


@lru_cache(maxsize=1024)
def _actor(text: str) -> orjson.Fragment:
    # The same few desk staff fire most events: one canonical form each.
    return orjson.Fragment(orjson.dumps(_canonical(orjson.loads(text)), option=_SORTED))


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


_SORTED = orjson.OPT_SORT_KEYS


def _digest(prev: str, content: list[Any]) -> str:
    text = orjson.dumps(content, option=_SORTED)
    return hashlib.sha256(prev.encode() + b"\n" + text).hexdigest()


def _canonical(value: Any) -> Any:
    """``value`` with every number as one text for one number: ``1``, ``1.0`` and
    PostgreSQL's ``1.0`` alike; ``1e20`` and ``100000000000000000000`` alike."""
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return value
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else orjson.Fragment(str(value))
    if isinstance(value, float | Decimal):
        if value != value or value in (float("inf"), float("-inf")):
            return None  # what orjson stores for them
        if value == 0:
            return 0
        number = Decimal(repr(value) if isinstance(value, float) else value).normalize()
        return orjson.Fragment(format(number, "f"))
    return value


# --- checking a case's chain --------------------------------------------------------------
@dataclass(frozen=True)
class StoredRow:
    """A history row as stored, with the hash stored with it."""

    seq: int
    at: datetime
    actor: Mapping[str, Any]
    event: str
    from_state: str | None
    to_state: str
    data: Any
    notes: Sequence[str]
    hash: str


@dataclass(frozen=True)
class ChainBreak:
    """Where a case's chain is broken, and how."""

    case: str
    #: the first row affected (None: the case itself)
    seq: int | None
    #: ``altered`` (a row's content or its place changed), ``missing`` (rows removed),
    #: ``unexpected`` (a row beyond the case's version)
    kind: str
    detail: str

    def __str__(self) -> str:
        where = f"{self.case} row {self.seq}" if self.seq is not None else self.case
        return f"{where}: {self.detail}"


def verify_case(number: str, version: int, rows: Sequence[StoredRow]) -> list[ChainBreak]:
    """Each break in the chain of case ``number`` (at ``version``) given its rows in
    stored order: none when every row follows the one before it and the rows are those
    of versions 1 to ``version``."""
    breaks: list[ChainBreak] = []
    prev, expected = GENESIS, 1
    for row in sorted(rows, key=lambda r: r.seq):
        if row.seq < expected:  # the same version twice: the unique index was bypassed
            breaks.append(ChainBreak(number, row.seq, "altered", "a second row of this version"))
            continue
        if row.seq > expected:  # the row after the gap chained to a removed one
            gap = f"{expected}" if row.seq == expected + 1 else f"{expected} to {row.seq - 1}"
            breaks.append(ChainBreak(number, expected, "missing", f"row(s) {gap} removed"))
        elif row.hash != row_hash(
            prev,
            number=number,
            seq=row.seq,
            at=row.at,
            actor=row.actor,
            event=row.event,
            from_state=row.from_state,
            to_state=row.to_state,
            data=row.data,
            notes=row.notes,
        ):
            breaks.append(
                ChainBreak(
                    number,
                    row.seq,
                    "altered",
                    "its hash does not match its content and the row before it: "
                    "the row was changed, or put in another's place",
                )
            )
        if row.seq > version:
            breaks.append(
                ChainBreak(
                    number, row.seq, "unexpected", f"a row beyond the case's version {version}"
                )
            )
        prev, expected = row.hash, row.seq + 1
    if expected <= version:
        gap = f"{expected}" if expected == version else f"{expected} to {version}"
        breaks.append(
            ChainBreak(
                number,
                expected,
                "missing",
                f"row(s) {gap} removed: the case is at version {version}",
            )
        )
    return breaks


# --- the days' anchors --------------------------------------------------------------------
def desk_day(at: datetime) -> date:
    """The day a row was recorded on, in the desk's time zone."""
    return at.astimezone(SHANGHAI).date()


def anchor(prev: str, day: date, rows: Iterable[tuple[str, int, str]]) -> str:
    """The anchor of ``day`` after a day whose anchor is ``prev``: over each row of the
    day, given as (case number, sequence number, hash) in any order."""
    digest = hashlib.sha256(f"{prev}\n{day.isoformat()}\n".encode())
    for number, seq, hash_ in sorted(rows):
        digest.update(f"{number} {seq} {hash_}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Anchor:
    """A day's anchor as sealed: what an auditor notes down."""

    day: date
    hash: str
    #: the rows the day recorded
    rows: int
    sealed_at: datetime


@dataclass(frozen=True)
class AnchorBreak:
    """A sealed day whose rows no longer give its anchor (or the anchor noted down)."""

    day: date
    detail: str

    def __str__(self) -> str:
        return f"{self.day.isoformat()}: {self.detail}"


@dataclass(frozen=True)
class AuditReport:
    """What ``Engine.verify_audit`` found."""

    cases: int
    rows: int
    anchors: int
    breaks: tuple[ChainBreak, ...]
    anchor_breaks: tuple[AnchorBreak, ...]

    @property
    def verified(self) -> bool:
        return not self.breaks and not self.anchor_breaks
