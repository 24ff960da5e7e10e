"""What the desk reads back: a case's deadlines, the breaches of the desk, and the SLA
report — derived from the deadline rows and the append-only history, so every figure
can be recomputed and explained (DESIGN.md §3.10)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import timers
from .clock import SHANGHAI
from .registry import Registry
from .store import ReportTx, Store
from .types import Breach, Case, CaseScope, DeadlineStatus, DeskDeadline, RuleSla, SlaReport


def deadlines(tx: ReportTx, registry: Registry, found: Case, now: datetime) -> list[DeadlineStatus]:
    """Every deadline rule instance of the case, oldest first: due, warned, breached,
    paused time, escalation level."""
    definition = registry.get(found.workflow, found.workflow_version)
    pending: dict[tuple[str, int], datetime] = {}
    for t in tx.pending_timers(found.id):
        key = (t.rule, t.armed_seq)
        if t.status == "pending" and key not in pending:
            pending[key] = t.due_at
    result = []
    for row in tx.case_deadlines(found.id):
        rule = timers.rule_named(definition, row.rule)
        paused = timedelta(seconds=row.paused_seconds)
        if row.paused_since is not None:
            paused += now - row.paused_since
        result.append(
            DeadlineStatus(
                rule=row.rule,
                title=rule.title if rule else row.rule,
                article=rule.article if rule else "",
                started_at=row.started_at,
                due_at=row.due_at,
                status=row.status,
                pause_reason=row.pause_reason,
                paused_for=paused,
                warned=row.warned,
                breached=row.breached_at is not None,
                level=row.level,
                stopped_at=row.stopped_at,
                next_timer_at=pending.get((row.rule, row.armed_seq)),
                calendar=row.calendar,
                provisional_years=tuple(int(y) for y in (row.provisional or "").split(",") if y),
            )
        )
    return result


def running_deadlines(
    store: Store,
    registry: Registry,
    *,
    workflow: str | None = None,
    rule: str | None = None,
    org_unit: str | None = None,
    min_level: int | None = None,
    limit: int = 100,
    offset: int = 0,
    scope: CaseScope | None = None,
    handler: str | None = None,
) -> list[DeskDeadline]:
    """The desk's running and paused deadlines, the soonest due first."""
    if workflow is not None:
        registry.get(workflow)
    with store.read() as tx:
        rows = tx.desk_deadlines(
            workflow=workflow,
            rule=rule,
            org_unit=org_unit,
            min_level=min_level,
            limit=limit,
            offset=offset,
            scope=scope,
            handler=handler,
        )
    result = []
    for r in rows:
        found = timers.rule_named(registry.get(r.workflow, r.workflow_version), r.rule)
        result.append(
            DeskDeadline(
                case_number=r.number,
                workflow=r.workflow,
                state=r.state,
                rule=r.rule,
                title=(found.title or found.name) if found else r.rule,
                started_at=r.started_at,
                due_at=r.due_at,
                status=r.status,
                warned=r.warned,
                breached=r.breached_at is not None,
                level=r.level,
                org_unit=r.org_unit,
                provisional_years=tuple(int(y) for y in (r.provisional or "").split(",") if y),
                handler=r.handler,
            )
        )
    return result


def breaches(
    store: Store,
    registry: Registry,
    *,
    workflow: str | None = None,
    rule: str | None = None,
    min_level: int | None = None,
    org_unit: str | None = None,
    scope: CaseScope | None = None,
) -> list[Breach]:
    """Cases with a running deadline past its due time, oldest due first; ``org_unit``
    is the unit of whoever opened the case."""
    if workflow is not None:
        registry.get(workflow)
    with store.read() as tx:
        rows = tx.breached(workflow, rule, min_level, org_unit, scope)
    return [
        Breach(
            r.number,
            r.workflow,
            r.state,
            r.rule,
            r.due_at,
            r.breached_at,
            r.level,
            r.org_unit,
        )
        for r in rows
    ]


def sla_report(
    store: Store,
    registry: Registry,
    now: datetime,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    workflow: str | None = None,
    org_unit: str | None = None,
    per: str | None = None,
    scope: CaseScope | None = None,
) -> SlaReport:
    """On-time rate and breaches per rule and org unit for deadlines started in
    [since, until) — over the whole span, or ``per`` "day", "week" (ISO) or "month"
    of their start (Beijing time) — and the median time cases spend in each state
    (from the history; of ``org_unit``'s cases when given, as the rest)."""
    if per not in _PERIODS:
        raise ValueError(
            f"per must be 'day', 'week' or 'month' (or None for the whole span), not {per!r}"
        )
    label = _PERIODS[per]
    if workflow is not None:
        registry.get(workflow)
    with store.read() as tx:
        rows = tx.deadline_rows(since, until, workflow, org_unit, scope)
        entries = tx.state_entries(workflow, scope, org_unit)
    tally: dict[tuple[str, str, str | None, str | None], _Tally] = {}
    running = breached_now = 0
    for r in rows:
        group = (r.workflow, r.rule, r.org_unit, label(r.started_at.astimezone(SHANGHAI)))
        counts = tally.setdefault(group, _Tally())
        counts.started += 1
        if r.status == "met":
            counts.met_on_time += 1
        elif r.status == "breached_met":
            counts.met_late += 1
        elif r.status in ("running", "paused"):
            running += 1
            counts.running += 1
            if r.breached_at is not None or r.due_at <= now:
                counts.breached_open += 1
                breached_now += 1
    # A stay in a state runs from the row that entered it to the row that left it;
    # rows in between that keep the state (timer effects, self-loops) do not split it.
    durations: dict[tuple[str, str], list[float]] = {}
    # A case's time to close runs from its first row (the opening) to the first row
    # that put it in a final state of its workflow.
    to_close: dict[str, list[float]] = {}
    finals = {d.name: d.final_states for d in registry.latest()}
    entered: Any = None
    opened: Any = None
    for e in entries:
        if entered is not None and entered.case_id == e.case_id:
            if e.to_state == entered.to_state:
                continue
            key = (entered.workflow, entered.to_state)
            durations.setdefault(key, []).append((e.at - entered.at).total_seconds())
        else:
            opened = e
        if opened is not None and e.to_state in finals.get(e.workflow, ()):
            to_close.setdefault(e.workflow, []).append((e.at - opened.at).total_seconds())
            opened = None  # closed once: a later row does not close it again
        entered = e
    return SlaReport(
        rules=[
            RuleSla(
                workflow=w,
                rule=rule,
                started=c.started,
                met_on_time=c.met_on_time,
                met_late=c.met_late,
                breached_open=c.breached_open,
                org_unit=unit,
                period=period,
                running=c.running,
            )
            for (w, rule, unit, period), c in sorted(
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


@dataclass
class _Tally:
    """One rule's counts in one org unit and period, as the report adds them up."""

    started: int = 0
    met_on_time: int = 0
    met_late: int = 0
    running: int = 0
    breached_open: int = 0


#: How ``Engine.sla_report(per=...)`` labels the period a deadline started in.
_PERIODS: dict[str | None, Callable[[datetime], str | None]] = {
    None: lambda _at: None,
    "day": lambda at: at.strftime("%Y-%m-%d"),
    "week": lambda at: "{}-W{:02d}".format(*at.isocalendar()[:2]),
    "month": lambda at: at.strftime("%Y-%m"),
}
