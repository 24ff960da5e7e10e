"""The SLA report is counted and its medians taken in the database (issue #14); it gives
exactly what folding every deadline row and every history row in Python gave — the
implementation it replaced, kept here as the reference — on random desks, on both
databases: random histories (states kept and left, final states reached or not, times
to the microsecond, ties, Beijing midnights), random rule instances, and every filter."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from baoflow.engine import SHANGHAI, Actor, CaseScope, Engine, audit, open_engine
from baoflow.engine.store import tables as t
from baoflow.engine.types import RuleSla, SlaReport
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

T0 = datetime(2020, 12, 20, tzinfo=UTC)  # ISO weeks 2020-W53 and 2026-W53 within reach
DAY_US = 86_400 * 10**6
BEIJING_MIDNIGHT_US = 16 * 3600 * 10**6  # 16:00 UTC

#: An instant: any microsecond of a day, or one close to a Beijing midnight.
INSTANTS = st.builds(
    lambda day, us: T0 + timedelta(days=day, microseconds=us),
    st.integers(0, 2200),
    st.one_of(
        st.integers(0, DAY_US - 1),
        st.integers(BEIJING_MIDNIGHT_US - 2000, BEIJING_MIDNIGHT_US + 2000),
    ),
)
#: A few states of each workflow, among them final ones; "legacy" is no workflow the
#: registry knows (it has no final states).
WORKFLOWS = {
    "claim": ("reported", "registered", "materials_complete", "closed", "withdrawn"),
    "complaint": ("received", "answered", "closed"),
    "legacy": ("open", "closed"),
}
UNITS = (None, "SH", "BJ")
STATUSES = ("running", "paused", "met", "breached_met", "cancelled", "restarted")
ACTORS = (
    None,
    Actor("s01", "陈刚", roles=("supervisor",), org_unit="SH"),
    Actor("h02", "钱伟", roles=("handler",), org_unit="BJ"),
    Actor("x01", "无名", roles=(), org_unit=None),
    Actor.system(),
)


@st.composite
def histories(draw: st.DrawFn, workflow: str) -> list[tuple[str, datetime]]:
    """(to_state, at) in seq order: mostly forward in time, sometimes a step back or
    none at all (the same microsecond)."""
    at = draw(INSTANTS)
    rows = []
    for _ in range(draw(st.integers(0, 7))):
        at += timedelta(microseconds=draw(st.integers(-(10**9), 9 * DAY_US)))
        rows.append((draw(st.sampled_from(WORKFLOWS[workflow])), at))
    return rows


@st.composite
def deadlines(draw: st.DrawFn) -> dict[str, Any]:
    started = draw(INSTANTS)
    return {
        "rule": draw(st.sampled_from(("answer", "hand_over"))),
        "status": draw(st.sampled_from(STATUSES)),
        "started_at": started,
        "due_at": started + timedelta(microseconds=draw(st.integers(-DAY_US, 30 * DAY_US))),
        "breached_at": draw(st.none() | INSTANTS),
    }


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    workflow = draw(st.sampled_from(sorted(WORKFLOWS)))
    return {
        "workflow": workflow,
        "org_unit": draw(st.sampled_from(UNITS)),
        "history": draw(histories(workflow)),
        "deadlines": draw(st.lists(deadlines(), max_size=4)),
    }


@dataclass(frozen=True)
class Ask:
    """One call of ``Engine.sla_report``."""

    now: datetime
    since: datetime | None
    until: datetime | None
    workflow: str | None
    org_unit: str | None
    per: str | None
    visible_to: Actor | None


#: Unfiltered more often than not, so that most asks find rows to count.
ASKS = st.builds(
    Ask,
    now=INSTANTS,
    since=st.none() | st.none() | INSTANTS,
    until=st.none() | st.none() | INSTANTS,
    workflow=st.sampled_from((None, None, None, "claim", "complaint")),
    org_unit=st.sampled_from((None, None, *UNITS)),
    per=st.sampled_from((None, "day", "week", "month")),
    visible_to=st.sampled_from((None, None, None, *ACTORS)),
)


class Asked:
    """A clock each ask sets where it wants, back in time too (a ``FakeClock`` moves
    only forward: history is append-only, but nothing here is written through it)."""

    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


@pytest.fixture(scope="module")
def desk(module_db_url: str) -> Iterator[Engine]:
    eng = open_engine(module_db_url, clock=Asked())
    yield eng
    eng.close()


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stored=st.lists(cases(), max_size=12), asks=st.lists(ASKS, min_size=1, max_size=4))
def test_the_sla_report_in_the_database_is_the_one_folded_in_python(
    desk: Engine, stored: list[dict[str, Any]], asks: list[Ask]
) -> None:
    store(desk, stored)
    for ask in asks:
        desk.clock.at = ask.now  # type: ignore[attr-defined]
        scope = desk.scope(ask.visible_to) if ask.visible_to is not None else None
        expected = reference(desk, ask, scope)
        got = desk.sla_report(
            since=ask.since,
            until=ask.until,
            workflow=ask.workflow,
            org_unit=ask.org_unit,
            per=ask.per,
            visible_to=ask.visible_to,
        )
        assert got == expected, ask


def store(eng: Engine, stored: list[dict[str, Any]]) -> None:
    """The desk holds exactly ``stored``: its cases, their history and deadlines."""
    cases_, history, deadlines_ = [], [], []
    for case_id, case in enumerate(stored, start=1):
        rows = case["history"]
        opened = rows[0][1] if rows else T0
        cases_.append(
            {
                "id": case_id,
                "number": f"T-{case_id}",
                "workflow": case["workflow"],
                "workflow_version": 1,
                "state": rows[-1][0] if rows else WORKFLOWS[case["workflow"]][0],
                "data": {},
                "version": max(len(rows), 1),
                "created_at": opened,
                "updated_at": opened,
                "org_unit": case["org_unit"],
            }
        )
        before, prev = None, audit.GENESIS
        for seq, (state, at) in enumerate(rows, start=1):
            row = {
                "seq": seq,
                "at": at,
                "actor": {"id": "system"},
                "event": "step",
                "from_state": before,
                "to_state": state,
                "data": {},
                "notes": [],
            }
            prev = audit.row_hash(prev, number=f"T-{case_id}", **row)  # type: ignore[arg-type]
            history.append({**row, "case_id": case_id, "hash": prev})
            before = state
        for armed_seq, d in enumerate(case["deadlines"], start=1):
            deadlines_.append(
                {
                    **d,
                    "case_id": case_id,
                    "armed_seq": armed_seq,
                    "paused_seconds": 0.0,
                    "warned": 0,
                    "level": 0,
                }
            )
    with eng.store.write() as tx:
        for table in (t.history, t.case_deadlines, t.cases):
            tx.conn.execute(table.delete())
        for table, rows_ in (
            (t.cases, cases_),
            (t.history, history),
            (t.case_deadlines, deadlines_),
        ):
            if rows_:
                tx.conn.execute(table.insert(), rows_)


# --- the reference: the report as it was folded in Python before issue #14 -----------------
_PERIODS: dict[str | None, Callable[[datetime], str | None]] = {
    None: lambda _at: None,
    "day": lambda at: at.strftime("%Y-%m-%d"),
    "week": lambda at: "{}-W{:02d}".format(*at.isocalendar()[:2]),
    "month": lambda at: at.strftime("%Y-%m"),
}


@dataclass
class _Tally:
    started: int = 0
    met_on_time: int = 0
    met_late: int = 0
    running: int = 0
    breached_open: int = 0


def reference(eng: Engine, ask: Ask, scope: CaseScope | None) -> SlaReport:
    """Every stored row read into Python, filtered and folded there."""
    with eng.store.read() as tx:
        seen = {
            row.id: row for row in tx.conn.execute(sa.select(t.cases)) if _matches(row, ask, scope)
        }
        rows = [
            (seen[d.case_id], d)
            for d in tx.conn.execute(sa.select(t.case_deadlines))
            if d.case_id in seen
            and (ask.since is None or d.started_at >= ask.since)
            and (ask.until is None or d.started_at < ask.until)
        ]
        entries = [
            (seen[h.case_id], h)
            for h in tx.conn.execute(
                sa.select(t.history).order_by(t.history.c.case_id, t.history.c.seq)
            )
            if h.case_id in seen
        ]
    label = _PERIODS[ask.per]
    tally: dict[tuple[str, str, str | None, str | None], _Tally] = {}
    running = breached_now = 0
    for c, r in rows:
        group = (c.workflow, r.rule, c.org_unit, label(r.started_at.astimezone(SHANGHAI)))
        counts = tally.setdefault(group, _Tally())
        counts.started += 1
        if r.status == "met":
            counts.met_on_time += 1
        elif r.status == "breached_met":
            counts.met_late += 1
        elif r.status in ("running", "paused"):
            running += 1
            counts.running += 1
            if r.breached_at is not None or r.due_at <= ask.now:
                counts.breached_open += 1
                breached_now += 1
    durations: dict[tuple[str, str], list[float]] = {}
    to_close: dict[str, list[float]] = {}
    finals = {d.name: d.final_states for d in eng.workflows()}
    entered: Any = None
    opened: Any = None
    for c, e in entries:
        if entered is not None and entered[1].case_id == e.case_id:
            if e.to_state == entered[1].to_state:
                continue
            key = (entered[0].workflow, entered[1].to_state)
            durations.setdefault(key, []).append((e.at - entered[1].at).total_seconds())
        else:
            opened = e
        if opened is not None and e.to_state in finals.get(c.workflow, ()):
            to_close.setdefault(c.workflow, []).append((e.at - opened.at).total_seconds())
            opened = None
        entered = (c, e)
    return SlaReport(
        rules=[
            RuleSla(
                workflow=w,
                rule=rule,
                started=n.started,
                met_on_time=n.met_on_time,
                met_late=n.met_late,
                breached_open=n.breached_open,
                org_unit=unit,
                period=period,
                running=n.running,
            )
            for (w, rule, unit, period), n in sorted(
                tally.items(), key=lambda kv: tuple(x or "" for x in kv[0])
            )
        ],
        running=running,
        breached_now=breached_now,
        median_time_in_state={
            k: timedelta(seconds=statistics.median(v)) for k, v in sorted(durations.items())
        },
        median_time_to_close={
            w: timedelta(seconds=statistics.median(v)) for w, v in sorted(to_close.items())
        },
    )


def _matches(case: Any, ask: Ask, scope: CaseScope | None) -> bool:
    """The case filters: the workflow, the org unit, and what the viewer may see."""
    if ask.workflow is not None and case.workflow != ask.workflow:
        return False
    if ask.org_unit is not None and case.org_unit != ask.org_unit:
        return False
    if scope is None:
        return True
    return case.workflow in scope.every_case_of or (
        scope.org_unit is not None and case.org_unit == scope.org_unit
    )
