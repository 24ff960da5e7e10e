"""The shapes of the rows the runtime hands the store in batches (TypedDicts: plain
dicts at run time, so a batch of timer effects costs nothing extra, and shapes mypy
checks at every call)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
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
    ``Actor.to_json()`` gives it."""

    case_id: int
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


class TimerArm(TypedDict):
    """A timer armed for a rule instance (``Tx.insert_timers``)."""

    case_id: int
    rule: str
    armed_seq: int
    kind: str
    level: int
    due_at: datetime
    status: str


#: The largest id a BIGINT column holds: a larger number names no row (and must not
#: reach the driver, which would fail on it).
MAX_ID = 2**63 - 1


def is_case_id(ref: str) -> bool:
    """Whether a case reference is an id (ASCII digits) rather than a case number."""
    return ref.isascii() and ref.isdigit()
