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
    #: per workflow, of the cases that reached a final state: opening to the first
    #: final state (closed, withdrawn, rejected, ...)
    median_time_to_close: dict[str, timedelta] = field(default_factory=dict)


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
    #: the id of the person assigned to handle the case (None: nobody is yet)
    handler: str | None = None

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


# --- inbound insurer messages (issue #12) --------------------------------------------
@dataclass(frozen=True)
class InsurerMessage:
    """One message from an insurer (a signed webhook, ``baoflow.api.webhooks``), as
    ``Engine.receive_insurer_message`` takes it.

    Attributes:
        insurer: the insurer's name in the desk's insurers config, e.g. ``pingan``.
        message_id: the insurer's own id of this message, unique per insurer: a resend
            carries the same id and is answered as the first time.
        kind: what it says — a kind the case's workflow maps to an event in
            ``[workflow.inbound]`` (the claim: receipt, decision, materials_request,
            payment).
        case_number: our case number, when the insurer quotes it.
        reference: the insurer's own reference of the case, as recorded at hand-over.
        payload: the event's data, checked by the event's schema.
    """

    insurer: str
    message_id: str
    kind: str
    case_number: str | None = None
    reference: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


#: Why a message was stored for a person instead of firing: no case matched, several
#: did, the workflow takes no message of that kind, the event is not allowed in the
#: case's state, its data is invalid, or a guard refused it.
INBOUND_REASONS = ("no_case", "ambiguous", "unknown_kind", "not_allowed", "invalid", "refused")
#: What a stored message can be.
INBOUND_STATUSES = ("applied", "unresolved", "resolved", "dismissed")


@dataclass(frozen=True)
class InboundResult:
    """What an insurer message did: ``applied`` (its event fired on ``case_number``,
    now in ``state``) or ``unresolved`` (stored for a person; ``reason_code`` is one of
    ``INBOUND_REASONS``). Every resend of the message gets this same answer."""

    id: int
    insurer: str
    message_id: str
    status: str
    case_number: str | None = None
    event: str | None = None
    state: str | None = None
    reason_code: str | None = None
    reason: str | None = None

    @property
    def applied(self) -> bool:
        return self.status in ("applied", "resolved")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "insurer": self.insurer,
            "message_id": self.message_id,
            "status": self.status,
            "case_number": self.case_number,
            "event": self.event,
            "state": self.state,
            "reason_code": self.reason_code,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> InboundResult:
        return cls(
            id=raw["id"],
            insurer=raw["insurer"],
            message_id=raw["message_id"],
            status=raw["status"],
            case_number=raw.get("case_number"),
            event=raw.get("event"),
            state=raw.get("state"),
            reason_code=raw.get("reason_code"),
            reason=raw.get("reason"),
        )


@dataclass(frozen=True)
class InboundMessage:
    """A stored insurer message (``Engine.inbound_messages``): what arrived, what it
    did, and — for one stored for a person — how it was resolved, by whom."""

    id: int
    insurer: str
    message_id: str
    kind: str
    case_number: str | None  # as the insurer quoted it
    reference: str | None
    payload: Mapping[str, Any]
    received_at: datetime
    status: str  # applied | unresolved | resolved | dismissed
    reason_code: str | None
    reason: str | None
    case: str | None  # the case it matched or fired on (its number)
    event: str | None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None


@dataclass(frozen=True)
class Gauges:
    """The desk's figures at one instant (``Engine.gauges``), what ``baoflow.api.metrics``
    exposes: each an aggregate the database answers from an index."""

    at: datetime
    cases: Mapping[tuple[str, str], int]  # (workflow, state) -> cases
    breaches: Mapping[tuple[str, str, int], int]  # (workflow, rule, level) -> breached
    next_timer_due: datetime | None
    outbox_pending: int
    outbox_dead: int
    inbound: Mapping[str, int]  # status -> insurer messages

    @property
    def timer_lag(self) -> float:
        """Seconds the earliest pending timer is overdue (0 when none is due yet)."""
        if self.next_timer_due is None:
            return 0.0
        return max(0.0, (self.at - self.next_timer_due).total_seconds())


@dataclass(frozen=True)
class CaseScope:
    """Which cases an actor may see (``Engine.scope``): every case of the workflows in
    ``every_case_of``, and the cases of its own ``org_unit`` in the others — the
    permission table's org-unit rows, applied to reading (engine/authority.py)."""

    every_case_of: frozenset[str]
    org_unit: str | None


@dataclass(frozen=True)
class ApiToken:
    """A token an app calls the HTTP API with (``Engine.create_api_token``); only the
    SHA-256 of its secret is stored, ``prefix`` is the secret's first characters, so a
    person can tell which token a log line or a config file means.

    A token acts as ``actor``, or for one of the people of ``act_for`` named by the
    request (``X-Act-For: user-id``), or both (``actor`` when the request names no one).
    """

    id: int
    app: str
    prefix: str
    actor: Actor | None
    act_for: tuple[Actor, ...]
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class NewApiToken:
    """What ``Engine.create_api_token`` made: the token, and its secret — shown this
    once; the database keeps only its hash."""

    token: ApiToken
    secret: str


@dataclass(frozen=True)
class User:
    """A person's dashboard account (``Engine.add_user``): whom they act as once logged
    in — their name, roles and org unit, exactly as an :class:`Actor` — and whether the
    account is disabled. The password is kept only as its argon2 hash, never shown."""

    id: str
    name: str
    roles: tuple[str, ...]
    org_unit: str | None
    created_at: datetime
    disabled_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    @property
    def actor(self) -> Actor:
        return Actor(self.id, self.name, self.roles, self.org_unit)


@dataclass(frozen=True)
class CaseFlow:
    """How many cases of a workflow were opened, and how many reached a final state,
    in [since, until) — of the cases the viewer sees (``Engine.case_flow``); ``until``
    None: up to now."""

    workflow: str
    since: datetime
    until: datetime | None
    opened: int
    closed: int


@dataclass(frozen=True)
class ImportResult:
    """What ``Engine.import_cases`` wrote: how many cases, and how many rows of each of
    their tables (``history``, ``case_deadlines``, ``timers``, ``outbox``, ...)."""

    cases: int
    rows: Mapping[str, int]


@dataclass(frozen=True)
class BackupResult:
    """A SQLite backup ``Engine.backup_database`` wrote: the file, its size in bytes,
    and what ``PRAGMA integrity_check`` said of the copy (``ok``)."""

    path: str
    size: int
    integrity: str
