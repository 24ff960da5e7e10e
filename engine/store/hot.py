"""The statements a case operation runs, written once for SQLite and PostgreSQL and
executed on the DBAPI connection (``sqlite3`` or psycopg 3).

Why not SQLAlchemy Core for these: its per-statement and per-transaction machinery
cost several times the writes themselves (docs/benchmarks.md), and opening cases and
firing events is what a desk does all day. So the statements of a case operation — the
case, its history, its notices, its idempotency key, the deadlines and timers it
starts, stops, pauses, resumes or extends, the policy its review reads and the desk's
holiday arrangements — live here, once, as SQL text with ``?`` placeholders. A
:class:`Dialect` says the few things that differ: the placeholder, how an instant and
a JSON document travel, how a transaction begins, whether ``hold`` takes a lock.

:class:`HotStatements` is that set of statements over a DBAPI cursor. Two classes use
it: :class:`HotTx`, the transaction ``Store.fire_transaction()`` gives (its own
connection, ``BEGIN`` … ``COMMIT``), and ``core.CoreTx``, which runs the same
statements on its SQLAlchemy connection's driver connection inside SQLAlchemy's
transaction and adds the cold queries (reports, batches, accounts) in Core.
SQLAlchemy keeps the schema, Alembic, the main pool and those cold queries.

On PostgreSQL psycopg prepares a statement on the server once it has run it five
times on a connection, so each statement here is parsed and planned once per
connection. ``tests/test_store_contract.py`` runs both transaction kinds on both
databases and compares the rows written.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from .. import audit
from ..calendar import DeskDay, DeskYear
from ..definitions import SEARCH_KEYS
from ..errors import CaseNotFound, ConflictError
from ..limits import CASE_NUMBER
from ..policies import Policy
from ..types import Actor, Case, HistoryEntry
from .faults import Site
from .rows import DEADLINE_COLUMNS, MAX_ID, DeadlineRow, OutboxRow, TimerArm, is_case_id


# --- what differs between the databases ------------------------------------------------
def sqlite_time(instant: datetime) -> str:
    """An aware instant as SQLAlchemy stores it in SQLite: naive UTC text."""
    if instant.tzinfo is None:
        raise ValueError(f"refusing to store naive datetime {instant!r}; give it a time zone")
    # isoformat is several times cheaper than strftime and gives the same text.
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def pg_time(instant: datetime) -> datetime:
    """An aware instant as it travels to PostgreSQL's ``timestamptz``: in UTC."""
    if instant.tzinfo is None:
        raise ValueError(f"refusing to store naive datetime {instant!r}; give it a time zone")
    return instant.astimezone(UTC)


@lru_cache(maxsize=4096)
def parse_time(text: str) -> datetime:
    # Cached: a case's created_at is read back on every transition of it.
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _same(value: Any) -> Any:
    return value


_CENTS = Decimal("0.01")


class Dialect(NamedTuple):
    """What differs between SQLite and PostgreSQL for the statements of this module."""

    name: str
    #: the DBAPI's placeholder, for each ``?`` of the statements
    placeholder: str
    #: what starts a writing transaction
    begin: str
    #: an aware instant as a parameter
    time: Callable[[datetime], Any]
    #: a stored instant as an aware datetime in UTC
    read_time: Callable[[Any], datetime]
    #: a stored JSON column as Python (psycopg decodes JSONB itself)
    read_json: Callable[[Any], Any]
    #: a stored ``DATE``
    read_date: Callable[[Any], date]
    #: ``hold(key)``'s statement, or None where a writer holds the database already
    hold: str | None
    #: what ``calendar_generation(lock=True)`` appends to its read
    share_lock: str
    #: ``LIMIT`` without a bound
    no_limit: str
    #: a transaction's statements sent in pipeline mode: each write queued, not waited
    #: for, until a read or the commit needs the answers (psycopg 3)
    pipeline: bool
    #: ``case_number`` as SQL over the counter's ``last``, so that a case and its number
    #: are one statement; None: the counter is read first (SQLite: no DML in a CTE)
    case_number: str | None

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else _placeholders(text, self.placeholder)

    def read_decimal(self, value: Any) -> Decimal:
        # SQLite keeps Numeric(14, 2) as a float: read it as SQLAlchemy does.
        return Decimal(str(value)).quantize(_CENTS)


@lru_cache(maxsize=512)
def _placeholders(text: str, placeholder: str) -> str:
    if "%" in text:  # a literal % would be read as a placeholder by psycopg
        raise ValueError(f"statement holds a literal %: {text!r}")
    return text.replace("?", placeholder)


SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    begin="BEGIN IMMEDIATE",  # writers queue on the busy timeout, never on a stale snapshot
    time=sqlite_time,
    read_time=parse_time,
    read_json=orjson.loads,
    read_date=date.fromisoformat,
    hold=None,
    share_lock="",  # BEGIN IMMEDIATE holds the database: an import waits, or is waited for
    no_limit="-1",
    pipeline=False,  # in-process: there is no round trip to save
    case_number=None,
)
POSTGRESQL = Dialect(
    name="postgresql",
    placeholder="%s",
    begin="BEGIN",
    time=pg_time,
    read_time=_utc,
    read_json=_same,
    read_date=_same,
    # a transaction-scoped advisory lock on the key's 64-bit hash (lock_number)
    hold="SELECT pg_advisory_xact_lock(?)",
    share_lock=" FOR SHARE",
    no_limit="ALL",
    pipeline=True,
    case_number="lpad(last::text, greatest(6, length(last::text)), '0')",
)
DIALECTS = {d.name: d for d in (SQLITE, POSTGRESQL)}


def dialect(name: str) -> Dialect:
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"baoflow runs on SQLite or PostgreSQL, not {name!r}") from None


def lock_number(key: str) -> int:
    """``key`` as the signed 64-bit number PostgreSQL's advisory locks take (the first 8
    bytes of its SHA-256: distinct keys collide with odds of 2^-64, and a collision only
    makes two unrelated transactions wait for each other)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


def json_dumps(value: Any) -> str:
    """The one JSON encoding of the store (both paths): UTF-8 text, Chinese unescaped.

    orjson, because encoding the case data was the largest Python cost of a
    transition (~11 µs with the standard library, ~1 µs with orjson).
    """
    return orjson.dumps(value, default=_json_default).decode()


def json_sorted(value: Any) -> bytes:
    """``value`` as :func:`json_dumps` writes it, with its keys sorted: the form a
    history row's data is hashed in (``audit.written_row_hash``)."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_SORT_KEYS)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --- the statements ---------------------------------------------------------------------
_CASE_COLUMNS = (
    "id, number, workflow, workflow_version, state, data, version, created_at, updated_at, org_unit"
)
# A case with the hash of its last history row: the next row's chains to it.
_HEAD = "(SELECT hash FROM history AS h WHERE h.case_id = cases.id AND h.seq = cases.version)"
_SELECT_CASE = {
    "id": f"SELECT {_CASE_COLUMNS}, {_HEAD} FROM cases WHERE id = ?",
    "number": f"SELECT {_CASE_COLUMNS}, {_HEAD} FROM cases WHERE number = ?",
}
_SELECT_HEAD = "SELECT hash FROM history WHERE case_id = ? AND seq = ?"
_SELECT_VERSION = "SELECT version FROM cases WHERE id = ?"


def _update_sql(with_state: bool, with_keys: bool) -> str:
    sets = ["data = ?", "version = ?", "updated_at = ?"]
    if with_state:
        sets.insert(0, "state = ?")
    if with_keys:
        sets += [f"{key} = ?" for key in SEARCH_KEYS]
    return f"UPDATE cases SET {', '.join(sets)} WHERE id = ? AND version = ?"


# Columns left out of SET spare the database their index maintenance (state on SQLite:
# ~13 µs a write).
_UPDATES = {(s, k): _update_sql(s, k) for s in (False, True) for k in (False, True)}
_NEXT_NUMBER = (
    "INSERT INTO case_counters (prefix, day, last) VALUES (?, ?, 1) "
    "ON CONFLICT (prefix, day) DO UPDATE SET last = case_counters.last + 1 RETURNING last"
)
_CASE_VALUES = (
    "workflow, workflow_version, state, data, version, created_at, updated_at, org_unit, "
    + ", ".join(SEARCH_KEYS)
)
_CASE_MARKS = f"?, ?, ?, ?, 1, ?, ?, ?, {', '.join('?' * len(SEARCH_KEYS))}"
_INSERT_CASE = f"INSERT INTO cases (number, {_CASE_VALUES}) VALUES (?, {_CASE_MARKS}) RETURNING id"


@lru_cache(maxsize=4)
def _insert_numbered_case(number: str) -> str:
    """The counter's upsert and the case's insert as one statement, ``number`` the SQL
    of its number over the counter's ``last`` (``Dialect.case_number``)."""
    return (
        f"WITH counter AS ({_NEXT_NUMBER}) INSERT INTO cases (number, {_CASE_VALUES}) "
        f"SELECT ? || {number}, {_CASE_MARKS} FROM counter RETURNING id, number"
    )


def case_number(prefix: str, day: str, last: int) -> str:
    """A case's number: ``{prefix}-{day}-`` and its sequence number, six digits or more
    (``Dialect.case_number`` says the same in SQL)."""
    return f"{prefix}-{day}-{last:06d}"


_INSERT_OWN_KEY = "INSERT INTO case_keys (case_id, key, value) VALUES (?, ?, ?)"
_INSERT_HISTORY = (
    "INSERT INTO history (case_id, seq, at, actor, event, from_state, to_state, data, notes, "
    "hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_OUTBOX = (
    "INSERT INTO outbox (key, case_id, seq, template, recipient, org_unit, context, status, "
    "attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)"
)
_SELECT_HISTORY = (
    "SELECT seq, at, actor, event, from_state, to_state, data, notes "
    "FROM history WHERE case_id = ? ORDER BY seq"
)
_SELECT_KEY = "SELECT case_id, event, fingerprint, result FROM idempotency_keys WHERE key = ?"
_INSERT_KEY = (
    "INSERT INTO idempotency_keys (key, case_id, event, fingerprint, result, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_FILTERS = ("number", "policy_number", "insured_name", "id_number", "workflow")
POLICY_COLUMNS = (
    "number",
    "product_name",
    "product_line",
    "insured_name",
    "insured_id_number",
    "start_date",
    "end_date",
    "coverages",
    "sum_insured",
    "beneficiaries",
)
_SELECT_POLICY = f"SELECT {', '.join(POLICY_COLUMNS)} FROM policies WHERE number = ?"
_SELECT_ACTIVE_DEADLINES = (
    f"SELECT {', '.join(DEADLINE_COLUMNS)} FROM case_deadlines "
    "WHERE case_id = ? AND status IN ('running', 'paused')"
)
_SELECT_ACTIVE_DEADLINES_OF = {
    "id": _SELECT_ACTIVE_DEADLINES,
    "number": _SELECT_ACTIVE_DEADLINES.replace(
        "case_id = ?", "case_id = (SELECT id FROM cases WHERE number = ?)"
    ),
}
_INSERT_DEADLINE = (
    f"INSERT INTO case_deadlines ({', '.join(DEADLINE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(DEADLINE_COLUMNS))})"
)
_DEADLINE_TIMES = frozenset(("started_at", "due_at", "paused_since", "breached_at", "stopped_at"))
_INSERT_TIMER = (
    "INSERT INTO timers (case_id, rule, armed_seq, kind, level, due_at, status) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_RETIME_TIMER = (
    "UPDATE timers SET status = 'pending', due_at = ? WHERE case_id = ? AND rule = ? "
    "AND armed_seq = ? AND kind = ? AND level = ? AND status = ?"
)
_SELECT_GENERATION = "SELECT generation FROM calendar_state WHERE id = 1"
_SELECT_DESK_IMPORTS = (
    "SELECT id, year, source, imported_by, imported_at, override FROM calendar_imports "
    "WHERE current = ? ORDER BY year"
)


def _marks(count: int) -> str:
    return ", ".join("?" * count)


@lru_cache(maxsize=64)
def _update_deadline_sql(columns: tuple[str, ...]) -> str:
    unknown = set(columns) - set(DEADLINE_COLUMNS)
    if unknown:  # a programming error: the names come from engine/timers.py
        raise ValueError(f"case_deadlines has no column {sorted(unknown)}")
    sets = ", ".join(f"{column} = ?" for column in columns)
    return f"UPDATE case_deadlines SET {sets} WHERE case_id = ? AND rule = ? AND armed_seq = ?"


@lru_cache(maxsize=16)
def _set_timer_status_sql(count: int) -> str:
    return (
        "UPDATE timers SET status = ?, claimed_by = NULL, claimed_until = NULL "
        f"WHERE case_id = ? AND rule = ? AND armed_seq = ? AND status IN ({_marks(count)})"
    )


class StoredRequest(NamedTuple):
    case_id: int
    event: str
    fingerprint: str
    result: Any


class HotStatements:
    """A case operation's statements on a DBAPI cursor (``_cur``) of dialect ``_d``,
    inside a transaction someone else began. ``tx.Tx`` documents each method."""

    _cur: Any
    _d: Dialect
    _dumps: Callable[[Any], str]
    _now: datetime | None
    _now_text: Any
    #: what ``load_case(..., deadlines=True)`` read ahead: the calendar generation held,
    #: and (case id, its active deadline rows) until the transaction writes a deadline
    _held_generation: int | None = None
    _read_deadlines: tuple[int, list[Sequence[Any]]] | None = None
    #: the hash of each history row this transaction read or wrote, by (case id, seq):
    #: the row after it chains to it (engine/audit.py)
    _heads: dict[tuple[int, int], str]

    def _send(self, cur: Any, sql: str, params: Any, *, many: bool = False) -> Any:
        """The one place a statement goes to the database (benchmarks record here)."""
        sql = self._d.sql(sql)
        return cur.executemany(sql, params) if many else cur.execute(sql, params)

    def _run(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Send a write (its answer is not read)."""
        self._send(self._cur, sql, params)

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Send one write for each of ``rows``."""
        self._send(self._cur, sql, rows, many=True)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Send a statement whose rows are read; the cursor holding them."""
        return self._send(self._cur, sql, params)

    def _read_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        """Several reads' rows (on PostgreSQL sent together: one round trip)."""
        return [self._read(sql, params).fetchall() for sql, params in statements]

    def _checked_update(self, sql: str, params: Sequence[Any], case_id: int, expected: int) -> bool:
        """Send the version-checked update ``sql``: whether it matched its one row."""
        return int(self._send(self._cur, sql, params).rowcount) == 1

    def _time(self, instant: datetime) -> Any:
        # One operation writes its single "now" into several rows: convert it once.
        if instant is not self._now:
            self._now, self._now_text = instant, self._d.time(instant)
        return self._now_text

    def _value_time(self, value: Any) -> Any:
        return None if value is None else self._time(value)

    # --- cases ------------------------------------------------------------------------
    def load_case(self, ref: int | str, *, deadlines: bool = False) -> Case:
        key: int | str
        if isinstance(ref, int) or is_case_id(ref):
            # Past any BIGINT by its length: int() refuses over 4,300 digits with a ValueError.
            if (isinstance(ref, str) and len(ref.lstrip("0")) > 19) or not 0 < int(ref) <= MAX_ID:
                raise CaseNotFound(ref)
            by, key = "id", int(ref)
        elif not CASE_NUMBER.fits(ref):  # longer than any, or a NUL PostgreSQL refuses
            raise CaseNotFound(ref)
        else:
            by, key = "number", ref
        if not deadlines:
            row = self._read(_SELECT_CASE[by], (key,)).fetchone()
        else:  # the calendar held first: an import waits, or is waited for
            generation, rows, held = self._read_all(
                [
                    (_SELECT_GENERATION + self._d.share_lock, ()),
                    (_SELECT_CASE[by], (key,)),
                    (_SELECT_ACTIVE_DEADLINES_OF[by], (key,)),
                ]
            )
            self._held_generation = _generation(generation[0] if generation else None)
            row = rows[0] if rows else None
            if row is not None:
                self._read_deadlines = (int(row[0]), held)
        if row is None:
            raise CaseNotFound(ref)
        if row[10] is not None:
            self._heads[row[0], row[6]] = row[10]
        return self._case(row[:10])

    def current_version(self, case_id: int) -> int | None:
        row = self._read(_SELECT_VERSION, (case_id,)).fetchone()
        return None if row is None else int(row[0])

    def hold(self, key: str) -> None:
        if self._d.hold is not None:  # waited for by the next read
            self._run(self._d.hold, (lock_number(key),))

    def insert_case(
        self,
        *,
        prefix: str,
        day: str,
        workflow: str,
        workflow_version: int,
        state: str,
        data: Mapping[str, Any],
        now: datetime,
        keys: Mapping[str, str | None],
        org_unit: str | None = None,
    ) -> tuple[int, str]:
        at = self._time(now)
        values = [workflow, workflow_version, state, self._dumps(data), at, at, org_unit]
        values += (keys.get(key) for key in SEARCH_KEYS)
        if self._d.case_number is None:  # the counter, then the case
            last = int(self._read(_NEXT_NUMBER, (prefix, day)).fetchone()[0])
            number = case_number(prefix, day, last)
            case_id = int(self._read(_INSERT_CASE, [number, *values]).fetchone()[0])
        else:  # one statement: the counter's row feeds the case's
            sql = _insert_numbered_case(self._d.case_number)
            row = self._read(sql, [prefix, day, f"{prefix}-{day}-", *values])
            case_id, number = row.fetchone()
        self._write_own_keys(case_id, keys, replace=False)
        return int(case_id), str(number)

    def update_case(
        self,
        *,
        case_id: int,
        expected_version: int,
        state: str | None,
        data: Mapping[str, Any],
        now: datetime,
        keys: Mapping[str, str | None] | None,
    ) -> bool:
        params: list[Any] = [] if state is None else [state]
        params += (self._dumps(data), expected_version + 1, self._time(now))
        if keys is not None:
            params += [keys.get(key) for key in SEARCH_KEYS]
        params += (case_id, expected_version)
        sql = _UPDATES[state is not None, keys is not None]
        if not self._checked_update(sql, params, case_id, expected_version):
            return False
        if keys is not None:
            self._write_own_keys(case_id, keys, replace=True)
        return True

    def _write_own_keys(
        self, case_id: int, keys: Mapping[str, str | None], *, replace: bool
    ) -> None:
        """The workflow's own search keys among ``keys`` as ``case_keys`` rows (the
        built-in ones are columns); ``replace``: those keys' old rows deleted first."""
        own = sorted(key for key in keys if key not in SEARCH_KEYS)
        if not own:
            return
        if replace:
            self._run(
                f"DELETE FROM case_keys WHERE case_id = ? AND key IN ({_marks(len(own))})",
                [case_id, *own],
            )
        rows = [(case_id, key, keys[key]) for key in own if keys[key] is not None]
        if rows:
            self._run_many(_INSERT_OWN_KEY, rows)

    def find_cases(
        self,
        *,
        number: str | None = None,
        policy_number: str | None = None,
        insured_name: str | None = None,
        id_number: str | None = None,
        workflow: str | None = None,
        state: str | Sequence[str] | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[Case]:
        given = dict(
            zip(_FILTERS, (number, policy_number, insured_name, id_number, workflow), strict=True)
        )
        where = [f"{column} = ?" for column, value in given.items() if value is not None]
        params: list[Any] = [value for value in given.values() if value is not None]
        if isinstance(state, str):
            where.append("state = ?")
            params.append(state)
        elif state is not None:
            states = list(state)
            where.append(f"state IN ({_marks(len(states))})" if states else "1 = 0")
            params.extend(states)
        sql = f"SELECT {_CASE_COLUMNS} FROM cases"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if limit is None:
            sql += f" ORDER BY id LIMIT {self._d.no_limit} OFFSET ?"
            params.append(offset)
        else:
            sql += " ORDER BY id LIMIT ? OFFSET ?"
            params += [limit, offset]
        return [self._case(row) for row in self._read(sql, params).fetchall()]

    def _case(self, row: Sequence[Any]) -> Case:
        id_, number, workflow, workflow_version, state, data, version, created, updated, unit = row
        read_time = self._d.read_time
        return Case(
            id=id_,
            number=number,
            workflow=workflow,
            workflow_version=workflow_version,
            state=state,
            data=self._d.read_json(data),
            version=version,
            created_at=read_time(created),
            updated_at=read_time(updated),
            org_unit=unit,
        )

    # --- history and notices -----------------------------------------------------------
    def append_history(
        self,
        *,
        case_id: int,
        number: str,
        seq: int,
        at: datetime,
        actor: Actor,
        event: str,
        from_state: str | None,
        to_state: str,
        data: Mapping[str, Any],
        notes: Sequence[str],
    ) -> None:
        dumps = self._dumps
        actor_text, data_text, notes_list = _actor_text(actor, dumps), dumps(data), list(notes)
        hash_ = audit.written_row_hash(
            self._head(case_id, seq - 1),
            number=number,
            seq=seq,
            at=at,
            actor_json=actor_text,
            event=event,
            from_state=from_state,
            to_state=to_state,
            data_json=json_sorted(data),
            notes=notes_list,
        )
        self._run(
            _INSERT_HISTORY,
            (
                case_id,
                seq,
                self._time(at),
                actor_text,
                event,
                from_state,
                to_state,
                data_text,
                dumps(notes_list),
                hash_,
            ),
        )
        self._heads[case_id, seq] = hash_

    def _head(self, case_id: int, seq: int) -> str:
        """The hash of row ``seq`` of the case (``audit.GENESIS`` before its first)."""
        if seq < 1:
            return audit.GENESIS
        known = self._heads.get((case_id, seq))
        if known is None:
            row = self._read(_SELECT_HEAD, (case_id, seq)).fetchone()
            if row is None:  # removed behind the engine's back: verify_audit says so
                return audit.GENESIS
            known = self._heads[case_id, seq] = str(row[0])
        return known

    def history(self, case_id: int) -> list[HistoryEntry]:
        read_time, read_json = self._d.read_time, self._d.read_json
        return [
            HistoryEntry(
                seq=seq,
                at=read_time(at),
                actor=Actor.from_json(read_json(actor)),
                event=event,
                from_state=from_state,
                to_state=to_state,
                data=read_json(data),
                notes=tuple(read_json(notes)),
            )
            for seq, at, actor, event, from_state, to_state, data, notes in self._read(
                _SELECT_HISTORY, (case_id,)
            ).fetchall()
        ]

    def insert_outbox(self, rows: Sequence[OutboxRow], now: datetime) -> None:
        if not rows:
            return
        at = self._time(now)
        dumps = self._dumps
        self._run_many(
            _INSERT_OUTBOX,
            [
                (
                    r["key"],
                    r["case_id"],
                    r["seq"],
                    r["template"],
                    r["recipient"],
                    r["org_unit"],
                    dumps(r["context"]),
                    at,
                    at,
                )
                for r in rows
            ],
        )

    # --- idempotency -------------------------------------------------------------------
    def idempotent_result(self, key: str) -> StoredRequest | None:
        row = self._read(_SELECT_KEY, (key,)).fetchone()
        if row is None:
            return None
        return StoredRequest(row[0], row[1], row[2], self._d.read_json(row[3]))

    def remember_result(
        self,
        *,
        key: str,
        case_id: int,
        event: str,
        fingerprint: str,
        result: Any,
        now: datetime,
    ) -> None:
        self._run(
            _INSERT_KEY, (key, case_id, event, fingerprint, self._dumps(result), self._time(now))
        )

    # --- policies ------------------------------------------------------------------------
    def policy(self, number: str) -> Policy | None:
        """The policy with this number, or None."""
        row = self._read(_SELECT_POLICY, (number,)).fetchone()
        return None if row is None else policy_of(row, self._d)

    def policies_by_insured(self, name: str, id_number: str | None) -> list[Policy]:
        """The policies of an insured person, by policy number."""
        sql = f"SELECT {', '.join(POLICY_COLUMNS)} FROM policies WHERE insured_name = ?"
        params = [name]
        if id_number is not None:
            sql += " AND insured_id_number = ?"
            params.append(id_number)
        rows = self._read(sql + " ORDER BY number", params).fetchall()
        return [policy_of(row, self._d) for row in rows]

    # --- deadlines and their timers ----------------------------------------------------
    def active_deadlines(self, case_id: int) -> list[DeadlineRow]:
        held = self._read_deadlines
        if held is not None and held[0] == case_id:
            rows = held[1]
        else:
            rows = self._read(_SELECT_ACTIVE_DEADLINES, (case_id,)).fetchall()
        return [self._deadline(row) for row in rows]

    def _deadline_written(self, case_id: int) -> None:
        # What load_case read ahead is no longer what this transaction has.
        if self._read_deadlines is not None and self._read_deadlines[0] == case_id:
            self._read_deadlines = None

    def insert_deadline(self, row: DeadlineRow) -> None:
        self._deadline_written(row.case_id)
        self._run(
            _INSERT_DEADLINE,
            [
                self._value_time(value) if name in _DEADLINE_TIMES else value
                for name, value in zip(DEADLINE_COLUMNS, row, strict=True)
            ],
        )

    def update_deadline(self, case_id: int, rule: str, armed_seq: int, **values: Any) -> None:
        params = [
            self._value_time(value) if name in _DEADLINE_TIMES else value
            for name, value in values.items()
        ]
        self._deadline_written(case_id)
        self._run(_update_deadline_sql(tuple(values)), [*params, case_id, rule, armed_seq])

    def insert_timers(self, rows: Sequence[TimerArm]) -> None:
        if not rows:
            return
        time = self._d.time
        self._run_many(
            _INSERT_TIMER,
            [
                (
                    r["case_id"],
                    r["rule"],
                    r["armed_seq"],
                    r["kind"],
                    r["level"],
                    time(r["due_at"]),
                    r["status"],
                )
                for r in rows
            ],
        )

    def set_timer_status(
        self, case_id: int, rule: str, armed_seq: int, *, from_: Sequence[str], to: str
    ) -> None:
        self._run(_set_timer_status_sql(len(from_)), [to, case_id, rule, armed_seq, *from_])

    def retime_timer(
        self,
        case_id: int,
        rule: str,
        armed_seq: int,
        kind: str,
        level: int,
        due: datetime,
        status: str = "paused",
    ) -> None:
        self._run(_RETIME_TIMER, (self._d.time(due), case_id, rule, armed_seq, kind, level, status))

    def _deadline(self, row: Sequence[Any]) -> DeadlineRow:
        (case_id, rule, seq, started, due, status, reason, since, paused, warned, breached,
         level, stopped, calendar, period, provisional) = row  # fmt: skip
        read_time = self._d.read_time
        return DeadlineRow(
            case_id,
            rule,
            seq,
            read_time(started),
            read_time(due),
            status,
            reason,
            None if since is None else read_time(since),
            paused,
            warned,
            None if breached is None else read_time(breached),
            level,
            None if stopped is None else read_time(stopped),
            calendar,
            period,
            provisional,
        )

    # --- the desk's holiday arrangements -----------------------------------------------
    def calendar_generation(self, *, lock: bool = False) -> int:
        """Which stored arrangements are current. With ``lock`` (a transaction that
        computes deadlines), under a share lock on PostgreSQL: an import in flight is
        waited for and then seen, and an import that starts later waits for this
        transaction, whose deadlines it then recomputes. (On SQLite the writing
        transaction holds the database already.)"""
        if lock and self._held_generation is not None:
            return self._held_generation  # held since load_case(..., deadlines=True)
        sql = _SELECT_GENERATION + (self._d.share_lock if lock else "")
        row = self._read(sql).fetchone()
        return _generation(row)

    def hold_calendar(self) -> None:
        self._held_generation = self.calendar_generation(lock=True)

    def desk_years(self) -> list[DeskYear]:
        """The current arrangement of every year the desk imported, with its days."""
        imports = self._read(_SELECT_DESK_IMPORTS, (True,)).fetchall()
        if not imports:
            return []
        days: dict[int, list[DeskDay]] = {row[0]: [] for row in imports}
        read_date = self._d.read_date
        for import_id, day, working, name, line in self._read(
            "SELECT import_id, day, working, name, line FROM calendar_days "
            f"WHERE import_id IN ({_marks(len(days))}) ORDER BY day",
            list(days),
        ).fetchall():
            days[import_id].append(DeskDay(read_date(day), bool(working), name, line))
        return [
            DeskYear(
                year=year,
                days=tuple(days[id_]),
                source=source,
                imported_by=by,
                imported_at=self._d.read_time(at),
                import_id=id_,
                override=bool(override),
            )
            for id_, year, source, by, at, override in imports
        ]


def _generation(row: Sequence[Any] | None) -> int:
    return int(row[0]) if row and row[0] is not None else 0


def policy_of(row: Sequence[Any], d: Dialect) -> Policy:
    """A ``policies`` row (its ``POLICY_COLUMNS``, as the DBAPI returns them) as a Policy."""
    number, product, line, name, id_number, start, end, coverages, amount, heirs = row
    return Policy(
        number=number,
        product_name=product,
        product_line=line,
        insured_name=name,
        insured_id_number=id_number,
        start_date=d.read_date(start),
        end_date=d.read_date(end),
        coverages=tuple(d.read_json(coverages)),
        sum_insured=d.read_decimal(amount),
        beneficiaries=tuple(d.read_json(heirs)),
    )


@lru_cache(maxsize=1024)
def _actor_text(actor: Actor, dumps: Callable[[Any], str]) -> str:
    # The same few desk staff fire most events: encode each actor once.
    return dumps(actor.to_json())


# --- the transaction fire() runs in, on its own connection ---------------------------------
def sqlite_setup(conn: sqlite3.Connection) -> None:
    """The one set of settings every SQLite connection of the store gets (the hot path's
    and SQLAlchemy's): transactions begun by hand, WAL, a 30 s busy wait."""
    conn.isolation_level = None  # no implicit BEGIN: it would defeat BEGIN IMMEDIATE
    cur = conn.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        "busy_timeout=30000",
    ):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


class HotTx(HotStatements):
    """One case operation's transaction on a connection of its own (``HotPath``):
    ``BEGIN`` … ``COMMIT`` or ``ROLLBACK``, each statement waited for. SQLite's (and
    PostgreSQL's when ``Dialect.pipeline`` is off); :class:`PipelineTx` is PostgreSQL's."""

    __slots__ = (
        "_conn",
        "_cur",
        "_d",
        "_dumps",
        "_heads",
        "_held_generation",
        "_now",
        "_now_text",
        "_path",
        "_read_deadlines",
    )

    def __init__(self, path: HotPath, conn: Any) -> None:
        self._path = path
        self._conn = conn
        self._cur = conn.cursor()
        self._d = path.dialect
        self._dumps = path.dumps
        self._now: datetime | None = None
        self._now_text: Any = None
        self._held_generation = None
        self._read_deadlines = None
        self._heads = {}

    # A class, not a generator-based context manager: this runs on every transition.
    # A failure of the database itself leaves it as StorageUnavailable (HotPath.raise_fault).
    def __enter__(self) -> HotTx:
        try:
            self._cur.execute(self._d.begin)
        except Exception as exc:
            if not getattr(self._conn, "broken", False):
                self._path.checkin(self._conn, broken=False)
                self._path.raise_fault(exc, self._conn)
                raise
            # An idle pooled connection the server dropped (a restart): nothing was
            # sent on it yet, so begin once more on a new one.
            self._path.checkin(self._conn, broken=True)
            self._conn = self._path.checkout(new=True)
            self._cur = self._conn.cursor()
            try:
                self._cur.execute(self._d.begin)
            except Exception as again:
                self._path.checkin(self._conn, broken=True)
                self._path.raise_fault(again, self._conn)
                raise
            except BaseException:
                self._path.checkin(self._conn, broken=True)
                raise
        return self

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        if exc is not None:
            self._path.checkin(self._conn, broken=self._rollback())
            self._path.raise_fault(exc, self._conn)
            return
        try:
            self._cur.execute("COMMIT")
        except BaseException as failure:
            self._path.checkin(self._conn, broken=self._rollback())
            self._path.raise_fault(failure, self._conn, committing=True)
            raise
        self._path.checkin(self._conn, broken=False)

    def _rollback(self) -> bool:
        """End the transaction without its writes; whether the connection broke."""
        try:
            if _in_transaction(self._conn):
                self._conn.cursor().execute("ROLLBACK")
            return False
        except Exception:
            return True


class PipelineTx(HotTx):
    """PostgreSQL's :class:`HotTx`, in psycopg's pipeline mode: statements are queued
    and sent without waiting for their answers until a read needs its rows, so a
    ``fire()`` that moves a claim on costs two round trips: ``BEGIN`` with its first
    reads (the case, the calendar generation, its running deadlines:
    ``load_case(..., deadlines=True)``), then every write and the ``COMMIT``.

    The version-checked update is sent as one statement that fails when it matched no
    row, so it need not be waited for either: :class:`ConflictError` is raised when the
    block ends (or at its next read), everything rolled back. A failed statement's
    error, likewise, is raised at the next wait — inside the ``with`` block or at its
    end — and the transaction is rolled back either way. A pooled connection the server
    dropped (a restart) fails at ``BEGIN``, a write or the first wait, before anything
    was done on it: the transaction then begins again, once, on a new connection.
    """

    __slots__ = ("_calendar_read", "_moved", "_pipe", "_retried", "_unconfirmed")

    def __init__(self, path: HotPath, conn: Any) -> None:
        super().__init__(path, conn)
        self._pipe: Any = None  # (psycopg's pipeline context, the pipeline)
        self._calendar_read: str | None = None  # hold_calendar's, not sent yet
        #: the writes sent before the first wait, to send again on a new connection
        self._unconfirmed: list[tuple[str, Any, bool]] | None = None
        self._retried = False  # on a new connection once already
        #: (case id, expected version) of an update whose match is checked at the end
        self._moved: tuple[int, int] | None = None

    def __enter__(self) -> PipelineTx:
        try:
            self._begin()
        except BaseException as exc:
            try:
                if not self._dropped(exc):
                    raise
                self._reconnect()
            except BaseException as failure:
                self._path.checkin(self._conn, broken=self._rollback())
                self._path.raise_fault(failure, self._conn)
                raise
        return self

    def _begin(self) -> None:
        self._unconfirmed = []
        context = self._conn.pipeline()
        self._pipe = (context, context.__enter__())
        self._cur.execute(self._d.begin)  # its answer comes with the first wait

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        if exc is not None:  # raised in the block: it propagates, or its conflict does
            self._end_failed(exc)
            return
        try:
            self._cur.execute("COMMIT")
            context, self._pipe = self._pipe[0], None
            context.__exit__(None, None, None)  # waits: raises a failed write's error
        except BaseException as failure:
            # Every write goes with the COMMIT: a connection lost here may have lost
            # the answer of a commit that was done.
            self._end_failed(failure, committing=True)
            raise
        self._path.checkin(self._conn, broken=False)

    def _end_failed(self, exc: BaseException, *, committing: bool = False) -> None:
        """Roll back after ``exc``; raise the ConflictError it stands for, if it does, or
        the StorageUnavailable (a lost connection)."""
        broken = self._rollback()
        conflict = None if broken else self._conflict(exc)
        self._path.checkin(self._conn, broken=broken)
        if conflict is not None:  # the update matched no row
            raise conflict from None
        self._path.raise_fault(exc, self._conn, committing=committing)

    def _conflict(self, exc: BaseException) -> ConflictError | None:
        """The ConflictError an update that matched no row stands for, if ``exc`` is it."""
        if self._moved is None or getattr(exc, "sqlstate", None) != _MATCHED_NO_ROW:
            return None
        case_id, expected = self._moved
        try:
            row = self._conn.execute(_SELECT_NUMBER_VERSION, (case_id,)).fetchone()
        except Exception:  # the conflict stands; only its figures are unknown
            row = None
        return ConflictError(
            str(case_id) if row is None else row[0], expected, None if row is None else row[1]
        )

    def _rollback(self) -> bool:
        if self._pipe is not None:
            context, self._pipe = self._pipe[0], None
            with contextlib.suppress(Exception):  # the error is known, or it broke
                context.__exit__(None, None, None)
        return super()._rollback()

    def _send(self, cur: Any, sql: str, params: Any, *, many: bool = False) -> Any:
        if self._unconfirmed is None or cur is not self._cur:
            return super()._send(cur, sql, params, many=many)
        self._unconfirmed.append((sql, params, many))  # a write before the first wait
        try:
            return super()._send(cur, sql, params, many=many)
        except Exception as exc:
            if not self._dropped(exc):
                raise
            self._reconnect()  # sends it again, after everything before it
            return None

    def hold_calendar(self) -> None:
        self._calendar_read = _SELECT_GENERATION + self._d.share_lock  # with the next wait

    def calendar_generation(self, *, lock: bool = False) -> int:
        if self._calendar_read is not None:
            self._wait([])
        return super().calendar_generation(lock=lock)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._wait([(sql, params)])[0]

    def _read_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        return [cur.fetchall() for cur in self._wait(statements)]

    def _checked_update(self, sql: str, params: Sequence[Any], case_id: int, expected: int) -> bool:
        self._run(_MATCH_ONE.format(update=sql), params)
        self._moved = (case_id, expected)
        return True  # or ConflictError when the block ends

    def _wait(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Send ``statements`` (each on a cursor of its own: in pipeline mode a cursor
        holds the answer of the last statement sent on it) and wait for their answers and
        everything queued before them; the cursors."""
        held = self._calendar_read  # hold_calendar's read goes first
        if held is not None:
            statements = [(held, ()), *statements]
        while True:
            try:
                cursors = []
                for sql, params in statements:
                    cursors.append(self._conn.cursor())
                    self._send(cursors[-1], sql, params)
                self._pipe[1].sync()
            except Exception as exc:
                if not self._dropped(exc):
                    raise
                self._reconnect()
                continue
            self._unconfirmed = None
            if held is not None:
                self._calendar_read = None
                self._held_generation = _generation(cursors.pop(0).fetchone())
            return cursors

    def _dropped(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the pooled connection found dead before anything was done
        on it — the first time in this transaction (a second connection that fails is
        the caller's error)."""
        return (
            self._unconfirmed is not None
            and not self._retried
            and bool(getattr(self._conn, "broken", False))
        )

    def _reconnect(self) -> None:
        """Begin again on a new connection and send what was sent before the first wait."""
        sent, self._pipe, self._retried = self._unconfirmed or [], None, True
        self._path.checkin(self._conn, broken=True)
        self._conn = self._path.checkout(new=True)
        self._cur = self._conn.cursor()
        self._begin()
        for sql, params, many in sent:
            self._send(self._cur, sql, params, many=many)


#: An update as one statement that fails (division by zero) when it matched no row: a
#: version check that can be sent without waiting for its row count.
_MATCH_ONE = "WITH matched AS ({update} RETURNING 1) SELECT 1 / count(*) FROM matched"
_MATCHED_NO_ROW = "22012"  # division_by_zero
_SELECT_NUMBER_VERSION = "SELECT number, version FROM cases WHERE id = %s"


def _in_transaction(conn: Any) -> bool:
    if isinstance(conn, sqlite3.Connection):
        return conn.in_transaction
    import psycopg

    return bool(conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)


class HotPath:
    """Where ``HotTx`` gets its connections: one ``sqlite3`` connection per thread (and
    process) on SQLite; a small pool of psycopg connections on PostgreSQL, in autocommit
    mode so a transaction is the ``BEGIN`` … ``COMMIT`` sent here and nothing more."""

    def __init__(
        self, d: Dialect, connect: Callable[[], Any], dumps: Callable[[Any], str], site: Site
    ) -> None:
        self.dialect = d
        self.dumps = dumps
        self.site = site
        self._connect = connect
        self._local = threading.local()
        self._lock = threading.Lock()
        self._idle: list[Any] = []  # PostgreSQL: connections not in a transaction
        self._open: list[Any] = []
        self._pid = os.getpid()

    def transaction(self) -> HotTx:
        """``with hot.transaction() as tx:`` — BEGIN, then COMMIT or ROLLBACK.

        Raises:
            StorageUnavailable: the database cannot be reached, or the connection was
                lost (``applied`` None: while committing).
        """
        kind = PipelineTx if self.dialect.pipeline else HotTx
        return kind(self, self.checkout())

    def raise_fault(self, exc: BaseException, conn: Any, *, committing: bool = False) -> None:
        """Raise the StorageError ``exc``, raised on ``conn``, stands for (``faults.py``),
        if it stands for one (an error of the database itself, not of the statement)."""
        fault = self.site.fault(
            exc, broken=bool(getattr(conn, "broken", False)), committing=committing
        )
        if fault is not None:
            raise fault from exc

    def policy(self, number: str) -> Policy | None:
        """One policy, read outside any transaction of this path (on SQLite on the
        thread's connection: inside ``fire()``'s transaction when there is one). An idle
        pooled connection the server dropped is replaced once, as a transaction's is."""
        for retry in (False, True):
            conn = self.checkout(new=retry)
            broken = True
            try:
                found = _Reader(conn.cursor(), self.dialect, self.dumps).policy(number)
                broken = False
                return found
            except Exception as exc:
                if not retry and getattr(conn, "broken", False):
                    continue  # a read: nothing to undo
                self.raise_fault(exc, conn)
                raise
            finally:
                self.checkin(conn, broken=broken)
        raise AssertionError("unreachable: the retry returns or raises")

    def _new_connection(self) -> Any:
        """A new connection; one that cannot be made is StorageUnavailable."""
        try:
            return self._connect()
        except Exception as exc:
            fault = self.site.fault(exc)
            if fault is None:
                raise
            raise fault from exc

    def _thread_connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = self._new_connection()
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._open.append(conn)
        return conn

    def checkout(self, *, new: bool = False) -> Any:
        """A connection for one transaction: the thread's own on SQLite, an idle pooled
        one (or a new one) on PostgreSQL. ``new``: not an idle one — after one was found
        dropped (a server restart drops them all, and the retry must not meet another)."""
        if self.dialect is SQLITE:
            return self._thread_connection()
        with self._lock:
            if self._pid != os.getpid():  # a forked child must not share its parent's sockets
                # ... nor close them: closing (or collecting) a psycopg connection sends
                # the server a goodbye on the socket the parent still uses. Kept, unused.
                _INHERITED.extend(self._open)
                self._idle, self._open, self._pid = [], [], os.getpid()
            while self._idle and not new:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
        conn = self._new_connection()
        with self._lock:
            self._open.append(conn)
        return conn

    def checkin(self, conn: Any, *, broken: bool) -> None:
        """The transaction on ``conn`` ended; ``broken``: its connection failed."""
        if self.dialect is SQLITE:
            return  # the thread keeps its connection: a failed statement does not break it
        with self._lock:
            if broken or conn.closed or len(self._idle) >= _POOL_SIZE:
                if conn in self._open:
                    self._open.remove(conn)
                _close_quietly(conn)
            else:
                self._idle.append(conn)

    def close(self) -> None:
        with self._lock:
            for conn in self._open:
                _close_quietly(conn)
            self._open.clear()
            self._idle.clear()
        self._local = threading.local()


#: PostgreSQL connections the hot path keeps open when idle (more are opened under load).
_POOL_SIZE = 5
#: A forked process's references to its parent's connections, never closed here.
_INHERITED: list[Any] = []


class _Reader(HotStatements):
    __slots__ = ("_cur", "_d", "_dumps", "_heads", "_now", "_now_text")

    def __init__(self, cur: Any, d: Dialect, dumps: Callable[[Any], str]) -> None:
        self._cur, self._d, self._dumps = cur, d, dumps
        self._now, self._now_text = None, None
        self._heads = {}


def _close_quietly(conn: Any) -> None:
    with contextlib.suppress(Exception):  # already gone with the server
        conn.close()


def connections(d: Dialect, connect_args: Mapping[str, Any], path: str) -> Callable[[], Any]:
    """How the hot path opens a connection of dialect ``d``."""
    if d is SQLITE:
        uri = bool(connect_args.get("uri", False))  # sqlite:///file:...?mode=ro&uri=true

        def sqlite_connection() -> Any:
            conn = sqlite3.connect(path, timeout=30, check_same_thread=False, uri=uri)
            sqlite_setup(conn)
            return conn

        return sqlite_connection

    def pg_connection() -> Any:
        import psycopg

        return psycopg.connect(**connect_args, autocommit=True)

    return pg_connection
