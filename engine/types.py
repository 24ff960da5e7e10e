"""The public value types: actors, case snapshots, history entries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Actor:
    """Who fired an event: a person with roles and an org unit, or the system.

    >>> Actor("u042", "王芳", roles=("handler",), org_unit="SH-PD")
    Actor(id='u042', name='王芳', roles=('handler',), org_unit='SH-PD')
    """

    id: str
    name: str
    roles: tuple[str, ...] = ()
    org_unit: str | None = None

    @classmethod
    def system(cls, what: str = "system") -> Actor:
        """The engine itself (intake decisions; later, timers)."""
        return cls(id=what, name=what, roles=("system",))

    @property
    def is_system(self) -> bool:
        return "system" in self.roles

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "roles": list(self.roles),
            "org_unit": self.org_unit,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Actor:
        return cls(data["id"], data["name"], tuple(data.get("roles", ())), data.get("org_unit"))


@dataclass(frozen=True)
class Case:
    """An immutable snapshot of one case as stored at ``version``.

    ``data`` is a private copy: changing it changes nothing stored.
    """

    id: int
    number: str
    workflow: str
    workflow_version: int
    state: str
    data: Mapping[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    #: the org unit (branch) the case belongs to: that of whoever opened it
    org_unit: str | None = None


@dataclass(frozen=True)
class Refusal:
    """An attempt that was refused — not permitted, or refused by a guard — kept for
    the audit (it changed nothing, so it is not in the case's history)."""

    at: datetime
    actor: Actor
    event: str
    kind: str  # not_permitted | guard_refused
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class HistoryEntry:
    """One row of a case's append-only history."""

    seq: int
    at: datetime
    actor: Actor
    event: str
    from_state: str | None
    to_state: str
    data: Mapping[str, Any]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AvailableEvent:
    """An event the case's state allows, and why it would be refused now (if it would).

    ``refusals`` lists the guard reasons it would fail with if fired with no data; an
    event whose guards depend on data the caller has yet to give may pass later.
    """

    event: str
    title: str
    target: str
    refusals: tuple[str, ...] = ()

    @property
    def would_pass(self) -> bool:
        return not self.refusals


@dataclass(frozen=True)
class OpenResult:
    """What ``Engine.open_case`` did.

    Attributes:
        case: the new case, or the existing one a duplicate report points to.
        created: ``False`` when the report duplicated an existing case.
        notes: what to tell the reporter (progress of the existing case, identity to
            confirm, no policy found, ...).
    """

    case: Case
    created: bool
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class DeadlineStatus:
    """One deadline rule instance on a case, as ``Engine.deadlines`` reports it.

    ``status`` is ``running``, ``paused``, ``met`` (stopped in time), ``breached_met``
    (stopped after the due time) or ``cancelled``.
    """

    rule: str
    title: str
    article: str
    started_at: datetime
    due_at: datetime
    status: str
    pause_reason: str | None
    paused_for: timedelta
    warned: int
    breached: bool
    level: int
    stopped_at: datetime | None
    next_timer_at: datetime | None
    #: the calendar data the due time was computed on, and any year only provisional
    calendar: str | None = None
    #: the years the due time (or a timer after it) was counted on provisionally, from
    #: the statutory holidays only: recomputed when the year's arrangement is imported
    provisional_years: tuple[int, ...] = ()

    @property
    def provisional(self) -> bool:
        """Whether the due time may still move once a year's arrangement is published."""
        return bool(self.provisional_years)


@dataclass(frozen=True)
class TimerRun:
    """What one ``Engine.run_due_timers`` call did."""

    fired: int = 0
    skipped: int = 0
    retried: int = 0
    max_late_seconds: float = 0.0


@dataclass(frozen=True)
class Breach:
    """A running deadline past its due time (``Engine.breaches``)."""

    case_number: str
    workflow: str
    state: str
    rule: str
    due_at: datetime
    breached_at: datetime
    level: int
    org_unit: str | None = None


@dataclass(frozen=True)
class StateCount:
    """How many cases of a workflow sit in one state, and how many of them have a running
    (or paused) deadline warned but not breached, or breached (``Engine.state_counts``).

    ``levels`` maps an escalation level to the breached cases whose highest level it is
    (0: breached, no level reached yet). A case with two deadlines, one warned and one
    breached, counts in both ``warned`` and ``breached``."""

    workflow: str
    state: str
    cases: int
    warned: int = 0
    breached: int = 0
    levels: Mapping[int, int] = field(default_factory=dict)

    @property
    def top_level(self) -> int | None:
        """The highest escalation level among its breached cases (None: none breached)."""
        return max(self.levels) if self.levels else None


@dataclass(frozen=True)
class RuleSla:
    """One rule's record over a period: started, met on time, met late, still running,
    and of those running how many are already past due."""

    workflow: str
    rule: str
    started: int
    met_on_time: int
    met_late: int
    breached_open: int
    org_unit: str | None = None
    #: the period the deadlines started in ("2026-05", "2026-W19", "2026-05-06"), when
    #: the report was asked ``per`` month, week or day; None for the whole span
    period: str | None = None
    #: still running or paused (``breached_open`` of them past due)
    running: int = 0

    @property
    def ended(self) -> int:
        return self.met_on_time + self.met_late

    @property
    def on_time_rate(self) -> float | None:
        """Met on time among those that ended; None while none has ended (a share of
        nothing is not 100%)."""
        return self.met_on_time / self.ended if self.ended else None


@dataclass(frozen=True)
class SlaReport:
    """``Engine.sla_report``: derived from the deadline rows and the append-only history,
    so it can always be recomputed and explained."""

    rules: list[RuleSla]
    running: int
    breached_now: int
    median_time_in_state: dict[tuple[str, str], timedelta]


@dataclass(frozen=True)
class CalendarDay:
    """A day that is not an ordinary weekday or weekend: a holiday, or a make-up working
    day (``Engine.calendar_year``), and which layer of the calendar says so."""

    day: date
    working: bool
    name: str
    #: ``desk`` (imported), ``package`` (chinesecalendar) or ``provisional`` (the law)
    source: str
    line: int | None = None  # its line in the imported file, for a desk day


@dataclass(frozen=True)
class CalendarImportRecord:
    """One ``calendar import`` of a year: who imported what, when, from which notice."""

    id: int
    year: int
    source: str
    file_name: str
    imported_by: str
    imported_at: datetime
    override: bool
    current: bool


@dataclass(frozen=True)
class CalendarYear:
    """A year of the working-day calendar: where its days come from, its holidays and
    make-up days, and the imports of it (``Engine.calendar_year``)."""

    year: int
    #: ``desk``, ``package``, ``provisional`` or ``unknown`` (a strict calendar)
    source: str
    days: tuple[CalendarDay, ...]
    imports: tuple[CalendarImportRecord, ...] = ()


@dataclass(frozen=True)
class CalendarYearStatus:
    """Whether a year's arrangement is known, and how many running deadlines wait for
    it (``Engine.calendar_status``)."""

    year: int
    source: str
    #: running or paused deadlines counted provisionally on this year
    provisional_deadlines: int

    @property
    def provisional(self) -> bool:
        return self.source == "provisional"


@dataclass(frozen=True)
class CalendarImport:
    """What ``Engine.import_calendar`` did."""

    year: int
    import_id: int
    holidays: int
    workdays: int
    #: running deadlines whose due time (or provisional mark) the import changed
    recomputed: int
    #: where the file differs from chinesecalendar (imported with override)
    overridden: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeskDeadline:
    """A running (or paused) deadline of the desk, with its case (``Engine.running_deadlines``):
    what the supervisor's list shows, sorted by time left."""

    case_number: str
    workflow: str
    state: str
    rule: str
    title: str
    started_at: datetime
    due_at: datetime
    status: str  # running | paused
    warned: int
    breached: bool
    level: int
    org_unit: str | None
    provisional_years: tuple[int, ...] = ()

    @property
    def provisional(self) -> bool:
        return bool(self.provisional_years)


@dataclass(frozen=True)
class OutboxMessage:
    """A notice in the outbox (``recipient`` a role or party, ``channel`` None), or a
    message it was resolved to (``channel`` and ``address`` set), ``Engine.outbox``."""

    id: int
    case_number: str | None
    template: str
    recipient: str
    status: str  # pending | expanded | delivered | dead
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None = None
    last_error: str | None = None
    channel: str | None = None
    address: str | None = None
    parent_id: int | None = None
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InboxItem:
    """One entry of a user's in-app inbox (``Engine.inbox``)."""

    id: int
    user_id: str
    case_number: str | None
    template: str
    subject: str
    body: str
    created_at: datetime
    read_at: datetime | None = None

    @property
    def unread(self) -> bool:
        return self.read_at is None
