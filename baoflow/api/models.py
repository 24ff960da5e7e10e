"""The API's request and response bodies: typed, so the OpenAPI document is exact.

Instants are ISO 8601 with their offset, in Beijing time (``2026-05-06T09:00:00+08:00``);
durations are seconds. Each ``of`` builds a body from the engine's value type.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from baoflow.engine import (
    SHANGHAI,
    Actor,
    AvailableEvent,
    Case,
    DeadlineStatus,
    DeskDeadline,
    HistoryEntry,
    OpenResult,
    WorkflowDefinition,
    limits,
)
from baoflow.engine.types import Breach, SlaReport

#: The request limits of the fire route, shared by FastAPI's parameters (app.py) and
#: the fast lane (fast.py), so the two take exactly the same requests; those the engine
#: declares come from engine/limits.py.
CASE_REF_MAX = 64
ACT_FOR_MAX = limits.ACTOR_ID.chars
IDEMPOTENCY_KEY_MAX = limits.IDEMPOTENCY_KEY.chars


def case_ref(case: str) -> int | str:
    """A case path segment as the facade takes it: its id when all ASCII digits (and
    within a BIGINT), its case number otherwise."""
    return int(case) if case.isascii() and case.isdigit() and len(case) < 19 else case


def _beijing(at: datetime) -> str:
    return at.astimezone(SHANGHAI).isoformat()


#: An aware instant, written in Beijing time with its offset.
Instant = Annotated[datetime, PlainSerializer(_beijing, return_type=str)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests ---------------------------------------------------------------------------
class OpenCaseRequest(Body):
    workflow: str = Field(max_length=limits.WORKFLOW.chars, examples=["claim"])
    data: dict[str, Any] = Field(description="The opening data, checked by the workflow's schema.")


class FireRequest(Body):
    event: str = Field(max_length=limits.EVENT.chars, examples=["verify"])
    data: dict[str, Any] = Field(
        default_factory=dict, description="The event's data, checked by its schema."
    )
    expected_version: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="The version the caller read: if the case has moved on, 409 and "
        "nothing is written.",
    )


# --- responses --------------------------------------------------------------------------
class ActorOut(Body):
    id: str
    name: str
    roles: list[str]
    org_unit: str | None

    @classmethod
    def of(cls, a: Actor) -> ActorOut:
        return cls(id=a.id, name=a.name, roles=list(a.roles), org_unit=a.org_unit)


class CaseOut(Body):
    id: int
    number: str
    workflow: str
    workflow_version: int
    state: str
    data: dict[str, Any]
    version: int
    created_at: Instant
    updated_at: Instant
    org_unit: str | None

    @classmethod
    def of(cls, c: Case) -> CaseOut:
        return cls(
            id=c.id,
            number=c.number,
            workflow=c.workflow,
            workflow_version=c.workflow_version,
            state=c.state,
            data=dict(c.data),
            version=c.version,
            created_at=c.created_at,
            updated_at=c.updated_at,
            org_unit=c.org_unit,
        )

    @staticmethod
    def encode(c: Case) -> bytes:
        """``CaseOut.of(c).model_dump_json()`` as bytes, byte for byte, in about a third
        of the time (the hottest answer: every fire and every case read). orjson writes
        the fields; what it cannot write (an integer beyond 64 bits, a mapping that is
        not a dict) goes pydantic's way."""
        try:
            return orjson.dumps(
                {
                    "id": c.id,
                    "number": c.number,
                    "workflow": c.workflow,
                    "workflow_version": c.workflow_version,
                    "state": c.state,
                    "data": c.data,
                    "version": c.version,
                    "created_at": _beijing(c.created_at),
                    "updated_at": _beijing(c.updated_at),
                    "org_unit": c.org_unit,
                }
            )
        except TypeError:  # orjson.JSONEncodeError is one
            return CaseOut.of(c).model_dump_json().encode()


class OpenResultOut(Body):
    case: CaseOut
    created: bool = Field(description="false: the report duplicated this existing case")
    notes: list[str]

    @classmethod
    def of(cls, r: OpenResult) -> OpenResultOut:
        return cls(case=CaseOut.of(r.case), created=r.created, notes=list(r.notes))


class CasePage(Body):
    items: list[CaseOut]
    next_cursor: str | None = Field(
        description="Give it as ?cursor= (with the same filters) for the next page; null "
        "on the last page. Cases opened meanwhile do not shift the pages."
    )


class HistoryEntryOut(Body):
    seq: int
    at: Instant
    actor: ActorOut
    event: str
    from_state: str | None
    to_state: str
    data: dict[str, Any]
    notes: list[str]

    @classmethod
    def of(cls, h: HistoryEntry) -> HistoryEntryOut:
        return cls(
            seq=h.seq,
            at=h.at,
            actor=ActorOut.of(h.actor),
            event=h.event,
            from_state=h.from_state,
            to_state=h.to_state,
            data=dict(h.data),
            notes=list(h.notes),
        )


class DeadlineOut(Body):
    rule: str
    title: str
    article: str
    started_at: Instant
    due_at: Instant
    status: Literal["running", "paused", "met", "breached_met", "cancelled"]
    pause_reason: str | None
    paused_seconds: float
    warned: int
    breached: bool
    level: int
    stopped_at: Instant | None
    next_timer_at: Instant | None
    calendar: str | None
    provisional_years: list[int]

    @classmethod
    def of(cls, d: DeadlineStatus) -> DeadlineOut:
        return cls(
            rule=d.rule,
            title=d.title,
            article=d.article,
            started_at=d.started_at,
            due_at=d.due_at,
            status=d.status,
            pause_reason=d.pause_reason,
            paused_seconds=d.paused_for.total_seconds(),
            warned=d.warned,
            breached=d.breached,
            level=d.level,
            stopped_at=d.stopped_at,
            next_timer_at=d.next_timer_at,
            calendar=d.calendar,
            provisional_years=list(d.provisional_years),
        )


class AvailableEventOut(Body):
    event: str
    title: str
    target: str
    would_pass: bool
    refusals: list[str] = Field(
        description="Why it would be refused now (guards evaluated without event data, "
        "and the permission table for the caller); empty when it would pass."
    )

    @classmethod
    def of(cls, e: AvailableEvent) -> AvailableEventOut:
        return cls(
            event=e.event,
            title=e.title,
            target=e.target,
            would_pass=e.would_pass,
            refusals=list(e.refusals),
        )


class DeskDeadlineOut(Body):
    case_number: str
    workflow: str
    state: str
    rule: str
    title: str
    started_at: Instant
    due_at: Instant
    status: Literal["running", "paused"]
    warned: int
    breached: bool
    level: int
    org_unit: str | None
    provisional_years: list[int]
    handler: str | None = Field(description="The id of the person assigned to the case")

    @classmethod
    def of(cls, d: DeskDeadline) -> DeskDeadlineOut:
        return cls(
            case_number=d.case_number,
            workflow=d.workflow,
            state=d.state,
            rule=d.rule,
            title=d.title,
            started_at=d.started_at,
            due_at=d.due_at,
            status=d.status,
            warned=d.warned,
            breached=d.breached,
            level=d.level,
            org_unit=d.org_unit,
            provisional_years=list(d.provisional_years),
            handler=d.handler,
        )


class BreachOut(Body):
    case_number: str
    workflow: str
    state: str
    rule: str
    due_at: Instant
    breached_at: Instant
    level: int
    org_unit: str | None

    @classmethod
    def of(cls, b: Breach) -> BreachOut:
        return cls(
            case_number=b.case_number,
            workflow=b.workflow,
            state=b.state,
            rule=b.rule,
            due_at=b.due_at,
            breached_at=b.breached_at,
            level=b.level,
            org_unit=b.org_unit,
        )


class RuleSlaOut(Body):
    workflow: str
    rule: str
    org_unit: str | None
    period: str | None
    started: int
    met_on_time: int
    met_late: int
    running: int
    breached_open: int
    on_time_rate: float | None = Field(
        description="Met on time among those that ended; null while none has ended."
    )


class StateTimeOut(Body):
    workflow: str
    state: str
    median_seconds: float


class CloseTimeOut(Body):
    workflow: str
    median_seconds: float = Field(description="opening to the first final state")


class SlaReportOut(Body):
    rules: list[RuleSlaOut]
    running: int
    breached_now: int
    median_time_in_state: list[StateTimeOut]
    median_time_to_close: list[CloseTimeOut]

    @classmethod
    def of(cls, r: SlaReport) -> SlaReportOut:
        return cls(
            rules=[
                RuleSlaOut(
                    workflow=x.workflow,
                    rule=x.rule,
                    org_unit=x.org_unit,
                    period=x.period,
                    started=x.started,
                    met_on_time=x.met_on_time,
                    met_late=x.met_late,
                    running=x.running,
                    breached_open=x.breached_open,
                    on_time_rate=x.on_time_rate,
                )
                for x in r.rules
            ],
            running=r.running,
            breached_now=r.breached_now,
            median_time_in_state=[
                StateTimeOut(workflow=w, state=s, median_seconds=d.total_seconds())
                for (w, s), d in r.median_time_in_state.items()
            ],
            median_time_to_close=[
                CloseTimeOut(workflow=w, median_seconds=d.total_seconds())
                for w, d in r.median_time_to_close.items()
            ],
        )


class StateOut(Body):
    name: str
    title: str
    final: bool
    description: str


class TransitionOut(Body):
    event: str
    source: str
    target: str
    title: str
    guards: list[str]
    article: str
    roles: list[str] = Field(description="Roles of the permission rows that list the event.")


class DeadlineRuleOut(Body):
    name: str
    title: str
    period: str
    starts_on: list[str]
    stops_on: list[str]
    pauses: list[str]
    article: str


class PermissionOut(Body):
    title: str
    events: list[str]
    roles: list[str]
    own_org_unit: bool
    condition: str | None


class WorkflowOut(Body):
    name: str
    version: int
    title: str
    initial: str
    states: list[StateOut]
    transitions: list[TransitionOut]
    deadlines: list[DeadlineRuleOut]
    permissions: list[PermissionOut]

    @classmethod
    def of(cls, d: WorkflowDefinition) -> WorkflowOut:
        roles: dict[str, set[str]] = {}
        for p in d.permissions:
            for event in p.events:
                roles.setdefault(event, set()).update(p.roles)
        return cls(
            name=d.name,
            version=d.version,
            title=d.title,
            initial=d.initial,
            states=[
                StateOut(name=s.name, title=s.title, final=s.final, description=s.description)
                for s in d.states
            ],
            transitions=[
                TransitionOut(
                    event=t.event,
                    source=t.source,
                    target=t.target,
                    title=t.title,
                    guards=list(t.guards),
                    article=t.article,
                    roles=sorted(roles.get(t.event, ())),
                )
                for t in d.transitions
            ],
            deadlines=[
                DeadlineRuleOut(
                    name=r.name,
                    title=r.title,
                    period=str(r.period),
                    starts_on=list(r.starts_on),
                    stops_on=list(r.stops_on),
                    pauses=sorted({s for states in r.pauses.values() for s in states}),
                    article=r.article,
                )
                for r in d.deadlines
            ],
            permissions=[
                PermissionOut(
                    title=p.title,
                    events=list(p.events),
                    roles=list(p.roles),
                    own_org_unit=p.own_org_unit,
                    condition=p.when,
                )
                for p in d.permissions
            ],
        )


class WhoAmI(Body):
    actor: ActorOut
    every_case_of: list[str] = Field(
        description="Workflows whose every case this caller sees; of the others, the "
        "cases of its own org unit."
    )
