"""``CoreTx``: a case operation's statements (``hot.py``, written once for both
databases) and every other query — reports, timer batches, the outbox, accounts — in
SQLAlchemy Core."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from .. import audit
from ..calendar import DeskDay
from ..definitions import SEARCH_KEYS
from ..types import Actor, CalendarImportRecord, Case, CaseScope, Refusal, RuleSla
from . import tables as t
from .export import BackupStatements
from .hot import HotStatements, dialect, json_dumps, json_sorted
from .rows import (
    DEADLINE_COLUMNS,
    TIMER_COLUMNS,
    ApiTokenRecord,
    BreachRow,
    CaseBump,
    DeadlineRow,
    DeskDeadlineRow,
    HistoryRow,
    InboundRecord,
    InboxRecord,
    InstanceProgress,
    NoticeToExpand,
    OutboxRecord,
    OutboxRow,
    SlaMedians,
    StoredTimer,
    TimerRow,
    UserRecord,
)
from .rows import MAX_ID as _MAX_ID

_c = t.cases.c


def _update_case(with_state: bool, with_keys: bool) -> sa.Update:
    values: dict[str, Any] = {
        "data": sa.bindparam("b_data", type_=t.JSONType),
        "version": sa.bindparam("b_version"),
        "updated_at": sa.bindparam("b_now", type_=t.UTCDateTime),
    }
    if with_state:
        values["state"] = sa.bindparam("b_state")
    if with_keys:
        values.update({key: sa.bindparam(f"b_{key}") for key in SEARCH_KEYS})
    where = (_c.id == sa.bindparam("b_id"), _c.version == sa.bindparam("b_expected"))
    return t.cases.update().where(*where).values(**values)


# Columns left out of SET spare the database their index maintenance.
_UPDATE_CASE = {(s, k): _update_case(s, k) for s in (False, True) for k in (False, True)}
_INSERT_HISTORY = t.history.insert()
# The engine types' columns, read in their order.
_DEADLINES = sa.select(*(t.case_deadlines.c[name] for name in DEADLINE_COLUMNS))
_TIMERS = sa.select(*(t.timers.c[name] for name in TIMER_COLUMNS))


def _columns(record: type, table: sa.Table, **joined: Any) -> list[Any]:
    """The columns of ``record`` (a NamedTuple or a dataclass), in its field order:
    ``table``'s own, and those ``joined`` from another table under the field's name. A
    field neither names is a KeyError when this module is imported, so a record and its
    read cannot drift."""
    fields = getattr(record, "_fields", None) or [f.name for f in dataclasses.fields(record)]
    return [joined[f].label(f) if f in joined else table.c[f] for f in fields]


_cases_number = {"case_number": _c.number}


def _case_columns(record: type[tuple[Any, ...]]) -> dict[str, Any]:
    """Of ``record``'s fields, those read from the case (a deadline joined to it)."""
    fields: tuple[str, ...] = record._fields  # type: ignore[attr-defined]
    mine = ("number", "workflow", "workflow_version", "state", "org_unit", "handler")
    return {f: _c[f] for f in fields if f in mine}


_INBOUND = sa.select(*_columns(InboundRecord, t.inbound_messages, matched_number=sa.null()))
_INBOUND_LISTED = sa.select(
    *_columns(InboundRecord, t.inbound_messages, matched_number=_c.number)
).select_from(t.inbound_messages.outerjoin(t.cases, _c.id == t.inbound_messages.c.case_id))
_OUTBOX = sa.select(*_columns(OutboxRecord, t.outbox, case_number=sa.null()))
_OUTBOX_NUMBERED = sa.select(*_columns(OutboxRecord, t.outbox, **_cases_number)).select_from(
    t.outbox.outerjoin(t.cases, _c.id == t.outbox.c.case_id)
)
_INBOX = sa.select(*_columns(InboxRecord, t.inbox))
_USERS = sa.select(*_columns(UserRecord, t.users))
_API_TOKENS = sa.select(*_columns(ApiTokenRecord, t.api_tokens))
_CALENDAR_IMPORTS = sa.select(*_columns(CalendarImportRecord, t.calendar_imports))


class CoreTx(BackupStatements, HotStatements):
    """One transaction's worth of queries on a SQLAlchemy connection: a case
    operation's statements (``hot.HotStatements``) on its driver connection, inside
    SQLAlchemy's transaction, and the cold queries in Core."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._d = dialect(conn.dialect.name)
        self._dumps = json_dumps
        self._now: datetime | None = None
        self._now_text: Any = None
        self._heads = {}

    @cached_property
    def _cur(self) -> Any:
        # The DBAPI connection SQLAlchemy's transaction runs on: statements sent on it
        # are part of that transaction.
        driver = self.conn.connection.driver_connection
        assert driver is not None
        return driver.cursor()

    def savepoint(self) -> sa.NestedTransaction:
        return self.conn.begin_nested()

    # --- cases --------------------------------------------------------------------
    def cases_of(self, workflow: str, after: int, limit: int) -> list[tuple[int, int, Any]]:
        """(id, workflow version, data) of ``workflow``'s cases past id ``after``, by id:
        what rewriting their search keys pages through."""
        c = t.cases.c
        q = (
            sa.select(c.id, c.workflow_version, c.data)
            .where(c.workflow == workflow, c.id > after)
            .order_by(c.id)
            .limit(limit)
        )
        return [(int(i), int(v), d) for i, v, d in self.conn.execute(q)]

    def rewrite_keys(
        self, case_id: int, keys: Mapping[str, str | None], own: Sequence[str]
    ) -> None:
        """Set a case's search keys to ``keys`` without touching its version: the
        built-in columns, and its own keys' rows — every own row not in ``own`` (keys
        the workflow no longer declares) deleted."""
        c, k = t.cases.c, t.case_keys.c
        self.conn.execute(
            t.cases.update()
            .where(c.id == case_id)
            .values({key: keys.get(key) for key in SEARCH_KEYS})
        )
        self.conn.execute(t.case_keys.delete().where(k.case_id == case_id))
        self._write_own_keys(case_id, {key: keys.get(key) for key in own}, replace=False)

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
        newest_first: bool = False,
        insurer_reference: str | None = None,
        after: int | None = None,
        scope: CaseScope | None = None,
        keys: Mapping[str, str] | None = None,
    ) -> list[Case]:
        """Cases matching every filter given, oldest first (or newest first);
        ``limit=None`` for all; ``after`` a case id: only those past it in that order;
        ``keys``: search keys (built-in or a workflow's own) and the value each must have."""
        q = _case_filters(
            sa.select(t.cases),
            number,
            policy_number,
            insured_name,
            id_number,
            workflow,
            state,
            keys,
        )
        if insurer_reference is not None:
            q = q.where(t.cases.c.insurer_reference == insurer_reference)
        q = _scoped(q, scope)
        c = t.cases.c
        if after is not None:
            q = q.where(c.id < after if newest_first else c.id > after)
        order = c.id.desc() if newest_first else c.id
        q = q.order_by(order).limit(limit).offset(offset)
        return [_case(r) for r in self.conn.execute(q)]

    def count_cases(
        self,
        *,
        number: str | None = None,
        policy_number: str | None = None,
        insured_name: str | None = None,
        id_number: str | None = None,
        workflow: str | None = None,
        state: str | Sequence[str] | None = None,
        scope: CaseScope | None = None,
        keys: Mapping[str, str] | None = None,
    ) -> int:
        """How many cases match every filter given (what ``find_cases`` pages through)."""
        q = _case_filters(
            sa.select(sa.func.count()).select_from(t.cases),
            number,
            policy_number,
            insured_name,
            id_number,
            workflow,
            state,
            keys,
        )
        q = _scoped(q, scope)
        return int(self.conn.execute(q).scalar_one())

    def count_by_state(
        self, workflow: str | None = None, org_unit: str | None = None
    ) -> dict[tuple[str, str], int]:
        """Cases per (workflow, state): an aggregate over ix_cases_workflow_state, or
        ix_cases_workflow_org_unit_state for one org unit (index-only, no case row read)."""
        c = t.cases.c
        q = sa.select(c.workflow, c.state, sa.func.count()).group_by(c.workflow, c.state)
        if workflow is not None:
            q = q.where(c.workflow == workflow)
        if org_unit is not None:
            q = q.where(c.org_unit == org_unit)
        return {(w, s): n for w, s, n in self.conn.execute(q)}

    def alert_counts(
        self, workflow: str, org_unit: str | None = None, rules: Sequence[str] | None = None
    ) -> list[tuple[str, int, int, int]]:
        """(state, level, warned cases, breached cases) of the workflow's cases with a
        running or paused deadline warned or breached.

        The inner aggregate reads only the deadlines in ix_case_deadlines_alerting (a
        partial index: the few warned or breached ones, not every running one) and folds
        them per case — a case is breached if any of its deadlines is, at its highest
        level — then looks each such case up by its key for its state: a correlated
        subquery, not a join, so that no planner walks the workflow's million cases to
        probe the few alerted ones (SQLite chose that for a join). ``rules``: the
        workflow's deadline rules, so the other workflows' alerted deadlines are left out
        before their cases are looked up (PostgreSQL: 25 ms per workflow without cases
        of its own, next to 10,000 alerted claims, issue #13's overview)."""
        d, c = t.case_deadlines.c, t.cases.c
        breached = d.breached_at.is_not(None)
        folded = (
            sa.select(
                d.case_id.label("case_id"),
                sa.func.max(sa.case((breached, 1), else_=0)).label("breached"),
                sa.func.max(sa.case((breached, 0), else_=1)).label("warned"),
                sa.func.max(sa.case((breached, d.level), else_=-1)).label("level"),
            )
            .where(sa.text(t.ALERTING_SQL))
            .group_by(d.case_id)
        )
        if rules is not None:
            folded = folded.where(d.rule.in_(sorted(rules)))
        per_case = folded.subquery("per_case")
        p = per_case.c
        state_of = sa.select(c.state).where(c.id == p.case_id, c.workflow == workflow)
        if org_unit is not None:
            state_of = state_of.where(c.org_unit == org_unit)
        located = sa.select(
            state_of.scalar_subquery().label("state"), p.level, p.warned, p.breached
        ).subquery("located")
        q = sa.select(
            located.c.state,
            located.c.level,
            sa.func.sum(located.c.warned),
            sa.func.sum(located.c.breached),
        ).group_by(located.c.state, located.c.level)
        # The other workflows' cases (state NULL) are dropped here, not in SQL: a WHERE
        # on the looked-up state made PostgreSQL look each case up twice.
        rows = self.conn.execute(q)
        return [(s, int(lv), int(w), int(b)) for s, lv, w, b in rows if s is not None]

    # --- idempotency --------------------------------------------------------------
    # --- inbound insurer messages (issue #12) -----------------------------------------
    def inbound_by_message_id(self, insurer: str, message_id: str) -> InboundRecord | None:
        """The stored message (insurer, message_id), or None (the unique key's index)."""
        m = t.inbound_messages.c
        q = _INBOUND.where(m.insurer == insurer, m.message_id == message_id)
        row = self.conn.execute(q).first()
        return None if row is None else InboundRecord._make(row)

    def inbound_row(self, ref: int, *, lock: bool = False) -> InboundRecord | None:
        """The stored message with this id (``lock``: FOR UPDATE, for a resolution)."""
        q = _INBOUND.where(t.inbound_messages.c.id == ref)
        if lock:
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        return None if row is None else InboundRecord._make(row)

    def insert_inbound(self, values: Mapping[str, Any]) -> int:
        """Store one message; a second (insurer, message_id) fails on the unique key."""
        ins = t.inbound_messages.insert().returning(t.inbound_messages.c.id)
        return int(self.conn.execute(ins, dict(values)).scalar_one())

    def settle_inbound(self, ref: int, values: Mapping[str, Any]) -> bool:
        """Mark an unresolved message resolved or dismissed; False if it was not
        unresolved any more."""
        m = t.inbound_messages.c
        q = (
            t.inbound_messages.update()
            .where(m.id == ref, m.status == "unresolved")
            .values(**values)
        )
        return self.conn.execute(q).rowcount == 1

    def list_inbound(
        self, *, status: str | None = None, ref: int | None = None, limit: int, offset: int
    ) -> list[InboundRecord]:
        """Stored messages (those in ``status``, or the one ``ref``), oldest first, each
        with ``matched_number``: the number of the case it matched or fired on."""
        m = t.inbound_messages.c
        q = _INBOUND_LISTED
        if status is not None:
            q = q.where(m.status == status)
        if ref is not None:
            q = q.where(m.id == ref)
        rows = self.conn.execute(q.order_by(m.id).limit(limit).offset(offset))
        return [InboundRecord._make(row) for row in rows]

    def count_inbound(self) -> dict[str, int]:
        """How many stored messages there are in each status (the status index)."""
        m = t.inbound_messages.c
        q = sa.select(m.status, sa.func.count()).group_by(m.status)
        return {status: n for status, n in self.conn.execute(q)}

    # --- policies -----------------------------------------------------------------
    def upsert_policies(self, rows: Sequence[Mapping[str, Any]]) -> int:
        p = t.policies.c
        for row in rows:
            self.conn.execute(t.policies.delete().where(p.number == row["number"]))
        if rows:
            self.conn.execute(t.policies.insert(), list(rows))
        return len(rows)

    # --- deadlines and timers (issue #4) ----------------------------------------------
    def case_deadlines(self, case_id: int) -> list[DeadlineRow]:
        d = t.case_deadlines.c
        q = _DEADLINES.where(d.case_id == case_id).order_by(d.armed_seq, d.rule)
        return [DeadlineRow._make(row) for row in self.conn.execute(q)]

    def deadline(self, case_id: int, rule: str, armed_seq: int) -> DeadlineRow | None:
        d = t.case_deadlines.c
        q = _DEADLINES.where(d.case_id == case_id, d.rule == rule, d.armed_seq == armed_seq)
        row = self.conn.execute(q).first()
        return None if row is None else DeadlineRow._make(row)

    def running_deadlines(self) -> list[DeadlineRow]:
        d = t.case_deadlines.c
        q = _DEADLINES.where(d.status == "running").order_by(d.case_id, d.armed_seq)
        return [DeadlineRow._make(row) for row in self.conn.execute(q)]

    def claim_due_timers(
        self, now: datetime, worker: str, lease_until: datetime, limit: int
    ) -> list[StoredTimer]:
        """Lease up to ``limit`` due timers to ``worker``: pending, due, and not leased
        to a live worker. PostgreSQL skips rows another worker is claiming right now
        (``FOR UPDATE SKIP LOCKED``); SQLite serialises writers anyway."""
        tm = t.timers.c
        due = (
            sa.select(tm.id)
            .where(
                tm.status == "pending",
                tm.due_at <= now,
                sa.or_(tm.claimed_until.is_(None), tm.claimed_until < now),
            )
            .order_by(tm.due_at)
            .limit(limit)
        )
        if self.conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        ids = [row[0] for row in self.conn.execute(due)]
        if not ids:
            return []
        self.conn.execute(
            t.timers.update()
            .where(tm.id.in_(ids))
            .values(claimed_by=worker, claimed_until=lease_until)
        )
        q = _TIMERS.where(tm.id.in_(ids)).order_by(tm.due_at)
        return [StoredTimer._make(row) for row in self.conn.execute(q)]

    def finish_timer(
        self, timer_id: int, worker: str, status: str, now: datetime, outcome: str
    ) -> bool:
        """Record a timer's end, only if it is still pending and leased to ``worker``:
        the check that makes each effect happen once."""
        tm = t.timers.c
        result = self.conn.execute(
            t.timers.update()
            .where(tm.id == timer_id, tm.status == "pending", tm.claimed_by == worker)
            .values(status=status, fired_at=now, outcome=outcome[:200])
        )
        return result.rowcount == 1

    def renew_timers(self, ids: Sequence[int], worker: str, until: datetime) -> int:
        tm = t.timers.c
        q = t.timers.update().where(
            tm.id.in_(list(ids)), tm.claimed_by == worker, tm.status == "pending"
        )
        return int(self.conn.execute(q.values(claimed_until=until)).rowcount)

    def release_timers(self, worker: str, ids: Sequence[int] | None = None) -> int:
        tm = t.timers.c
        q = t.timers.update().where(tm.claimed_by == worker, tm.status == "pending")
        if ids is not None:
            q = q.where(tm.id.in_(list(ids)))
        return int(self.conn.execute(q.values(claimed_by=None, claimed_until=None)).rowcount)

    def pending_timers(self, case_id: int) -> list[StoredTimer]:
        tm = t.timers.c
        q = _TIMERS.where(tm.case_id == case_id, tm.status.in_(("pending", "paused")))
        return [StoredTimer._make(row) for row in self.conn.execute(q.order_by(tm.due_at))]

    def breached(
        self,
        workflow: str | None,
        rule: str | None,
        min_level: int | None,
        org_unit: str | None = None,
        scope: CaseScope | None = None,
    ) -> list[BreachRow]:
        """Running deadlines past their due time, with their case, oldest due first."""
        d, c = t.case_deadlines.c, t.cases.c
        q = (
            sa.select(*_columns(BreachRow, t.case_deadlines, **_case_columns(BreachRow)))
            .join(t.cases, c.id == d.case_id)
            .where(d.status == "running", d.breached_at.is_not(None))
        )
        if workflow is not None:
            q = q.where(c.workflow == workflow)
        if rule is not None:
            q = q.where(d.rule == rule)
        if min_level is not None:
            q = q.where(d.level >= min_level)
        if org_unit is not None:
            q = q.where(c.org_unit == org_unit)
        q = _scoped(q, scope)
        return [BreachRow._make(row) for row in self.conn.execute(q.order_by(d.due_at))]

    def breach_counts(self) -> dict[tuple[str, str, int], int]:
        """How many running deadlines are breached, per (workflow, rule, level): one
        GROUP BY over the breached instances' partial index, no case loaded."""
        d, c = t.case_deadlines.c, t.cases.c
        q = (
            sa.select(c.workflow, d.rule, d.level, sa.func.count())
            .select_from(t.case_deadlines.join(t.cases, c.id == d.case_id))
            .where(d.status == "running", d.breached_at.is_not(None))
            .group_by(c.workflow, d.rule, d.level)
        )
        return {(w, r, int(level)): int(n) for w, r, level, n in self.conn.execute(q)}

    def outbox_backlog(self) -> tuple[int, int]:
        """(pending, dead) outbox rows, each counted on its partial index."""
        o = t.outbox.c
        count = sa.select(sa.func.count()).select_from(t.outbox)
        pending = self.conn.execute(count.where(o.status == "pending")).scalar_one()
        dead = self.conn.execute(count.where(o.status == "dead")).scalar_one()
        return int(pending), int(dead)

    def desk_deadlines(
        self,
        *,
        workflow: str | None,
        rule: str | None,
        org_unit: str | None,
        min_level: int | None,
        limit: int,
        offset: int,
        scope: CaseScope | None = None,
        handler: str | None = None,
    ) -> list[DeskDeadlineRow]:
        """Running and paused deadlines with their case, the soonest due first."""
        d, c = t.case_deadlines.c, t.cases.c
        q = (
            sa.select(
                *_columns(DeskDeadlineRow, t.case_deadlines, **_case_columns(DeskDeadlineRow))
            )
            .join(t.cases, c.id == d.case_id)
            .where(sa.text(t.DESK_SQL))
        )
        # On SQLite every test on the case unindexable (see _scoped), so the walk is the
        # deadlines' index; PostgreSQL plans that walk itself, and the unindexable form
        # only cost it (27 ms, not 3, for a page at a million cases).
        plain = self._pg
        if workflow is not None:
            q = q.where((c.workflow if plain else c.workflow.concat("")) == workflow)
        if rule is not None:
            q = q.where(d.rule == rule)
        if min_level is not None:
            q = q.where(d.level >= min_level)
        if org_unit is not None:
            q = q.where((c.org_unit if plain else c.org_unit.concat("")) == org_unit)
        if handler is not None:  # one person's few cases: ix_cases_handler_org_unit
            q = q.where(c.handler == handler)
        q = _scoped(q, scope, by_index=plain)  # driven by ix_case_deadlines_desk
        # due order, ties by case (its id: in ix_case_deadlines_desk, unlike its number)
        q = q.order_by(d.due_at, d.case_id, d.rule).limit(limit).offset(offset)
        return [DeskDeadlineRow._make(row) for row in self.conn.execute(q)]

    # --- the SLA report: aggregates in the database, only the figures come back -------
    def sla_tallies(
        self,
        now: datetime,
        since: datetime | None,
        until: datetime | None,
        workflow: str | None,
        org_unit: str | None = None,
        scope: CaseScope | None = None,
        per: str | None = None,
    ) -> list[RuleSla]:
        """Per (workflow, rule, org unit, period): the rule instances started in [since,
        until), met on time, met late, running or paused, and of those past due at
        ``now`` (breached, or due by then). One GROUP BY; the period (``per`` None,
        "day", "week" or "month") as ``_period`` labels it."""
        d, c = t.case_deadlines.c, t.cases.c
        running = d.status.in_(("running", "paused"))
        past_due = sa.or_(d.breached_at.is_not(None), d.due_at <= sa.literal(now, t.UTCDateTime))
        period = _period(per, d.started_at, self._pg)
        keys = [c.workflow, d.rule, c.org_unit, *([period] if period is not None else [])]
        q = (
            sa.select(
                c.workflow,
                d.rule,
                c.org_unit,
                sa.null() if period is None else period,
                sa.func.count(),
                _how_many(d.status == "met"),
                _how_many(d.status == "breached_met"),
                _how_many(running),
                _how_many(sa.and_(running, past_due)),
            )
            .join(t.cases, c.id == d.case_id)
            .group_by(*keys)
        )
        if org_unit is not None:
            q = q.where(c.org_unit == org_unit)
        if since is not None:
            q = q.where(d.started_at >= since)
        if until is not None:
            q = q.where(d.started_at < until)
        if workflow is not None:
            q = q.where(c.workflow == workflow)
        q = _scoped(q, scope)
        return [
            RuleSla(
                workflow=w,
                rule=rule,
                started=int(started),
                met_on_time=int(on_time),
                met_late=int(late),
                breached_open=int(past),
                org_unit=unit,
                period=label,
                running=int(open_),
            )
            for w, rule, unit, label, started, on_time, late, open_, past in self.conn.execute(q)
        ]

    def sla_medians(
        self,
        finals: Mapping[str, Collection[str]],
        workflow: str | None,
        scope: CaseScope | None = None,
        org_unit: str | None = None,
    ) -> SlaMedians:
        """The median stay in each (workflow, state) and the median time to close per
        workflow, from the history of the cases filtered as given (``finals``: each
        workflow's final states). Window functions over each case's rows in (case_id,
        seq) order, the median in the database: one statement, a row a median."""
        h, c = t.history.c, t.cases.c
        closing = [
            sa.and_(c.workflow == name, h.to_state.in_(sorted(states)))
            for name, states in sorted(finals.items())
            if states
        ]
        by_case: dict[str, Any] = {"partition_by": h.case_id, "order_by": h.seq}
        rows = sa.select(
            c.workflow,
            h.case_id,
            h.seq,
            h.to_state,
            _micros(h.at, self._pg).label("at"),
            _flag(sa.or_(*closing) if closing else sa.false()).label("final"),
            sa.func.lag(h.to_state).over(**by_case).label("before"),
        ).join(t.cases, c.id == h.case_id)
        if workflow is not None:
            rows = rows.where(c.workflow == workflow)
        if org_unit is not None:
            rows = rows.where(c.org_unit == org_unit)
        r = _scoped(rows, scope).subquery("rows").c
        # A stay runs from the row that entered a state to the next row that left it:
        # rows that keep the state (timer effects, self-loops) are dropped before LEAD.
        # A case's time to close runs from its first row (the opening) to the first
        # row that put it in a final state (one that enters it: a row keeping a final
        # state follows the row that entered it). One window for the three (seq is
        # unique in a case, so the default frame is the rows up to this one).
        by_entry: dict[str, Any] = {"partition_by": r.case_id, "order_by": r.seq}
        entries = (
            sa.select(
                r.workflow,
                r.to_state,
                r.at,
                r.final,
                sa.func.lead(r.at).over(**by_entry).label("left_at"),
                sa.func.first_value(r.at).over(**by_entry).label("opened_at"),
                sa.func.sum(r.final).over(**by_entry).label("finals"),
            )
            .where(sa.or_(r.before.is_(None), r.before != r.to_state))
            .subquery("entries")
        )
        # Each entry gives a stay (when left) and may close its case: joined to two
        # rows, one per kind of span, rather than read twice (a CTE read twice is
        # written out whole first: 6,000,000 rows at a million cases). A LEFT JOIN, so
        # that SQLite keeps the entries as the outer loop (the two rows never miss).
        e = entries.c
        kinds = sa.union_all(sa.select(_sql("1").label("stay")), sa.select(_sql("0")))
        kind = kinds.subquery("kinds")
        stay = kind.c.stay == 1
        spans = (
            sa.select(
                e.workflow,
                sa.case((stay, e.to_state)).label("state"),
                sa.case((stay, e.left_at - e.at), else_=e.at - e.opened_at).label("span"),
            )
            .select_from(entries.join(kind, sa.true(), isouter=True))
            .where(
                sa.or_(
                    sa.and_(stay, e.left_at.is_not(None)),
                    sa.and_(~stay, e.final == 1, e.finals == 1),
                )
            )
            .subquery("spans")
        )
        in_state: dict[tuple[str, str], timedelta] = {}
        to_close: dict[str, timedelta] = {}
        for name, state, low, high in self.conn.execute(_middles(spans, self._pg)):
            # statistics.median's own arithmetic on the seconds, as floats: the mean of
            # the middle two (a middle one twice when there is one).
            median = timedelta(seconds=(int(low) / 10**6 + int(high) / 10**6) / 2)
            if state is None:
                to_close[name] = median
            else:
                in_state[(name, state)] = median
        return SlaMedians(in_state, to_close)

    # --- the HTTP API's tokens ----------------------------------------------------------
    def insert_api_token(self, values: Mapping[str, Any]) -> ApiTokenRecord:
        ins = t.api_tokens.insert().returning(*_columns(ApiTokenRecord, t.api_tokens))
        return ApiTokenRecord._make(self.conn.execute(ins, values).one())

    def api_token(self, token_id: int) -> ApiTokenRecord | None:
        if not 0 < token_id <= _MAX_ID:
            return None
        row = self.conn.execute(_API_TOKENS.where(t.api_tokens.c.id == token_id)).first()
        return None if row is None else ApiTokenRecord._make(row)

    def api_token_by_hash(self, secret_hash: str) -> ApiTokenRecord | None:
        q = _API_TOKENS.where(t.api_tokens.c.secret_hash == secret_hash)
        row = self.conn.execute(q).first()
        return None if row is None else ApiTokenRecord._make(row)

    def api_tokens(self, *, include_revoked: bool) -> list[ApiTokenRecord]:
        k = t.api_tokens.c
        q = _API_TOKENS.order_by(k.id)
        if not include_revoked:
            q = q.where(k.revoked_at.is_(None))
        return [ApiTokenRecord._make(row) for row in self.conn.execute(q)]

    def revoke_api_token(self, token_id: int, now: datetime) -> ApiTokenRecord | None:
        if not 0 < token_id <= _MAX_ID:
            return None
        k = t.api_tokens.c
        q = t.api_tokens.update().where(k.id == token_id, k.revoked_at.is_(None))
        self.conn.execute(q.values(revoked_at=now))
        return self.api_token(token_id)

    def touch_api_token(self, token_id: int, now: datetime) -> None:
        k = t.api_tokens.c
        self.conn.execute(t.api_tokens.update().where(k.id == token_id).values(last_used_at=now))

    # --- the dashboard's intake ---------------------------------------------------------
    def count_opened(
        self, workflow: str, since: datetime, until: datetime | None, org_unit: str | None
    ) -> int:
        """Cases of ``workflow`` (of ``org_unit``'s, if given) opened in [since, until)."""
        c = t.cases.c
        q = sa.select(sa.func.count()).select_from(t.cases)
        q = q.where(c.workflow == workflow, c.created_at >= since)
        if until is not None:
            q = q.where(c.created_at < until)
        if org_unit is not None:
            q = q.where(c.org_unit == org_unit)
        return int(self.conn.execute(q).scalar_one())

    def count_closed(
        self,
        workflow: str,
        final_states: Sequence[str],
        since: datetime,
        until: datetime | None,
        org_unit: str | None,
    ) -> int:
        """Cases of ``workflow`` (of ``org_unit``'s, if given) that entered one of
        ``final_states`` in [since, until).

        The history rows of the span are the few; each one's case is looked up by key
        (a correlated lookup), never joined: PostgreSQL planned the join as a merge
        along every case's primary key, a second for a million cases."""
        h, c = t.history.c, t.cases.c
        seen = sa.select(c.id).where(c.id == h.case_id, c.workflow == workflow)
        if org_unit is not None:
            seen = seen.where(c.org_unit == org_unit)
        entries = sa.select(h.case_id, seen.scalar_subquery().label("seen")).where(
            h.to_state.in_(sorted(final_states)), h.at >= since
        )
        if until is not None:
            entries = entries.where(h.at < until)
        located = entries.distinct().subquery("located")
        q = sa.select(sa.func.count()).select_from(located).where(located.c.seen.is_not(None))
        return int(self.conn.execute(q).scalar_one())

    # --- the dashboard's accounts -------------------------------------------------------
    def insert_user(self, values: Mapping[str, Any]) -> UserRecord:
        ins = t.users.insert().returning(*_columns(UserRecord, t.users))
        return UserRecord._make(self.conn.execute(ins, values).one())

    def user(self, user_id: str) -> UserRecord | None:
        row = self.conn.execute(_USERS.where(t.users.c.id == user_id)).first()
        return None if row is None else UserRecord._make(row)

    def users(self) -> list[UserRecord]:
        return [UserRecord._make(row) for row in self.conn.execute(_USERS.order_by(t.users.c.id))]

    def disable_user(self, user_id: str, now: datetime) -> UserRecord | None:
        k = t.users.c
        q = t.users.update().where(k.id == user_id, k.disabled_at.is_(None))
        self.conn.execute(q.values(disabled_at=now))
        return self.user(user_id)

    def insert_login_failure(self, user_id: str, client: str, at: datetime) -> None:
        self.conn.execute(
            t.login_failures.insert(), {"user_id": user_id, "client": client, "at": at}
        )

    def login_failures_since(
        self, user_id: str, client: str, since: datetime, limit: int
    ) -> tuple[list[datetime], list[datetime]]:
        """The newest ``limit`` failed log-ins since ``since`` for the user id and for
        the client, each newest first."""
        f = t.login_failures.c
        found: list[list[datetime]] = []
        for column, value in ((f.user_id, user_id), (f.client, client)):
            q = (
                sa.select(f.at)
                .where(column == value, f.at >= since)
                .order_by(f.at.desc())
                .limit(limit)
            )
            found.append(list(self.conn.scalars(q)))
        return found[0], found[1]

    def clear_login_failures(self, user_id: str, before: datetime) -> None:
        """Forget the user's failed log-ins (after a right password), and everyone's
        older than ``before`` (out of every window)."""
        f = t.login_failures.c
        self.conn.execute(
            t.login_failures.delete().where(sa.or_(f.user_id == user_id, f.at < before))
        )

    # --- a claimed batch of timers in one transaction ----------------------------------
    # On PostgreSQL a batch is a handful of set-based statements: ids as one array
    # parameter (``= ANY``), rows as one JSON document unpacked by jsonb_to_recordset.
    # An IN list or an executemany is one parameter or one execution per row, and that
    # was most of a timer effect's cost (docs/benchmarks.md, "Timers on PostgreSQL").
    @property
    def _pg(self) -> bool:
        return self.conn.dialect.name == "postgresql"

    def _ids_match(self, column: Any, ids: Sequence[int]) -> Any:
        if self._pg:
            return column == sa.func.any(sa.bindparam("ids", list(ids), type_=_BIGINT_ARRAY))
        return column.in_(list(ids))

    def _timer_batch(self) -> sa.Select[Any]:
        """Timers with what their effect needs of the case and the rule instance, in one
        read: the case's identity, state, version, org unit and priority (not its data),
        and the instance's status, due time and progress. Outer joins: a timer whose
        case or instance is gone comes back with NULLs and is skipped with a reason."""
        tm, c, d = t.timers.c, t.cases.c, t.case_deadlines.c
        return sa.select(
            tm.id,
            tm.case_id,
            tm.rule,
            tm.armed_seq,
            tm.kind,
            tm.level,
            tm.due_at,
            c.number,
            c.workflow,
            c.workflow_version,
            c.state,
            c.version,
            c.org_unit,
            c.data["priority"].label("priority"),
            d.status.label("d_status"),
            d.due_at.label("d_due_at"),
            d.warned.label("d_warned"),
            d.breached_at.label("d_breached_at"),
            d.level.label("d_level"),
        )

    def _batch_joins(self, timers: Any) -> Any:
        tm, c, d = t.timers.c, t.cases.c, t.case_deadlines.c
        return timers.outerjoin(t.cases, c.id == tm.case_id).outerjoin(
            t.case_deadlines,
            sa.and_(d.case_id == tm.case_id, d.rule == tm.rule, d.armed_seq == tm.armed_seq),
        )

    def timer_batch(self, ids: Sequence[int]) -> list[TimerRow]:
        """:meth:`_timer_batch` of the timers ``ids`` (already leased), in due order."""
        tm = t.timers.c
        q = (
            self._timer_batch()
            .select_from(self._batch_joins(t.timers))
            .where(self._ids_match(tm.id, ids))
            .order_by(tm.due_at, tm.id)
        )
        return [TimerRow._make(row) for row in self.conn.execute(q).all()]

    def take_due_timer_batch(self, now: datetime, limit: int, by: str) -> list[TimerRow]:
        """PostgreSQL: take up to ``limit`` due timers not leased to a live worker —
        locked with ``FOR UPDATE SKIP LOCKED`` and marked fired by ``by`` — and read them
        as :meth:`timer_batch` does, all in one statement. A claim that needs no lease:
        a worker that dies rolls back the marks, its effects and its locks together. The
        caller corrects the few that must not fire (:meth:`skip_timers`, :meth:`reopen_timers`)
        in the same transaction."""
        result = self.conn.execute(_PG_TAKE_DUE_BATCH, {"now": now, "n": limit, "by": by})
        return [TimerRow._make(row) for row in result.all()]

    def take_timers(self, ids: Sequence[int], worker: str, now: datetime) -> set[int]:
        """Mark fired those of ``ids`` still pending and leased to ``worker``; return them.
        (The outcome is the effect's event, ``deadline_<kind>``.)"""
        tm = t.timers.c
        q = (
            t.timers.update()
            .where(self._ids_match(tm.id, ids), tm.status == "pending", tm.claimed_by == worker)
            .values(status="fired", fired_at=now, outcome="deadline_" + tm.kind)
            .returning(tm.id)
        )
        return {row[0] for row in self.conn.execute(q)}

    def reopen_timers(self, ids: Sequence[int], worker: str, until: datetime) -> None:
        """Put timers taken by :meth:`take_due_timer_batch` back to pending, leased to
        ``worker`` until ``until`` (for one-by-one handling)."""
        tm = t.timers.c
        self.conn.execute(
            t.timers.update()
            .where(self._ids_match(tm.id, ids))
            .values(
                status="pending",
                fired_at=None,
                outcome=None,
                claimed_by=worker,
                claimed_until=until,
            )
        )

    def skip_timers(self, outcomes: Sequence[tuple[int, str]]) -> None:
        if outcomes:
            self.conn.execute(
                t.timers.update()
                .where(t.timers.c.id == sa.bindparam("b_id"))
                .values(status="skipped", outcome=sa.bindparam("b_outcome")),
                [{"b_id": i, "b_outcome": o[:200]} for i, o in outcomes],
            )

    def bump_cases(self, rows: Sequence[CaseBump]) -> int:
        """Version-checked bumps, many at once: each row's ``id`` from ``expected`` to
        ``version`` at ``at``, its ``changes`` (top-level data keys) set. Returns how
        many rows matched; fewer than given means a case changed meanwhile."""
        if not rows:
            return 0
        if self._pg:
            return int(self.conn.execute(_PG_BUMP_CASES, {"doc": _doc(rows)}).rowcount)
        matched = 0
        changing = [r for r in rows if r["changes"]]
        if changing:
            current = {
                row.id: row.data
                for row in self.conn.execute(
                    sa.select(_c.id, _c.data).where(_c.id.in_([r["id"] for r in changing]))
                )
            }
            params = [
                {
                    "b_id": r["id"],
                    "b_expected": r["expected"],
                    "b_version": r["version"],
                    "b_now": r["at"],
                    "b_data": {**current.get(r["id"], {}), **r["changes"]},
                }
                for r in changing
            ]
            matched += int(self.conn.execute(_UPDATE_CASE[False, False], params).rowcount)
        plain = [
            {
                "b_id": r["id"],
                "b_expected": r["expected"],
                "b_version": r["version"],
                "b_now": r["at"],
            }
            for r in rows
            if not r["changes"]
        ]
        if plain:
            matched += int(self.conn.execute(_BUMP_VERSION, plain).rowcount)
        return matched

    def record_effects(
        self,
        bumps: Sequence[CaseBump],
        history: Sequence[HistoryRow],
        deadlines: Sequence[InstanceProgress],
        outbox: Sequence[OutboxRow],
        now: datetime,
    ) -> int:
        """A batch of timer effects: :meth:`bump_cases`, :meth:`append_history_many`,
        :meth:`update_deadlines_many` and :meth:`insert_outbox` (one statement on
        PostgreSQL). Returns how many cases the version-checked bump matched; the
        caller rolls back if that is fewer than ``bumps``."""
        self._read_deadlines = None  # what load_case read ahead is no longer current
        if not self._pg:
            matched = self.bump_cases(bumps)
            self.append_history_many(history)
            self.update_deadlines_many(deadlines)
            self.insert_outbox(outbox, now)
            return matched
        params = {
            "cases": _doc(bumps),
            "history": _doc(self._hashed(history)),
            "deadlines": _doc(deadlines),
            "outbox": _doc(outbox),
            "now": now,
        }
        return int(self.conn.execute(_PG_RECORD_EFFECTS, params).scalar_one())

    def outbox(self, case_id: int | None = None) -> list[OutboxRecord]:
        """Outbox rows, oldest first (of one case, or all), without their case number."""
        o = t.outbox.c
        q = _OUTBOX.order_by(o.id)
        if case_id is not None:
            q = q.where(o.case_id == case_id)
        return [OutboxRecord._make(row) for row in self.conn.execute(q)]

    def append_history_many(self, rows: Sequence[HistoryRow]) -> None:
        if rows and self._pg:
            self.conn.execute(_PG_INSERT_HISTORY, {"doc": _doc(self._hashed(rows))})
        elif rows:
            self.conn.execute(_INSERT_HISTORY, self._hashed(rows))

    def _hashed(self, rows: Sequence[HistoryRow]) -> list[dict[str, Any]]:
        """``rows`` as the history table takes them, each with its hash chained to the
        row before it in its case (``hot.HotStatements.append_history`` does the same
        for one row): the rows before the first of each case read in one query."""
        written = {(r["case_id"], r["seq"]) for r in rows}
        wanted = (
            {(r["case_id"], r["seq"] - 1) for r in rows if r["seq"] > 1}
            - written
            - self._heads.keys()
        )
        if wanted:
            h = t.history.c
            found = self.conn.execute(
                sa.select(h.case_id, h.seq, h.hash).where(
                    sa.tuple_(h.case_id, h.seq).in_(sorted(wanted))
                )
            )
            self._heads.update({(c, q): hash_ for c, q, hash_ in found})
        out: list[dict[str, Any]] = []
        for r in rows:
            hash_ = audit.written_row_hash(
                self._heads.get((r["case_id"], r["seq"] - 1), audit.GENESIS),
                number=r["number"],
                seq=r["seq"],
                at=r["at"],
                actor_json=json_dumps(r["actor"]),
                event=r["event"],
                from_state=r["from_state"],
                to_state=r["to_state"],
                data_json=json_sorted(r["data"]),
                notes=r["notes"],
            )
            self._heads[r["case_id"], r["seq"]] = hash_
            out.append(
                {
                    "case_id": r["case_id"],
                    "seq": r["seq"],
                    "at": r["at"],
                    "actor": r["actor"],
                    "event": r["event"],
                    "from_state": r["from_state"],
                    "to_state": r["to_state"],
                    "data": r["data"],
                    "notes": r["notes"],
                    "hash": hash_,
                }
            )
        return out

    def update_deadlines_many(self, rows: Sequence[InstanceProgress]) -> None:
        """Rule instances' progress, many at once: each row's ``case_id``, ``rule`` and
        ``armed_seq`` name it; ``warned``, ``breached_at`` and ``level`` are set."""
        self._read_deadlines = None  # what load_case read ahead is no longer current
        if rows and self._pg:
            self.conn.execute(_PG_UPDATE_DEADLINES, {"doc": _doc(rows)})
        elif rows:
            d = t.case_deadlines.c
            self.conn.execute(
                t.case_deadlines.update()
                .where(
                    d.case_id == sa.bindparam("b_case"),
                    d.rule == sa.bindparam("b_rule"),
                    d.armed_seq == sa.bindparam("b_seq"),
                )
                .values(
                    warned=sa.bindparam("b_warned"),
                    breached_at=sa.bindparam("b_breached", type_=t.UTCDateTime),
                    level=sa.bindparam("b_level"),
                ),
                [
                    {
                        "b_case": r["case_id"],
                        "b_rule": r["rule"],
                        "b_seq": r["armed_seq"],
                        "b_warned": r["warned"],
                        "b_breached": r["breached_at"],
                        "b_level": r["level"],
                    }
                    for r in rows
                ],
            )

    # --- the tamper-evident history (engine/audit.py) -----------------------------------
    def audit_cases(
        self, after: int, limit: int, cases: Sequence[int] | None = None
    ) -> list[tuple[int, str, int]]:
        c = t.cases.c
        q = sa.select(c.id, c.number, c.version).where(c.id > after)
        if cases is not None:
            q = q.where(c.id.in_(list(cases)))
        found = self.conn.execute(q.order_by(c.id).limit(limit))
        return [(int(i), str(n), int(v)) for i, n, v in found]

    def audit_rows(self, case_ids: Sequence[int]) -> dict[int, list[audit.StoredRow]]:
        h = t.history.c
        rows: dict[int, list[audit.StoredRow]] = {i: [] for i in case_ids}
        found = self.conn.execute(
            sa.select(
                h.case_id,
                h.seq,
                h.at,
                h.actor,
                h.event,
                h.from_state,
                h.to_state,
                h.data,
                h.notes,
                h.hash,
            )
            .where(h.case_id.in_(list(case_ids)))
            .order_by(h.case_id, h.seq)
        )
        for case_id, *values in found:
            rows[case_id].append(audit.StoredRow(*values))
        return rows

    def day_rows(self, start: datetime, end: datetime) -> list[tuple[str, int, str]]:
        h, c = t.history.c, t.cases.c
        found = self.conn.execute(
            sa.select(sa.func.coalesce(c.number, ""), h.seq, h.hash)
            .select_from(t.history.outerjoin(t.cases, c.id == h.case_id))
            .where(h.at >= start, h.at < end)
        )
        return [(str(n), int(q), str(x)) for n, q, x in found]

    def first_history_at(self) -> datetime | None:
        found: datetime | None = self.conn.execute(sa.select(sa.func.min(t.history.c.at))).scalar()
        if found is not None and found.tzinfo is None:  # min() loses the column's type
            found = found.replace(tzinfo=UTC)
        return found

    def anchors(self) -> list[audit.Anchor]:
        a = t.audit_anchors.c
        found = self.conn.execute(sa.select(a.day, a.hash, a.rows, a.sealed_at).order_by(a.day))
        return [audit.Anchor(*row) for row in found]

    def insert_anchor(self, anchor: audit.Anchor) -> None:
        self.conn.execute(
            t.audit_anchors.insert().values(
                day=anchor.day, hash=anchor.hash, rows=anchor.rows, sealed_at=anchor.sealed_at
            )
        )

    # --- refused attempts (the audit) ----------------------------------------------------
    def insert_refusal(
        self,
        case: int | str,
        at: datetime,
        actor: Actor,
        event: str,
        kind: str,
        reasons: Sequence[str],
    ) -> None:
        case_id = self.load_case(case).id
        self.conn.execute(
            t.refusals.insert().values(
                case_id=case_id,
                at=at,
                actor=actor.to_json(),
                event=event,
                kind=kind,
                reasons=list(reasons),
            )
        )

    def refusals(self, case_id: int) -> list[Refusal]:
        r = t.refusals.c
        rows = self.conn.execute(
            sa.select(t.refusals).where(r.case_id == case_id).order_by(r.at, r.id)
        )
        return [
            Refusal(row.at, Actor.from_json(row.actor), row.event, row.kind, tuple(row.reasons))
            for row in rows
        ]

    # --- the outbox's delivery (notifications.delivery) --------------------------------
    def outbox_to_expand(self, now: datetime, limit: int) -> list[NoticeToExpand]:
        """Notices not yet resolved to addresses (``channel`` NULL), pending and due,
        with their case's number, org unit and data; locked (PostgreSQL: SKIP LOCKED)."""
        o, c = t.outbox.c, t.cases.c
        q = (
            _OUTBOX_NUMBERED.add_columns(
                c.org_unit.label("case_org_unit"), c.data.label("case_data")
            )
            .where(o.channel.is_(None), o.status == "pending", o.next_attempt_at <= now)
            .order_by(o.id)
            .limit(limit)
        )
        if self._pg:
            q = q.with_for_update(skip_locked=True, of=t.outbox)
        n = len(OutboxRecord._fields)
        return [
            NoticeToExpand(OutboxRecord._make(row[:n]), row[n], row[n + 1])
            for row in self.conn.execute(q)
        ]

    def insert_outbox_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Whole outbox rows (every column given), e.g. a notice's per-address messages."""
        if rows:
            self.conn.execute(t.outbox.insert(), list(rows))

    def set_outbox(self, ids: Sequence[int], **values: Any) -> None:
        if ids:
            self.conn.execute(
                t.outbox.update().where(t.outbox.c.id.in_(list(ids))).values(**values)
            )

    def claim_outbox(
        self, now: datetime, worker: str, until: datetime, limit: int
    ) -> list[OutboxRecord]:
        """Lease up to ``limit`` messages (rows with an address) that are pending, due and
        not leased to a live worker; return them with their case number."""
        o = t.outbox.c
        due = (
            sa.select(o.id)
            .where(
                o.channel.is_not(None),
                o.status == "pending",
                o.next_attempt_at <= now,
                sa.or_(o.claimed_until.is_(None), o.claimed_until < now),
            )
            .order_by(o.next_attempt_at, o.id)
            .limit(limit)
        )
        if self._pg:
            due = due.with_for_update(skip_locked=True)
        ids = [row[0] for row in self.conn.execute(due)]
        if not ids:
            return []
        self.conn.execute(
            t.outbox.update().where(o.id.in_(ids)).values(claimed_by=worker, claimed_until=until)
        )
        q = _OUTBOX_NUMBERED.where(o.id.in_(ids)).order_by(o.id)
        return [OutboxRecord._make(row) for row in self.conn.execute(q)]

    def finish_outbox(self, message_id: int, worker: str, **values: Any) -> bool:
        """Record a delivery attempt's outcome, only while the message is still pending and
        leased to ``worker`` (a worker whose lease ran out changes nothing)."""
        o = t.outbox.c
        result = self.conn.execute(
            t.outbox.update()
            .where(o.id == message_id, o.status == "pending", o.claimed_by == worker)
            .values(claimed_by=None, claimed_until=None, **values)
        )
        return result.rowcount == 1

    def renew_outbox(self, ids: Sequence[int], worker: str, until: datetime) -> int:
        o = t.outbox.c
        q = t.outbox.update().where(
            o.id.in_(list(ids)), o.claimed_by == worker, o.status == "pending"
        )
        return int(self.conn.execute(q.values(claimed_until=until)).rowcount)

    def release_outbox(self, worker: str) -> int:
        o = t.outbox.c
        result = self.conn.execute(
            t.outbox.update()
            .where(o.claimed_by == worker, o.status == "pending")
            .values(claimed_by=None, claimed_until=None)
        )
        return int(result.rowcount)

    def list_outbox(
        self,
        *,
        status: str | None = None,
        case_id: int | None = None,
        ids: Sequence[int] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[OutboxRecord]:
        """Outbox rows with their case's number, oldest first, filtered as given."""
        o = t.outbox.c
        q = _OUTBOX_NUMBERED
        if status is not None:
            q = q.where(o.status == status)
        if case_id is not None:
            q = q.where(o.case_id == case_id)
        if ids is not None:
            q = q.where(o.id.in_(list(ids)))
        q = q.order_by(o.id).offset(offset)
        if limit is not None:
            q = q.limit(limit)
        return [OutboxRecord._make(row) for row in self.conn.execute(q)]

    def retry_outbox(self, ids: Sequence[int], now: datetime) -> int:
        """Dead messages (or notices) back to pending, due now, with fresh attempts; the
        last error is kept until the next attempt replaces it."""
        o = t.outbox.c
        result = self.conn.execute(
            t.outbox.update()
            .where(o.id.in_(list(ids)), o.status == "dead")
            .values(
                status="pending",
                attempts=0,
                next_attempt_at=now,
                claimed_by=None,
                claimed_until=None,
            )
        )
        return int(result.rowcount)

    def insert_inbox(self, row: Mapping[str, Any]) -> bool:
        """One in-app inbox entry; False if its key was delivered before (a retry)."""
        insert: Any = (
            postgresql.insert(t.inbox) if self._pg else sqlite_insert(t.inbox)
        ).on_conflict_do_nothing(index_elements=["key"])
        return bool(self.conn.execute(insert.values(**row)).rowcount)

    def mark_inbox_read(self, user_id: str, ids: Sequence[int] | None, now: datetime) -> int:
        """Mark the user's unread entries (those of ``ids``, or all) read; how many."""
        i = t.inbox.c
        q = t.inbox.update().where(i.user_id == user_id, i.read_at.is_(None))
        if ids is not None:
            q = q.where(i.id.in_(list(ids)))
        return int(self.conn.execute(q.values(read_at=now)).rowcount)

    def inbox(self, user_id: str, *, unread_only: bool = False) -> list[InboxRecord]:
        i = t.inbox.c
        q = _INBOX.where(i.user_id == user_id)
        if unread_only:
            q = q.where(i.read_at.is_(None))
        rows = self.conn.execute(q.order_by(i.created_at.desc(), i.id.desc()))
        return [InboxRecord._make(row) for row in rows]

    # --- the desk's holiday arrangements (issue #10) -------------------------------------
    def bump_calendar_generation(self) -> int:
        """Take the arrangements' lock and move them on (the first step of an import)."""
        cs = t.calendar_state.c
        self.conn.execute(
            t.calendar_state.update().where(cs.id == 1).values(generation=cs.generation + 1)
        )
        return self.calendar_generation()

    def insert_calendar_import(
        self,
        *,
        year: int,
        source: str,
        file_name: str,
        imported_by: str,
        imported_at: datetime,
        override: bool,
        days: Sequence[DeskDay],
    ) -> int:
        """Store a year's arrangement as the current one; an earlier import of the year
        is kept, no longer current. Returns the import's id."""
        ci = t.calendar_imports.c
        self.conn.execute(
            t.calendar_imports.update()
            .where(ci.year == year, ci.current.is_(True))
            .values(current=False)
        )
        import_id = self.conn.execute(
            t.calendar_imports.insert()
            .values(
                year=year,
                source=source,
                file_name=file_name,
                imported_by=imported_by,
                imported_at=imported_at,
                override=override,
                current=True,
            )
            .returning(ci.id)
        ).scalar_one()
        self.conn.execute(
            t.calendar_days.insert(),
            [
                {
                    "import_id": import_id,
                    "day": d.day,
                    "working": d.working,
                    "name": d.name,
                    "line": d.line,
                }
                for d in days
            ],
        )
        return int(import_id)

    def calendar_imports(self, year: int) -> list[CalendarImportRecord]:
        """Every import of ``year``, newest first (the current one and those it replaced)."""
        ci = t.calendar_imports.c
        q = _CALENDAR_IMPORTS.where(ci.year == year).order_by(ci.id.desc())
        return [CalendarImportRecord(*row) for row in self.conn.execute(q)]

    def provisional_deadline_years(self) -> dict[str, int]:
        """Running and paused deadlines counted on provisional years, by their
        ``provisional`` value (``"2027"``, ``"2027,2028"``)."""
        d = t.case_deadlines.c
        q = (
            sa.select(d.provisional, sa.func.count())
            .where(d.status.in_(("running", "paused")), d.provisional.is_not(None))
            .group_by(d.provisional)
        )
        return {row[0]: int(row[1]) for row in self.conn.execute(q)}

    def next_due(self) -> datetime | None:
        tm = t.timers.c
        return self.conn.execute(
            sa.select(sa.func.min(tm.due_at)).where(tm.status == "pending")
        ).scalar()


_BIGINT_ARRAY: Any = postgresql.ARRAY(sa.BigInteger())
_BUMP_VERSION = (
    t.cases.update()
    .where(_c.id == sa.bindparam("b_id"), _c.version == sa.bindparam("b_expected"))
    .values(
        version=sa.bindparam("b_version"), updated_at=sa.bindparam("b_now", type_=t.UTCDateTime)
    )
)
# An unchanged ``data`` is left as it is (no rewrite of the JSON); changes set top-level
# keys, as ``{**data, **changes}`` does in Python. Each statement takes its rows as one
# JSON document (``{p}``: the parameter's name), so they can run alone or together.
_BUMP_SQL = (
    "UPDATE cases AS c SET data = CASE WHEN r.changes = '{{}}'::jsonb THEN c.data "
    "ELSE c.data || r.changes END, version = r.version, updated_at = r.at "
    "FROM jsonb_to_recordset(CAST(:{p} AS jsonb)) AS r("
    "id bigint, expected integer, version integer, changes jsonb, at timestamptz) "
    "WHERE c.id = r.id AND c.version = r.expected"
)
_PG_BUMP_CASES = sa.text(_BUMP_SQL.format(p="doc"))
# ``id = ANY(ARRAY(...))``, not ``UPDATE ... FROM due``: the planner joined the latter by
# hashing a sequential scan of the whole timers table (3 of 7 ms a batch at 20,000 rows,
# and growing with the table); the array is probed through the primary key.
_PG_TAKE_DUE_BATCH = sa.text(
    "WITH taken AS (UPDATE timers AS t SET status = 'fired', fired_at = :now, "
    "claimed_by = :by, outcome = 'deadline_' || t.kind "
    "WHERE t.id = ANY(ARRAY(SELECT id FROM timers WHERE status = 'pending' "
    "AND due_at <= :now AND (claimed_until IS NULL OR claimed_until < :now) "
    "ORDER BY due_at LIMIT :n FOR UPDATE SKIP LOCKED)) "
    "RETURNING t.id, t.case_id, t.rule, t.armed_seq, t.kind, t.level, t.due_at) "
    "SELECT k.id, k.case_id, k.rule, k.armed_seq, k.kind, k.level, k.due_at, "
    "c.number, c.workflow, c.workflow_version, c.state, c.version, c.org_unit, "
    "c.data -> 'priority' AS priority, d.status AS d_status, d.due_at AS d_due_at, "
    "d.warned AS d_warned, d.breached_at AS d_breached_at, d.level AS d_level "
    "FROM taken AS k LEFT JOIN cases AS c ON c.id = k.case_id "
    "LEFT JOIN case_deadlines AS d ON d.case_id = k.case_id AND d.rule = k.rule "
    "AND d.armed_seq = k.armed_seq ORDER BY k.due_at, k.id"
).columns(
    due_at=t.UTCDateTime,
    d_due_at=t.UTCDateTime,
    d_breached_at=t.UTCDateTime,
    priority=t.JSONType,
)
_OUTBOX_SQL = (
    "INSERT INTO outbox (key, case_id, seq, template, recipient, org_unit, context, status, "
    "attempts, next_attempt_at, created_at) "
    "SELECT key, case_id, seq, template, recipient, org_unit, context, 'pending', 0, :now, "
    ":now FROM jsonb_to_recordset(CAST(:{p} AS jsonb)) AS r(key text, case_id bigint, "
    "seq integer, template text, recipient text, org_unit text, context jsonb)"
)
_PG_INSERT_OUTBOX = sa.text(_OUTBOX_SQL.format(p="doc"))
_HISTORY_SQL = (
    "INSERT INTO history (case_id, seq, at, actor, event, from_state, to_state, data, notes, "
    "hash) SELECT case_id, seq, at, actor, event, from_state, to_state, data, notes, hash "
    "FROM jsonb_to_recordset(CAST(:{p} AS jsonb)) AS r(case_id bigint, seq integer, "
    "at timestamptz, actor jsonb, event text, from_state text, to_state text, data jsonb, "
    "notes jsonb, hash text)"
)
_PG_INSERT_HISTORY = sa.text(_HISTORY_SQL.format(p="doc"))
_DEADLINES_SQL = (
    "UPDATE case_deadlines AS d SET warned = r.warned, breached_at = r.breached_at, "
    "level = r.level FROM jsonb_to_recordset(CAST(:{p} AS jsonb)) AS r(case_id bigint, "
    "rule text, armed_seq integer, warned integer, breached_at timestamptz, level integer) "
    "WHERE d.case_id = r.case_id AND d.rule = r.rule AND d.armed_seq = r.armed_seq"
)
_PG_UPDATE_DEADLINES = sa.text(_DEADLINES_SQL.format(p="doc"))
# A batch of timer effects in one statement: each round trip costs the client ~0.3 ms
# of CPU on this machine when it has to wait (docs/benchmarks.md), so four become one.
_PG_RECORD_EFFECTS = sa.text(
    f"WITH bumped AS ({_BUMP_SQL.format(p='cases')} RETURNING c.id), "
    f"h AS ({_HISTORY_SQL.format(p='history')}), "
    f"d AS ({_DEADLINES_SQL.format(p='deadlines')}), "
    f"o AS ({_OUTBOX_SQL.format(p='outbox')}) "
    "SELECT count(*) FROM bumped"
)


def _case_filters(
    q: Any,
    number: str | None,
    policy_number: str | None,
    insured_name: str | None,
    id_number: str | None,
    workflow: str | None,
    state: str | Sequence[str] | None,
    keys: Mapping[str, str] | None = None,
) -> Any:
    """``q`` restricted to the cases matching every filter given (one place for both
    the page and its count). A workflow's own key is looked up in ix_case_keys_lookup
    (key, value, case id: index-only), then each case by its id."""
    c = t.cases.c
    for key, wanted in sorted((keys or {}).items()):
        if key in SEARCH_KEYS:
            q = q.where(c[key] == wanted)
        else:
            k = t.case_keys.c
            q = q.where(c.id.in_(sa.select(k.case_id).where(k.key == key, k.value == wanted)))
    for column, value in (
        (c.number, number),
        (c.policy_number, policy_number),
        (c.insured_name, insured_name),
        (c.id_number, id_number),
        (c.workflow, workflow),
    ):
        if value is not None:
            q = q.where(column == value)
    if isinstance(state, str):
        q = q.where(c.state == state)
    elif state is not None:
        q = q.where(c.state.in_(list(state)))
    return q


def _scoped(q: Any, scope: CaseScope | None, *, by_index: bool = True) -> Any:
    """``q`` restricted to the cases ``scope`` lets its actor see (engine/authority.py).

    ``by_index=False``: the test is written so no index of ``cases`` can serve it
    (``workflow || ''``, ``org_unit || ''``), for a query that must be driven by another
    table's index — else a planner may walk every case of the workflows seen to find
    the few rows it needs (the desk's deadline list: 200 ms at a million cases)."""
    if scope is None:
        return q
    c = t.cases.c
    workflow = c.workflow if by_index else c.workflow.concat("")
    unit = c.org_unit if by_index else c.org_unit.concat("")
    seen: list[Any] = []
    if scope.every_case_of:
        seen.append(workflow.in_(sorted(scope.every_case_of)))
    if scope.org_unit is not None:
        seen.append(unit == scope.org_unit)
    return q.where(sa.or_(*seen) if seen else sa.false())


def _flag(condition: Any) -> Any:
    return sa.case((condition, 1), else_=0)


def _how_many(condition: Any) -> Any:
    """How many rows of the group ``condition`` holds for."""
    return sa.func.sum(_flag(condition))


def _period(per: str | None, instant: Any, pg: bool) -> Any:
    """The label of the Beijing day ("2026-05-06"), ISO week ("2026-W19") or month
    ("2026-05") ``instant`` falls in, as ``datetime.strftime`` and ``isocalendar`` give
    it; None for ``per`` None. Beijing is UTC+8 all year (Asia/Shanghai has kept no
    summer time since 1991). Every constant is SQL text, not a parameter, so that GROUP
    BY repeats the very expression the select list has."""
    if per is None:
        return None
    if pg:
        local = sa.func.timezone(_sql("'UTC'"), instant) + _sql("interval '8 hours'")
        pattern = {"day": "YYYY-MM-DD", "week": 'IYYY-"W"IW', "month": "YYYY-MM"}[per]
        return sa.func.to_char(local, _sql(f"'{pattern}'"))
    # SQLite's date functions keep milliseconds (rounded): cut the stored text's
    # microseconds first, or 15:59:59.9996 UTC would fall on the next Beijing day.
    beijing = (sa.func.substr(instant, _sql("1"), _sql("19")), _sql("'+8 hours'"))
    if per == "week":
        # An ISO week is the week of its Thursday, the Thursday on or after the day three
        # days before: the Thursday's year is the week's, its day of the year / 7 the week.
        thursday = sa.func.date(*beijing, _sql("'-3 days'"), _sql("'weekday 4'"))
        day_of_year = sa.cast(sa.func.strftime(_sql("'%j'"), thursday), sa.Integer)
        return sa.func.strftime(_sql("'%Y-W'"), thursday).concat(
            sa.func.printf(
                _sql("'%02d'"), (day_of_year + _sql("6")).self_group().op("/")(_sql("7"))
            )
        )
    pattern = {"day": "'%Y-%m-%d'", "month": "'%Y-%m'"}[per]
    return sa.func.strftime(_sql(pattern), *beijing)


def _sql(text: str) -> Any:
    """A constant written into the statement's text."""
    return sa.literal_column(text)


def _micros(instant: Any, pg: bool) -> Any:
    """An instant as whole microseconds since 1970 (BIGINT): spans then subtract
    exactly, where seconds as floats or SQLite's julian days would not."""
    if pg:
        return sa.cast(sa.extract("epoch", instant) * _sql("1000000"), sa.BigInteger)
    # The stored text is "YYYY-MM-DD HH:MM:SS.ffffff": whole seconds through strftime,
    # the microseconds as they are written.
    whole = sa.func.strftime(_sql("'%s'"), sa.func.substr(instant, _sql("1"), _sql("19")))
    fraction = sa.func.substr(instant, _sql("21"))
    return sa.cast(whole, sa.Integer) * _sql("1000000") + sa.cast(fraction, sa.Integer)


def _middles(spans: Any, pg: bool) -> sa.Select[Any]:
    """(workflow, state, low, high) per group of ``spans``: its middle span, twice, when
    it has an odd number of them, else its middle two — what a median is made of."""
    s = spans.c
    if pg:
        # The lower middle, and the mean of the middle two (the two aggregates share
        # their sorted input: the same transition, the same ordering). The mean is exact
        # in a double for spans under 2**52 microseconds (142 years), and so is the
        # higher middle, 2 * mean - lower.
        ordered = sa.cast(s.span, sa.Float)
        low = sa.func.percentile_disc(0.5).within_group(ordered)
        mean = sa.func.percentile_cont(0.5).within_group(ordered)
        return sa.select(s.workflow, s.state, low, 2 * mean - low).group_by(s.workflow, s.state)
    # SQLite has no percentile: rank each group's spans, keep the middle one or two.
    # The count over the same window as the rank (its whole partition as the frame), so
    # that one sort serves both.
    by_span: dict[str, Any] = {"partition_by": (s.workflow, s.state), "order_by": s.span}
    ranked = sa.select(
        s.workflow,
        s.state,
        s.span,
        sa.func.row_number().over(**by_span).label("k"),
        sa.func.count().over(**by_span, rows=(None, None)).label("n"),
    ).subquery("ranked")
    r = ranked.c
    return (
        sa.select(r.workflow, r.state, sa.func.min(r.span), sa.func.max(r.span))
        .where(r.k.in_(((r.n + 1) // 2, (r.n + 2) // 2)))
        .group_by(r.workflow, r.state)
    )


def _doc(rows: Sequence[Mapping[str, Any]] | Sequence[Any]) -> str:
    return json_dumps(list(rows))


def _case(row: sa.Row[Any]) -> Case:
    return Case(
        id=row.id,
        number=row.number,
        workflow=row.workflow,
        workflow_version=row.workflow_version,
        state=row.state,
        data=row.data,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        org_unit=row.org_unit,
    )
