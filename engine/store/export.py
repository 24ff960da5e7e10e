"""A case and every row of its own as one JSON-ready document, and back (issue #15
item 5: ``Engine.export_cases`` / ``import_cases``).

Each table's rows are written generically from its columns: a column added to one of
:data:`CASE_TABLES` travels without a change here. What a document leaves out is
listed in :data:`LEFT_OUT` with the reason, and ``tests/test_backups.py`` pins both,
so a new column is a decision, not an accident. The ids are the database's own: a
document names its case by number, a notice's parent by its key, and the ids the
engine writes into text (a notice's key names the case or timer that caused it, an
idempotent result the case it answered) by the number and the timer's place in the
document; an import gives them the ids it assigns.

Values are the same text on SQLite and PostgreSQL: instants ISO 8601 in UTC with
microseconds, dates ISO, decimals as strings, JSON columns as JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import ImportRefused
from . import tables as t
from .hot import case_number

#: The tables of a case, in the order a document holds them and an import writes them
#: (the timers before the notices whose keys name them).
CASE_TABLES: tuple[sa.Table, ...] = (
    t.case_keys,
    t.history,
    t.case_deadlines,
    t.timers,
    t.outbox,
    t.refusals,
    t.idempotency_keys,
)

_ID = "the database's own id, assigned anew on import"
_CASE = "the document's case (written as its number)"

#: The columns a document does not carry, per table, and why.
LEFT_OUT: dict[str, dict[str, str]] = {
    "cases": {"id": _ID},
    "case_keys": {"case_id": _CASE},
    "history": {"id": _ID, "case_id": _CASE},
    "case_deadlines": {"case_id": _CASE},
    "timers": {"id": _ID + "; its place among the case's timers stands for it", "case_id": _CASE},
    "outbox": {
        "id": _ID,
        "case_id": _CASE,
        "parent_id": "written as `parent`: the key of the notice the message came from",
    },
    "refusals": {"id": _ID, "case_id": _CASE},
    "idempotency_keys": {"case_id": _CASE},
}

#: What a document adds of its own: the remapped references, by table.
ADDED: dict[str, tuple[str, ...]] = {"outbox": ("parent",)}

#: Tables that name a case but are not a case's own, so not carried, and why.
NOT_CARRIED: dict[str, str] = {
    "inbound_messages": (
        "the insurers' messages are the desk's intake (some match no case), kept with "
        "the database: back it up whole (`baoflow db backup`, pg_dump)"
    ),
}

# The ids the engine writes into text: a notice's key starts with its cause,
# ``case:{case id}:{seq}`` (engine/transition.py) or ``timer:{timer id}``
# (engine/draining.py), and a message's key with its notice's.
_CASE_CAUSE = re.compile(r"case:(\d+):")
_TIMER_CAUSE = re.compile(r"timer:(\d+)(?![\d#])")
_TIMER_PLACE = re.compile(r"timer:(?P<number>[^:#>]+)#(?P<place>\d+)(?![\d])")
_NUMBER = re.compile(r"(?P<prefix>.+)-(?P<day>\d{8})-(?P<n>\d{6,})")


def _exported(table: sa.Table) -> list[sa.Column[Any]]:
    left_out = LEFT_OUT[table.name]
    return [c for c in table.columns if c.name not in left_out]


# --- values ------------------------------------------------------------------------
def _encode(column: sa.Column[Any], value: Any) -> Any:
    if value is None:
        return None
    kind = column.type
    if isinstance(kind, t.UTCDateTime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(kind, sa.JSON):
        return value
    if isinstance(kind, sa.Boolean):
        return bool(value)
    if isinstance(kind, sa.Float):
        return float(value)
    if isinstance(kind, sa.Numeric):
        return str(value)
    if isinstance(kind, sa.Integer):
        return int(value)
    if isinstance(kind, sa.Date):
        return value.isoformat()
    return str(value)


def _decode(column: sa.Column[Any], value: Any, where: str) -> Any:
    """``value`` as the file gives it, as the column stores it; ImportRefused if it
    cannot be."""
    if value is None:
        if not column.nullable:
            raise _malformed(f"{where} is null, which it may not be")
        return None
    kind = column.type
    try:
        if isinstance(kind, t.UTCDateTime):
            instant = datetime.fromisoformat(_text(value))
            if instant.tzinfo is None:
                raise ValueError("it has no UTC offset")
            return instant
        if isinstance(kind, sa.JSON):
            return value
        if isinstance(kind, sa.Boolean):
            if not isinstance(value, bool):
                raise ValueError("it is not true or false")
            return value
        if isinstance(kind, sa.Float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError("it is not a number")
            return float(value)
        if isinstance(kind, sa.Numeric):
            return Decimal(_text(value))
        if isinstance(kind, sa.Integer):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("it is not an integer")
            return value
        if isinstance(kind, sa.Date):
            return date.fromisoformat(_text(value))
        text = _text(value)
        length = getattr(kind, "length", None)
        if length is not None and len(text) > length:
            raise ValueError(f"it is {len(text)} characters long, the column holds {length}")
        return text
    except (ValueError, InvalidOperation) as exc:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:80] + "…"
        raise _malformed(f"{where} is {shown}: {exc or 'not a value of this column'}") from None


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("it is not a string")
    return value


def _malformed(message: str) -> ImportRefused:
    return ImportRefused("malformed", message)


def _row(table: sa.Table, raw: Any, where: str) -> dict[str, Any]:
    """A document's row of ``table`` decoded: exactly its exported columns (and the
    references ``ADDED``), or ImportRefused naming what is missing or unknown."""
    if not isinstance(raw, Mapping):
        raise _malformed(f"{where} is not an object")
    columns = _exported(table)
    names = {c.name for c in columns} | set(ADDED.get(table.name, ()))
    missing = sorted(names - set(raw))
    if missing:
        raise _malformed(f"{where} has no {', '.join(missing)}")
    unknown = sorted(set(raw) - names)
    if unknown:
        raise _malformed(
            f"{where} has {', '.join(unknown)}, which {table.name} has no column for "
            "(was it exported at another schema revision?)"
        )
    row = {c.name: _decode(c, raw[c.name], f"{where}.{c.name}") for c in columns}
    for name in ADDED.get(table.name, ()):
        row[name] = raw[name]
    return row


# --- the ids written into text -----------------------------------------------------
def _key_out(key: str, case_id: int, number: str, places: Mapping[int, int]) -> str:
    """A notice's key with the ids in it written as the case's number and the timer's
    place in the document."""
    key = _CASE_CAUSE.sub(lambda m: f"case:{number}:" if int(m[1]) == case_id else m[0], key)
    return _TIMER_CAUSE.sub(
        lambda m: f"timer:{number}#{places[int(m[1])]}" if int(m[1]) in places else m[0], key
    )


def _key_in(key: str, case_id: int, number: str, timer_ids: Sequence[int], where: str) -> str:
    key = key.replace(f"case:{number}:", f"case:{case_id}:")

    def timer(m: re.Match[str]) -> str:
        place = int(m["place"])
        if m["number"] != number or place >= len(timer_ids):
            raise _malformed(f"{where} names timer {m[0]!r}, which the case has not")
        return f"timer:{timer_ids[place]}"

    return _TIMER_PLACE.sub(timer, key)


def _result_out(result: Any) -> Any:
    """An idempotent result without its case's id: the case (``fire``) or the opening's
    result (``open_case``), as engine/idempotency.py stores them."""
    if isinstance(result, dict):
        if isinstance(result.get("case"), dict) and "id" in result["case"]:
            return {**result, "case": {**result["case"], "id": None}}
        if "id" in result and "number" in result:
            return {**result, "id": None}
    return result


def _result_in(result: Any, case_id: int) -> Any:
    if isinstance(result, dict):
        if isinstance(result.get("case"), dict) and result["case"].get("id", 0) is None:
            return {**result, "case": {**result["case"], "id": case_id}}
        if result.get("id", 0) is None and "number" in result:
            return {**result, "id": case_id}
    return result


class BackupStatements:
    """The export's reads and the import's writes, on a SQLAlchemy connection
    (``core.CoreTx``); ``tx.BackupTx`` is their contract."""

    conn: Connection

    def case_ids(self, after: int, limit: int) -> list[int]:
        c = t.cases.c
        q = sa.select(c.id).where(c.id > after).order_by(c.id).limit(limit)
        return [int(i) for i in self.conn.execute(q).scalars()]

    def export_cases(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        if not ids:
            return []
        c = t.cases.c
        cases = self.conn.execute(sa.select(t.cases).where(c.id.in_(ids)).order_by(c.id)).all()
        rows: dict[str, dict[int, list[sa.Row[Any]]]] = {}
        for table in CASE_TABLES:
            q = sa.select(table).where(table.c.case_id.in_(ids))
            if table is t.outbox:
                parent = t.outbox.alias("parent")
                q = sa.select(table, parent.c.key.label("parent")).select_from(
                    table.outerjoin(parent, parent.c.id == table.c.parent_id)
                )
                q = q.where(table.c.case_id.in_(ids))
            by_case: dict[int, list[sa.Row[Any]]] = {}
            for row in self.conn.execute(q):
                by_case.setdefault(int(row.case_id), []).append(row)
            rows[table.name] = by_case
        return [self._document(case, rows) for case in cases]

    def _document(
        self, case: sa.Row[Any], rows: Mapping[str, Mapping[int, list[sa.Row[Any]]]]
    ) -> dict[str, Any]:
        case_id, number = int(case.id), str(case.number)
        doc: dict[str, Any] = {
            "case": {
                str(col.name): _encode(col, case._mapping[col.name]) for col in _exported(t.cases)
            }
        }
        places: dict[int, int] = {}
        for table in CASE_TABLES:
            # In key order (the arrival order, for a table keyed by an id), sorted here:
            # SQLite and PostgreSQL may collate text differently.
            key = [col.name for col in table.primary_key.columns]
            found = sorted(
                rows[table.name].get(case_id, []), key=lambda r: [r._mapping[k] for k in key]
            )
            if table is t.timers:
                places = {int(r.id): i for i, r in enumerate(found)}
            out = []
            for r in found:
                m = r._mapping
                row = {str(col.name): _encode(col, m[col.name]) for col in _exported(table)}
                if table is t.outbox:
                    row["key"] = _key_out(row["key"], case_id, number, places)
                    parent = m["parent"]
                    row["parent"] = (
                        None if parent is None else _key_out(parent, case_id, number, places)
                    )
                elif table is t.idempotency_keys:
                    row["result"] = _result_out(row["result"])
                out.append(row)
            doc[str(table.name)] = out
        return doc

    def existing_numbers(self, numbers: Sequence[str]) -> set[str]:
        if not numbers:
            return set()
        c = t.cases.c
        return set(self.conn.execute(sa.select(c.number).where(c.number.in_(numbers))).scalars())

    def import_case(self, doc: Mapping[str, Any]) -> dict[str, int]:
        case = _row(t.cases, doc.get("case"), "case")
        unknown = sorted(set(doc) - {"case", *(table.name for table in CASE_TABLES)})
        if unknown:
            raise _malformed(f"the case has {', '.join(unknown)}, which a case export has not")
        decoded: dict[str, list[dict[str, Any]]] = {}
        for table in CASE_TABLES:
            raw = doc.get(table.name)
            if not isinstance(raw, list):
                raise _malformed(f"{table.name} is not a list of rows")
            decoded[table.name] = [_row(table, r, f"{table.name}[{i}]") for i, r in enumerate(raw)]
        number = case["number"]
        case_id = int(
            self.conn.execute(t.cases.insert().values(case).returning(t.cases.c.id)).scalar_one()
        )
        written = {"cases": 1}
        timer_ids: list[int] = []
        notices: dict[str, int] = {}
        for table in CASE_TABLES:
            rows = decoded[table.name]
            written[table.name] = len(rows)
            for row in rows:
                row["case_id"] = case_id
            if table is t.idempotency_keys:
                for row in rows:
                    row["result"] = _result_in(row["result"], case_id)
            if table is t.outbox:
                for i, row in enumerate(rows):
                    where = f"outbox[{i}]"
                    as_filed = row["key"]
                    row["key"] = _key_in(as_filed, case_id, number, timer_ids, f"{where}.key")
                    parent = row.pop("parent")
                    row["parent_id"] = (
                        None if parent is None else self._notice_id(parent, notices, where)
                    )
                    new_id = self.conn.execute(
                        table.insert().values(row).returning(table.c.id)
                    ).scalar_one()
                    notices[as_filed] = int(new_id)
                continue
            if rows:
                self.conn.execute(table.insert(), rows)
            if table is t.timers:
                q = sa.select(table.c.id).where(table.c.case_id == case_id).order_by(table.c.id)
                timer_ids = [int(i) for i in self.conn.execute(q).scalars()]
        return written

    def _notice_id(self, parent: Any, notices: Mapping[str, int], where: str) -> int:
        if isinstance(parent, str) and parent in notices:
            return notices[parent]
        raise _malformed(
            f"{where}.parent is {parent!r}: no notice of the case before it has that key"
        )

    def raise_case_counters(self, numbers: Sequence[str]) -> None:
        highest: dict[tuple[str, str], int] = {}
        for number in numbers:
            m = _NUMBER.fullmatch(number)
            if m is None or case_number(m["prefix"], m["day"], int(m["n"])) != number:
                continue  # not a number the counters give: nothing to collide with
            at = (m["prefix"], m["day"])
            highest[at] = max(highest.get(at, 0), int(m["n"]))
        if not highest:
            return
        bigger = "GREATEST" if self.conn.dialect.name == "postgresql" else "MAX"
        self.conn.execute(
            sa.text(
                "INSERT INTO case_counters (prefix, day, last) VALUES (:prefix, :day, :last) "
                f"ON CONFLICT (prefix, day) DO UPDATE SET last = {bigger}(case_counters.last, "
                "excluded.last)"
            ),
            [{"prefix": p, "day": d, "last": n} for (p, d), n in sorted(highest.items())],
        )
