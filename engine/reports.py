"""What the desk reads back: a case's deadlines, the breaches of the desk, and the SLA
report — derived from the deadline rows and the append-only history, so every figure
can be recomputed and explained (DESIGN.md §3.10)."""

from __future__ import annotations

from datetime import datetime, timedelta

from . import timers
from .registry import Registry
from .store import ReportTx, Store
from .types import Breach, Case, CaseScope, DeadlineStatus, DeskDeadline, SlaReport


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
    (from the history; of ``org_unit``'s cases when given, as the rest).

    Counted and the medians taken in the database (issue #14: a face's query is an
    aggregate, its memory flat): a few rows come back, however many cases there are."""
    if per not in _PERIODS:
        raise ValueError(
            f"per must be 'day', 'week' or 'month' (or None for the whole span), not {per!r}"
        )
    if workflow is not None:
        registry.get(workflow)
    finals = {d.name: d.final_states for d in registry.latest()}
    with store.read() as tx:
        rules = tx.sla_tallies(now, since, until, workflow, org_unit, scope, per)
        medians = tx.sla_medians(finals, workflow, scope, org_unit)
    return SlaReport(
        rules=sorted(rules, key=lambda r: (r.workflow, r.rule, r.org_unit or "", r.period or "")),
        running=sum(r.running for r in rules),
        breached_now=sum(r.breached_open for r in rules),
        median_time_in_state=dict(sorted(medians.in_state.items())),
        median_time_to_close=dict(sorted(medians.to_close.items())),
    )


#: What ``Engine.sla_report(per=...)`` may count by: the day, ISO week or month (in
#: Beijing time) a deadline started in, or the whole span.
_PERIODS = (None, "day", "week", "month")
