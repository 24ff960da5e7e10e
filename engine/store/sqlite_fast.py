"""``fire()``'s hot path on SQLite, in plain ``sqlite3``.

Why a second implementation of a few queries: SQLAlchemy's per-statement and
per-transaction machinery alone cost several times the writes themselves
(docs/benchmarks.md), and ``fire()`` is what a desk does all day. So the statements a
transition runs — the case, its history, its notices, its idempotency key, and the
deadlines and timers it starts, stops, pauses, resumes or extends — are written here
once more, as prepared SQL on one connection per thread. Everything else — opening
cases, timer batches, reports, policies, migrations, PostgreSQL — stays on SQLAlchemy
Core (``core.py``). Both honour ``tx.Tx``; the rows they write are the same bytes
(times as SQLAlchemy's SQLite ``DATETIME`` text in UTC, JSON through the one
``json_dumps``), which ``tests/test_store_contract.py`` checks.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from ..calendar import DeskDay, DeskYear
from ..definitions import SEARCH_KEYS
from ..errors import CaseNotFound
from ..policies import Policy
from ..types import Actor, Case, HistoryEntry
from .rows import DEADLINE_COLUMNS, MAX_ID, DeadlineRow, OutboxRow, TimerArm, is_case_id

_CASE_COLUMNS = (
    "id, number, workflow, workflow_version, state, data, version, created_at, updated_at, org_unit"
)
_SELECT_BY_ID = f"SELECT {_CASE_COLUMNS} FROM cases WHERE id = ?"
_SELECT_BY_NUMBER = f"SELECT {_CASE_COLUMNS} FROM cases WHERE number = ?"


def _update_sql(with_state: bool, with_keys: bool) -> str:
    sets = ["data = ?", "version = ?", "updated_at = ?"]
    if with_state:
        sets.insert(0, "state = ?")
    if with_keys:
        sets += [f"{key} = ?" for key in SEARCH_KEYS]
    return f"UPDATE cases SET {', '.join(sets)} WHERE id = ? AND version = ?"


# Columns left out of SET spare SQLite their index maintenance (state: ~13 µs a write).
_UPDATES = {(s, k): _update_sql(s, k) for s in (False, True) for k in (False, True)}
_INSERT_CASE = (
    "INSERT INTO cases (number, workflow, workflow_version, state, data, version, created_at, "
    f"updated_at, org_unit, {', '.join(SEARCH_KEYS)}) "
    f"VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, {', '.join('?' * len(SEARCH_KEYS))})"
)
_NEXT_NUMBER = (
    "INSERT INTO case_counters (prefix, day, last) VALUES (?, ?, 1) "
    "ON CONFLICT (prefix, day) DO UPDATE SET last = case_counters.last + 1 RETURNING last"
)
_INSERT_OWN_KEY = "INSERT INTO case_keys (case_id, key, value) VALUES (?, ?, ?)"
_INSERT_HISTORY = (
    "INSERT INTO history (case_id, seq, at, actor, event, from_state, to_state, data, notes) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
_POLICY_COLUMNS = (
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
_SELECT_POLICY = f"SELECT {', '.join(_POLICY_COLUMNS)} FROM policies WHERE number = ?"
_CENTS = Decimal("0.01")
_SELECT_ACTIVE_DEADLINES = (
    f"SELECT {', '.join(DEADLINE_COLUMNS)} FROM case_deadlines "
    "WHERE case_id = ? AND status IN ('running', 'paused')"
)
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
    "WHERE current = 1 ORDER BY year"
)


def sqlite_time(instant: datetime) -> str:
    """An aware instant as SQLAlchemy stores it in SQLite: naive UTC text."""
    if instant.tzinfo is None:
        raise ValueError(f"refusing to store naive datetime {instant!r}; give it a time zone")
    # isoformat is several times cheaper than strftime and gives the same text.
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


@lru_cache(maxsize=4096)
def parse_time(text: str) -> datetime:
    # Cached: a case's created_at is read back on every transition of it.
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _maybe_time(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)


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
        "WHERE case_id = ? AND rule = ? AND armed_seq = ? "
        f"AND status IN ({', '.join('?' * count)})"
    )


class StoredRequest(NamedTuple):
    case_id: int
    event: str
    fingerprint: str
    result: Any


class SqliteFastPath:
    """One plain ``sqlite3`` connection per thread (and process) on the engine's file."""

    def __init__(self, path: str, dumps: Callable[[Any], str]) -> None:
        self._path = path
        self._dumps = dumps
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[sqlite3.Connection] = []

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(
                self._path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn, self._local.pid = conn, os.getpid()
            self._local.reader = conn.cursor()
            with self._lock:
                self._open.append(conn)
        return conn

    def transaction(self) -> SqliteTx:
        """``with fast.transaction() as tx:`` — BEGIN IMMEDIATE, then COMMIT or ROLLBACK."""
        return SqliteTx(self._connection(), self._dumps)

    def policy(self, number: str) -> Policy | None:
        """One policy, read on this thread's connection — inside ``fire()``'s transaction
        when there is one (the review asks for the policy on every verify)."""
        self._connection()
        row = self._local.reader.execute(_SELECT_POLICY, (number,)).fetchone()
        if row is None:
            return None
        number, product, line, name, id_number, start, end, coverages, amount, heirs = row
        return Policy(
            number=number,
            product_name=product,
            product_line=line,
            insured_name=name,
            insured_id_number=id_number,
            start_date=date.fromisoformat(start),
            end_date=date.fromisoformat(end),
            coverages=tuple(orjson.loads(coverages)),
            # SQLAlchemy stores Numeric(14, 2) as a float in SQLite; read it as Core does.
            sum_insured=Decimal(str(amount)).quantize(_CENTS),
            beneficiaries=tuple(orjson.loads(heirs)),
        )

    def close(self) -> None:
        with self._lock:
            for conn in self._open:
                conn.close()
            self._open.clear()
        self._local = threading.local()


class SqliteTx:
    """The statements of one transition, on a connection inside ``BEGIN IMMEDIATE``."""

    __slots__ = ("_conn", "_cur", "_dumps", "_now", "_now_text")

    def __init__(self, conn: sqlite3.Connection, dumps: Callable[[Any], str]) -> None:
        self._conn = conn
        self._cur = conn.cursor()
        self._dumps = dumps
        self._now: datetime | None = None
        self._now_text = ""

    # A class, not a generator-based context manager: this runs on every transition.
    def __enter__(self) -> SqliteTx:
        self._cur.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._cur.execute("COMMIT" if exc_type is None else "ROLLBACK")

    def _time(self, instant: datetime) -> str:
        # One operation writes its single "now" into several rows: format it once.
        if instant is not self._now:
            self._now, self._now_text = instant, sqlite_time(instant)
        return self._now_text

    def load_case(self, ref: int | str) -> Case:
        if isinstance(ref, int) or is_case_id(ref):
            if not 0 < int(ref) <= MAX_ID:
                raise CaseNotFound(ref)
            row = self._cur.execute(_SELECT_BY_ID, (int(ref),)).fetchone()
        else:
            row = self._cur.execute(_SELECT_BY_NUMBER, (ref,)).fetchone()
        if row is None:
            raise CaseNotFound(ref)
        return _case(row)

    def current_version(self, case_id: int) -> int | None:
        row = self._cur.execute("SELECT version FROM cases WHERE id = ?", (case_id,)).fetchone()
        return None if row is None else int(row[0])

    def hold(self, key: str) -> None:
        """Nothing: this transaction began with BEGIN IMMEDIATE and holds the database."""

    def insert_case(
        self,
        *,
        number: str,
        workflow: str,
        workflow_version: int,
        state: str,
        data: Mapping[str, Any],
        now: datetime,
        keys: Mapping[str, str | None],
        org_unit: str | None = None,
    ) -> int:
        at = self._time(now)
        cur = self._cur.execute(
            _INSERT_CASE,
            (
                number,
                workflow,
                workflow_version,
                state,
                self._dumps(data),
                at,
                at,
                org_unit,
                *(keys.get(key) for key in SEARCH_KEYS),
            ),
        )
        case_id = cur.lastrowid
        assert case_id is not None
        own = [(case_id, key, keys[key]) for key in keys if key not in SEARCH_KEYS]
        self._cur.executemany(_INSERT_OWN_KEY, [row for row in own if row[2] is not None])
        return case_id

    def next_case_number(self, prefix: str, day: str) -> int:
        return int(self._cur.execute(_NEXT_NUMBER, (prefix, day)).fetchone()[0])

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
        cur = self._cur.execute(_UPDATES[state is not None, keys is not None], params)
        if cur.rowcount != 1:
            return False
        own = [key for key in keys or () if key not in SEARCH_KEYS]
        if keys is not None and own:  # the workflow's own keys: case_keys rows
            marks = ", ".join("?" * len(own))
            self._cur.execute(
                f"DELETE FROM case_keys WHERE case_id = ? AND key IN ({marks})", [case_id, *own]
            )
            self._cur.executemany(
                _INSERT_OWN_KEY, [(case_id, key, keys[key]) for key in own if keys[key] is not None]
            )
        return True

    def insert_outbox(self, rows: Sequence[OutboxRow], now: datetime) -> None:
        at = self._time(now)
        self._cur.executemany(
            _INSERT_OUTBOX,
            [
                (
                    r["key"],
                    r["case_id"],
                    r["seq"],
                    r["template"],
                    r["recipient"],
                    r["org_unit"],
                    self._dumps(r["context"]),
                    at,
                    at,
                )
                for r in rows
            ],
        )

    def append_history(
        self,
        *,
        case_id: int,
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
        self._cur.execute(
            _INSERT_HISTORY,
            (
                case_id,
                seq,
                self._time(at),
                _actor_text(actor, dumps),
                event,
                from_state,
                to_state,
                dumps(data),
                dumps(list(notes)),
            ),
        )

    def history(self, case_id: int) -> list[HistoryEntry]:
        return [
            HistoryEntry(
                seq=seq,
                at=parse_time(at),
                actor=Actor.from_json(orjson.loads(actor)),
                event=event,
                from_state=from_state,
                to_state=to_state,
                data=orjson.loads(data),
                notes=tuple(orjson.loads(notes)),
            )
            for seq, at, actor, event, from_state, to_state, data, notes in self._cur.execute(
                _SELECT_HISTORY, (case_id,)
            )
        ]

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
            where.append(f"state IN ({', '.join('?' * len(states))})" if states else "0")
            params.extend(states)
        sql = f"SELECT {_CASE_COLUMNS} FROM cases"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id LIMIT ? OFFSET ?"
        params += [-1 if limit is None else limit, offset]
        return [_case(row) for row in self._cur.execute(sql, params)]

    # --- deadlines and their timers --------------------------------------------------
    def active_deadlines(self, case_id: int) -> list[DeadlineRow]:
        return [_deadline(row) for row in self._cur.execute(_SELECT_ACTIVE_DEADLINES, (case_id,))]

    def insert_deadline(self, row: DeadlineRow) -> None:
        self._cur.execute(
            _INSERT_DEADLINE,
            [
                self._value_time(value) if name in _DEADLINE_TIMES else value
                for name, value in zip(DEADLINE_COLUMNS, row, strict=True)
            ],
        )

    def update_deadline(self, case_id: int, rule: str, armed_seq: int, **values: Any) -> None:
        columns = tuple(values)
        params = [
            self._value_time(value) if name in _DEADLINE_TIMES else value
            for name, value in values.items()
        ]
        self._cur.execute(_update_deadline_sql(columns), [*params, case_id, rule, armed_seq])

    def insert_timers(self, rows: Sequence[TimerArm]) -> None:
        self._cur.executemany(
            _INSERT_TIMER,
            [
                (
                    r["case_id"],
                    r["rule"],
                    r["armed_seq"],
                    r["kind"],
                    r["level"],
                    sqlite_time(r["due_at"]),
                    r["status"],
                )
                for r in rows
            ],
        )

    def set_timer_status(
        self, case_id: int, rule: str, armed_seq: int, *, from_: Sequence[str], to: str
    ) -> int:
        cur = self._cur.execute(
            _set_timer_status_sql(len(from_)), [to, case_id, rule, armed_seq, *from_]
        )
        return int(cur.rowcount)

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
        self._cur.execute(
            _RETIME_TIMER, (sqlite_time(due), case_id, rule, armed_seq, kind, level, status)
        )

    def _value_time(self, value: Any) -> Any:
        return None if value is None else self._time(value)

    # --- the desk's holiday arrangements -------------------------------------------
    def calendar_generation(self, *, lock: bool = False) -> int:
        """``lock`` needs nothing here: BEGIN IMMEDIATE holds the database, so an
        import waits for this transaction or this one for it."""
        row = self._cur.execute(_SELECT_GENERATION).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def desk_years(self) -> list[DeskYear]:
        imports = self._cur.execute(_SELECT_DESK_IMPORTS).fetchall()
        if not imports:
            return []
        days: dict[int, list[DeskDay]] = {row[0]: [] for row in imports}
        marks = ", ".join("?" * len(days))
        for import_id, day, working, name, line in self._cur.execute(
            "SELECT import_id, day, working, name, line FROM calendar_days "
            f"WHERE import_id IN ({marks}) ORDER BY day",
            list(days),
        ):
            days[import_id].append(DeskDay(date.fromisoformat(day), bool(working), name, line))
        return [
            DeskYear(
                year=year,
                days=tuple(days[id_]),
                source=source,
                imported_by=by,
                imported_at=parse_time(at),
                import_id=id_,
                override=bool(override),
            )
            for id_, year, source, by, at, override in imports
        ]

    def idempotent_result(self, key: str) -> StoredRequest | None:
        row = self._cur.execute(_SELECT_KEY, (key,)).fetchone()
        if row is None:
            return None
        return StoredRequest(row[0], row[1], row[2], orjson.loads(row[3]))

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
        self._cur.execute(
            _INSERT_KEY, (key, case_id, event, fingerprint, self._dumps(result), self._time(now))
        )


@lru_cache(maxsize=1024)
def _actor_text(actor: Actor, dumps: Callable[[Any], str]) -> str:
    # The same few desk staff fire most events: encode each actor once.
    return dumps(actor.to_json())


def _case(row: tuple[Any, ...]) -> Case:
    id_, number, workflow, workflow_version, state, data, version, created, updated, unit = row
    return Case(
        id=id_,
        number=number,
        workflow=workflow,
        workflow_version=workflow_version,
        state=state,
        data=orjson.loads(data),
        version=version,
        created_at=parse_time(created),
        updated_at=parse_time(updated),
        org_unit=unit,
    )


def _deadline(row: tuple[Any, ...]) -> DeadlineRow:
    (case_id, rule, seq, started, due, status, reason, since, paused, warned, breached, level,
     stopped, calendar, period, provisional) = row  # fmt: skip
    return DeadlineRow(
        case_id,
        rule,
        seq,
        parse_time(started),
        parse_time(due),
        status,
        reason,
        _maybe_time(since),
        paused,
        warned,
        _maybe_time(breached),
        level,
        _maybe_time(stopped),
        calendar,
        period,
        provisional,
    )
