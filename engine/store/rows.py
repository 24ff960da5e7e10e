"""The shapes of the rows the runtime and the store hand each other: those the runtime
hands the store in batches (TypedDicts: plain dicts at run time, so a batch of timer
effects costs nothing extra, and shapes mypy checks at every call), and the engine
types the store reads back (NamedTuples)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypedDict


class CaseBump(TypedDict):
    """A version-checked bump of a case: ``id`` from ``expected`` to ``version`` at
    ``at``, with top-level data ``changes`` set (``CoreTx.bump_cases``)."""

    id: int
    expected: int
    version: int
    changes: dict[str, Any]
    at: datetime


class HistoryRow(TypedDict):
    """One history row of a case (``CoreTx.append_history_many``); ``actor`` as
    ``Actor.to_json()`` gives it, ``number`` its case's (hashed with it)."""

    case_id: int
    number: str
    seq: int
    at: datetime
    actor: Mapping[str, Any]
    event: str
    from_state: str | None
    to_state: str
    data: Mapping[str, Any]
    notes: list[str]


class InstanceProgress(TypedDict):
    """A rule instance's progress after a batch (``CoreTx.update_deadlines_many``)."""

    case_id: int
    rule: str
    armed_seq: int
    warned: int
    breached_at: datetime | None
    level: int


class OutboxRow(TypedDict):
    """A notice to one recipient, as ``engine.notices.outbox_rows`` makes it; the store
    adds its delivery state (``CoreTx.insert_outbox``)."""

    key: str
    case_id: int
    seq: int
    template: str
    recipient: str
    org_unit: str | None
    context: Mapping[str, Any]


class DeadlineRow(NamedTuple):
    """One rule instance of a case (a ``case_deadlines`` row), as both storage paths
    return it: instants timezone-aware in UTC."""

    case_id: int
    rule: str
    armed_seq: int
    started_at: datetime
    due_at: datetime
    status: str  # running | paused | met | breached_met | restarted | cancelled
    pause_reason: str | None
    paused_since: datetime | None
    paused_seconds: float
    warned: int
    breached_at: datetime | None
    level: int
    stopped_at: datetime | None
    calendar: str | None
    period: str | None
    provisional: str | None


#: The columns of ``DeadlineRow``, in table order (what ``update_deadline`` may set).
DEADLINE_COLUMNS = DeadlineRow._fields


class StoredTimer(NamedTuple):
    """One timer of a rule instance (a ``timers`` row without its lease and outcome)."""

    id: int
    case_id: int
    rule: str
    armed_seq: int
    kind: str  # warning | breach | escalation
    level: int
    due_at: datetime
    status: str  # pending | paused | fired | cancelled | skipped


#: The columns of ``StoredTimer``, in its order.
TIMER_COLUMNS = StoredTimer._fields


class TimerRow(NamedTuple):
    """A timer with what its effect needs of its case and rule instance (one read; see
    ``TimerTx.timer_batch``). A plain named tuple: a batch reads each field of each row
    several times, and a SQLAlchemy ``Row``'s attribute access costs ~1 µs, more than the
    rest of the effect's Python together (docs/benchmarks.md)."""

    id: int
    case_id: int
    rule: str
    armed_seq: int
    kind: str
    level: int
    due_at: datetime
    number: str | None  # None: the case is gone
    workflow: str
    workflow_version: int
    state: str
    version: int
    org_unit: str | None
    priority: Any
    d_status: str | None  # None: the rule instance is gone
    d_due_at: datetime
    d_warned: int
    d_breached_at: datetime | None
    d_level: int


class SlaMedians(NamedTuple):
    """The SLA report's medians (``ReportTx.sla_medians``), as ``statistics.median``
    gives them of the spans in seconds."""

    #: (workflow, state) -> the median stay in the state
    in_state: dict[tuple[str, str], timedelta]
    #: workflow -> the median time from opening to the first final state
    to_close: dict[str, timedelta]


class TimerArm(TypedDict):
    """A timer armed for a rule instance (``Tx.insert_timers``)."""

    case_id: int
    rule: str
    armed_seq: int
    kind: str
    level: int
    due_at: datetime
    status: str


class InboundRecord(NamedTuple):
    """A stored insurer message (an ``inbound_messages`` row); ``matched_number`` is the
    number of the case it matched or fired on, where the read joins it
    (``InboundTx.list_inbound``), else None."""

    id: int
    insurer: str
    message_id: str
    kind: str
    case_number: str | None
    reference: str | None
    payload: Any
    fingerprint: str
    received_at: datetime
    status: str  # unresolved | matched | resolved | dismissed
    reason_code: str | None
    reason: str | None
    case_id: int | None
    event: str | None
    result: Any
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    matched_number: str | None = None


class OutboxRecord(NamedTuple):
    """A notice or one of its messages (an ``outbox`` row) with its case's number (None
    for a gone case or a read that does not join it)."""

    id: int
    key: str
    case_id: int | None
    seq: int | None
    template: str
    recipient: str
    org_unit: str | None
    context: Any
    status: str  # pending | expanded | delivered | dead
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    parent_id: int | None  # None: a notice; else the notice this message is one of
    channel: str | None  # None: a notice not yet resolved to addresses
    address: str | None
    address_name: str | None
    locale: str | None
    data_subject: bool
    claimed_by: str | None
    claimed_until: datetime | None
    case_number: str | None = None


class NoticeToExpand(NamedTuple):
    """A notice not yet resolved to addresses, with what the directory needs of its case
    (``OutboxTx.outbox_to_expand``)."""

    notice: OutboxRecord
    case_org_unit: str | None
    case_data: Any


class InboxRecord(NamedTuple):
    """One entry of a person's in-app inbox (an ``inbox`` row)."""

    id: int
    user_id: str
    key: str
    case_number: str | None
    template: str
    subject: str
    body: str
    created_at: datetime
    read_at: datetime | None


class UserRecord(NamedTuple):
    """A dashboard account (a ``users`` row): the argon2 hash, never the password."""

    id: str
    name: str
    roles: Any
    org_unit: str | None
    password_hash: str
    created_at: datetime
    disabled_at: datetime | None


class ApiTokenRecord(NamedTuple):
    """An HTTP API token (an ``api_tokens`` row): the SHA-256 of its secret, never the
    secret; ``actor`` and ``act_for`` as JSON."""

    id: int
    app: str
    prefix: str
    secret_hash: str
    actor: Any
    act_for: Any
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class DeskDeadlineRow(NamedTuple):
    """A running or paused rule instance with what the desk's list shows of its case
    (``ReportTx.desk_deadlines``)."""

    number: str
    workflow: str
    workflow_version: int
    state: str
    org_unit: str | None
    handler: str | None
    rule: str
    started_at: datetime
    due_at: datetime
    status: str
    warned: int
    breached_at: datetime | None
    level: int
    provisional: str | None


class BreachRow(NamedTuple):
    """A running rule instance past its due time, with its case (``ReportTx.breached``)."""

    number: str
    workflow: str
    state: str
    org_unit: str | None
    rule: str
    due_at: datetime
    breached_at: datetime
    level: int


#: The largest id a BIGINT column holds: a larger number names no row (and must not
#: reach the driver, which would fail on it).
MAX_ID = 2**63 - 1


def is_case_id(ref: str) -> bool:
    """Whether a case reference is an id (ASCII digits) rather than a case number."""
    return ref.isascii() and ref.isdigit()
