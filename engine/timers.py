"""Deadline instances and their durable timers (DESIGN.md §3.2, issue #4).

Two halves, both inside the caller's transaction:

- :func:`on_transition` — when a transition enters a state that starts a rule, the rule
  instance and all its timers (warnings, the breach, every escalation level) are written
  in the same commit as the transition; entering a stop state (or firing a stop event)
  ends the instance and cancels its timers; entering a pause state stops the clock and
  parks the timers; leaving it moves the start on by the paused time and re-times them.
- :func:`fire_timer` — one leased timer's effect: it takes effect only while its
  instance is still running (the case is still where the timer was armed), records a
  history row on the case, and marks the timer fired under the lease, so a retry after a
  crash, or a second worker, finds it done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from .calendar import WorkingCalendar, describe, provisional_years
from .clock import SHANGHAI
from .deadlines import Period, due_after, due_at, last_day, resumed_start, warning_times
from .definitions import DeadlineRule, WorkflowDefinition
from .display import format_due, format_duration
from .notices import Notice
from .store.rows import DeadlineRow

if TYPE_CHECKING:
    from .store import Tx

WARNING, BREACH, ESCALATION = "warning", "breach", "escalation"


@dataclass(frozen=True)
class Schedule:
    """When each timer of an instance falls: (kind, level) -> instant."""

    due: datetime
    times: Mapping[tuple[str, int], datetime]
    calendar: str = ""
    #: years it counted only provisionally (no published arrangement yet), as stored
    provisional: str | None = None


def schedule(
    rule: DeadlineRule,
    start: datetime,
    paused: timedelta,
    calendar: WorkingCalendar,
    period: Period | None = None,
) -> Schedule:
    """The due time, the warnings before it and the escalation levels after it
    (``period``: the instance's own, after an extension; the rule's by default)."""
    effective = resumed_start(start, paused)
    due = due_at(effective, period or rule.period, calendar, rule.close_of_business)
    times: dict[tuple[str, int], datetime] = {}
    for i, at in enumerate(warning_times(effective, due, rule.warnings), start=1):
        times[(WARNING, i)] = at
    times[(BREACH, 0)] = due
    for level in rule.escalations:
        if level.after.amount == 0:
            times[(ESCALATION, level.level)] = due
        else:
            times[(ESCALATION, level.level)] = due_after(due, level.after, calendar)
    first = effective.astimezone(SHANGHAI).date()
    last = last_day(max(times.values()))
    guessed = provisional_years(calendar, first, last)
    label = describe(calendar, first, last)
    return Schedule(due, times, label, ",".join(map(str, guessed)) or None)


def caveat(plan: Schedule) -> str:
    """What a history note adds when a due time rests on a provisional year."""
    if plan.provisional is None:
        return ""
    years = "、".join(plan.provisional.split(","))
    return f"（暂定：{years}年放假安排尚未公布，按法定节假日计算，公布后重新计算）"


def touches(definition: WorkflowDefinition, source: str | None, target: str, event: str) -> bool:
    """Whether this transition starts, stops, pauses or resumes any deadline rule."""
    return any(
        _moves(rule, source, target, event)
        or (target in rule.pause_reasons) != (source in rule.pause_reasons)
        for rule in rules_moved(definition, source, target, event)
    )


def rules_moved(
    definition: WorkflowDefinition, source: str | None, target: str, event: str
) -> tuple[DeadlineRule, ...]:
    """The rules this transition may start, stop, pause, resume, restart or extend — those
    ``on_transition`` must look at (each then decides with its running instance); kept
    per definition, for it is asked on every transition. A rule is left out only when
    the transition neither enters nor leaves its start, stop or pause states, nor is one
    of its events: a paused instance is always in one of its rule's pause states."""
    key = ("rules_moved", source, target, event)
    found = definition.memo.get(key)
    if found is None:
        found = definition.memo[key] = tuple(
            rule
            for rule in definition.deadlines
            if _moves(rule, source, target, event)
            or target in rule.pause_reasons
            or source in rule.pause_reasons
        )
    return found


def _moves(rule: DeadlineRule, source: str | None, target: str, event: str) -> bool:
    """Whether the transition starts, restarts, extends or stops an instance of ``rule``."""
    return (
        (target in rule.starts_on and source not in rule.starts_on)
        or event in rule.starts_on_events
        or event in rule.restarts_on_events
        or any(event == e.event for e in rule.extensions)
        or target in rule.stops_on
        or event in rule.stops_on_events
    )


def on_transition(
    tx: Tx,
    definition: WorkflowDefinition,
    *,
    case_id: int,
    source: str | None,
    target: str,
    event: str,
    data: Mapping[str, Any],
    seq: int,
    now: datetime,
    calendar: WorkingCalendar,
) -> list[str]:
    """Start, stop, pause and resume the case's rule instances; return history notes."""
    notes: list[str] = []
    active = {row.rule: row for row in tx.active_deadlines(case_id)}
    for rule in rules_moved(definition, source, target, event):
        instance = active.get(rule.name)
        pause_states = rule.pause_reasons
        if instance is not None and event in rule.restarts_on_events:
            tx.update_deadline(
                case_id, rule.name, instance.armed_seq, status="restarted", stopped_at=now
            )
            tx.set_timer_status(
                case_id, rule.name, instance.armed_seq, from_=("pending", "paused"), to="cancelled"
            )
            notes.append(f"期限「{rule.title or rule.name}」因新情况重新起算")
            instance = None  # and a new one starts below
        extension = next((e for e in rule.extensions if e.event == event), None)
        if instance is not None and extension is not None:
            notes.append(_extend(tx, rule, instance, extension, case_id, now, calendar))
            continue
        if instance is not None:
            if target in rule.stops_on or event in rule.stops_on_events:
                met = "breached_met" if _late(instance, now) else "met"
                tx.update_deadline(
                    case_id, rule.name, instance.armed_seq, status=met, stopped_at=now
                )
                tx.set_timer_status(
                    case_id,
                    rule.name,
                    instance.armed_seq,
                    from_=("pending", "paused"),
                    to="cancelled",
                )
                notes.append(f"期限「{rule.title or rule.name}」已完成 ({met})")
                continue
            if instance.status == "running" and target in pause_states:
                reason = pause_states[target]
                tx.update_deadline(
                    case_id,
                    rule.name,
                    instance.armed_seq,
                    status="paused",
                    pause_reason=reason,
                    paused_since=now,
                )
                tx.set_timer_status(
                    case_id, rule.name, instance.armed_seq, from_=("pending",), to="paused"
                )
                notes.append(f"期限「{rule.title or rule.name}」暂停计时：{reason}")
            elif instance.status == "paused" and target not in pause_states:
                since = instance.paused_since or now  # a paused instance always has one
                paused = timedelta(seconds=instance.paused_seconds) + (now - since)
                plan = schedule(
                    rule, instance.started_at, paused, calendar, instance_period(rule, instance)
                )
                tx.update_deadline(
                    case_id,
                    rule.name,
                    instance.armed_seq,
                    status="running",
                    pause_reason=None,
                    paused_since=None,
                    paused_seconds=paused.total_seconds(),
                    due_at=plan.due,
                    calendar=plan.calendar,
                    provisional=plan.provisional,
                )
                for (kind, level), at in plan.times.items():
                    tx.retime_timer(case_id, rule.name, instance.armed_seq, kind, level, at)
                notes.append(
                    f"期限「{rule.title or rule.name}」恢复计时，新的期限 {format_due(plan.due)}"
                    f"{caveat(plan)}"
                )
            continue
        entering = (
            (target in rule.starts_on and source not in rule.starts_on)
            or event in rule.starts_on_events
            or event in rule.restarts_on_events
        )
        if not entering:
            continue
        if rule.when is not None and not definition.hooks.conditions[rule.when](data):
            continue
        plan = schedule(rule, now, timedelta(0), calendar)
        tx.insert_deadline(
            DeadlineRow(
                case_id=case_id,
                rule=rule.name,
                armed_seq=seq,
                started_at=now,
                due_at=plan.due,
                status="running",
                pause_reason=None,
                paused_since=None,
                paused_seconds=0.0,
                warned=0,
                breached_at=None,
                level=0,
                stopped_at=None,
                calendar=plan.calendar,
                period=None,
                provisional=plan.provisional,
            )
        )
        tx.insert_timers(
            [
                {
                    "case_id": case_id,
                    "rule": rule.name,
                    "armed_seq": seq,
                    "kind": kind,
                    "level": level,
                    "due_at": at,
                    "status": "pending",
                }
                for (kind, level), at in plan.times.items()
            ]
        )
        notes.append(
            f"期限「{rule.title or rule.name}」开始计时：{rule.period}，"
            f"截止 {format_due(plan.due)} ({rule.article}){caveat(plan)}"
        )
    return notes


class Effect(NamedTuple):
    """What a timer does to its case, as the runtime should record it. (A named tuple:
    a batch makes one per timer, and a tuple is the cheapest thing to make.)"""

    event: str
    notes: tuple[str, ...]
    data: Mapping[str, Any]  # instants as datetimes: the store's JSON encoder formats them
    changes: Mapping[str, Any]  # top-level case data to set
    fire: str | None = None  # an event to fire afterwards (escalation fire_event)
    notices: tuple[Notice, ...] = ()  # who is told, through the outbox


def effect(
    rule: DeadlineRule,
    timer: Any,
    *,
    due_at: datetime,
    warned: int,
    level: int,
    case_number: str,
    workflow: str,
    priority: int,
    now: datetime,
) -> tuple[Effect, dict[str, Any]]:
    """The effect of ``timer`` (kind, level, due_at) on an instance of ``rule`` due at
    ``due_at`` with ``warned`` warnings and escalation ``level`` so far, and the
    instance columns it changes.

    ``priority`` is the case's current priority (for ``raise_priority``); the effect
    needs nothing else of the case data, so a batch need not read it."""
    late = max(0.0, (now - timer.due_at).total_seconds())
    title = rule.title or rule.name
    due_local = format_due(due_at)
    late_seconds = round(late, 3)
    base = {
        "rule": rule.name,
        "level": timer.level,
        "due_at": due_at,
        "timer_due_at": timer.due_at,
        "late_seconds": late_seconds,
        "article": rule.article,
    }
    told = {
        "case_number": case_number,
        "workflow": workflow,
        "rule": rule.name,
        "title": title,
        "article": rule.article,
        "due_at": due_local,
        "late_seconds": late_seconds,
        "level": timer.level,
    }
    lateness = f"（迟 {format_duration(late)}触发）" if late >= 60 else ""
    if timer.kind == WARNING:
        share = rule.warnings[timer.level - 1]
        note = f"预警：「{title}」已过 {share:.0%} 时限，截止 {due_local}{lateness}"
        told["share"] = share
        notices = tuple([Notice("deadline_warning", to, told) for to in rule.notify])
        return Effect("deadline_warning", (note,), base, {}, None, notices), {
            "warned": max(warned, timer.level)
        }
    if timer.kind == BREACH:
        note = f"超时：「{title}」已于 {due_local} 到期未完成{lateness}"
        notices = tuple([Notice("deadline_breach", to, told) for to in rule.notify])
        return Effect("deadline_breach", (note,), base, {}, None, notices), {"breached_at": now}
    step = rule.escalations[timer.level - 1]
    changes: dict[str, Any] = {}
    notes = [f"升级第 {step.level} 级：「{title}」→ {step.to}{lateness}"]
    if "reassign" in step.actions:
        changes["assignee"] = {"role": step.to, "since": now.isoformat()}
        notes.append(f"改派给 {step.to}")
    if "raise_priority" in step.actions:
        changes["priority"] = priority + 1
        notes.append(f"优先级提升至 {changes['priority']}")
    notices = ()
    if "notify" in step.actions:
        notes.append(f"通知 {step.to}")
        told.update(to=step.to, actions=list(step.actions))
        notices = (Notice("deadline_escalation", step.to, told),)
    base["to"] = step.to
    fire = step.event if "fire_event" in step.actions else None
    return (
        Effect("deadline_escalation", tuple(notes), base, changes, fire, notices),
        {"level": max(level, step.level)},
    )


def instance_period(rule: DeadlineRule, instance: Any) -> Period:
    """The period an instance runs on: the rule's, or the one an extension gave it."""
    return Period.parse(instance.period) if instance.period else rule.period


def extension_refusal(
    tx: Tx, definition: WorkflowDefinition, case_id: int, event: str, now: datetime
) -> list[str]:
    """Why ``event`` may not extend its deadline now: there is none running, it is
    already past due, or it already runs on that period or a longer one."""
    if not any(e.event == event for rule in definition.deadlines for e in rule.extensions):
        return []  # most deadline events extend nothing: no query for them
    reasons = []
    active = {row.rule: row for row in tx.active_deadlines(case_id)}
    for rule in definition.deadlines:
        extension = next((e for e in rule.extensions if e.event == event), None)
        if extension is None:
            continue
        title = rule.title or rule.name
        instance = active.get(rule.name)
        if instance is None:
            reasons.append(f"「{title}」is not running: there is nothing to extend")
            continue
        if _late(instance, now):
            reasons.append(
                f"「{title}」was due {format_due(instance.due_at)}: an extension must be made "
                "before the deadline passes"
            )
        order = [rule.period, *(e.period for e in rule.extensions)]
        current = instance_period(rule, instance)
        now_at = order.index(current) if current in order else 0
        wanted = 1 + rule.extensions.index(extension)
        if wanted <= now_at:
            reasons.append(f"「{title}」already runs on {current}: this extension is spent")
        elif wanted > now_at + 1:
            reasons.append(f"「{title}」must first be extended to {order[wanted - 1]}")
    return reasons


def _extend(
    tx: Tx,
    rule: DeadlineRule,
    instance: Any,
    extension: Any,
    case_id: int,
    now: datetime,
    calendar: WorkingCalendar,
) -> str:
    """Give a running (or paused) instance its longer period, from its start."""
    title = rule.title or rule.name
    if instance.status == "paused":  # its timers are re-timed when it resumes
        tx.update_deadline(case_id, rule.name, instance.armed_seq, period=str(extension.period))
        return f"期限「{title}」延长至 {extension.period}（暂停中，恢复时重新计算）"
    paused = timedelta(seconds=instance.paused_seconds)
    plan = schedule(rule, instance.started_at, paused, calendar, extension.period)
    tx.update_deadline(
        case_id,
        rule.name,
        instance.armed_seq,
        period=str(extension.period),
        due_at=plan.due,
        calendar=plan.calendar,
        provisional=plan.provisional,
    )
    for (kind, level), at in plan.times.items():
        tx.retime_timer(case_id, rule.name, instance.armed_seq, kind, level, at, status="pending")
    return (
        f"期限「{title}」延长至 {extension.period}，新的期限 {format_due(plan.due)}{caveat(plan)}"
    )


def _late(instance: Any, now: datetime) -> bool:
    """Whether an instance ending at ``now`` ended past its due time — whether or not a
    worker has fired its breach yet. A paused instance's due time moves on with the
    pause, so it was late only if it was already past due when the pause began."""
    if instance.breached_at is not None:
        return True
    if instance.status == "paused" and instance.paused_since is not None:
        return bool(instance.paused_since > instance.due_at)
    return bool(now > instance.due_at)


def rule_named(definition: WorkflowDefinition, name: str) -> DeadlineRule | None:
    for rule in definition.deadlines:
        if rule.name == name:
            return rule
    return None
