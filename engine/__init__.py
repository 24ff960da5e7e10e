"""baoflow's engine: the facade an app embeds.

    >>> from baoflow.engine import open_engine, Actor
    >>> eng = open_engine("sqlite:///baoflow.db")            # doctest: +SKIP
    >>> opened = eng.open_case("claim", report, agent)        # doctest: +SKIP
    >>> eng.fire(opened.case.number, "verify", handler)       # doctest: +SKIP

Everything an app needs is importable from here; deeper modules are internal.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

from .audit import Anchor, AnchorBreak, AuditReport, ChainBreak
from .calendar import ChineseOfficialCalendar, WorkingCalendar, first_working_day_from
from .clock import SHANGHAI, Clock, FakeClock, SystemClock
from .definitions import (
    Hooks,
    Intake,
    NoticeSpec,
    State,
    Transition,
    TransitionContext,
    WorkflowDefinition,
    insurer_reference,
)
from .display import format_due, format_duration, format_when
from .errors import (
    ApiTokenRejected,
    BackupRefused,
    BaoflowError,
    CalendarDataInvalid,
    CalendarDisagrees,
    CalendarYearUnknown,
    CaseNotFound,
    ConflictError,
    DefinitionError,
    EventNotAllowed,
    GuardRefused,
    IdempotencyKeyReused,
    ImportRefused,
    InboundNotFound,
    InboundSettled,
    InvalidData,
    LogInRefused,
    MessageIdReused,
    NotPermitted,
    Problem,
    StorageError,
    StorageUnavailable,
    UnknownApiToken,
    UnknownEvent,
    UnknownUser,
    UnknownWorkflow,
)
from .loading import load_workflow
from .policies import Policy, PolicyDirectory
from .runtime import Engine, Services
from .store import Store
from .store.policy_directory import SqlPolicyDirectory
from .types import (
    Actor,
    ApiToken,
    AvailableEvent,
    BackupResult,
    CalendarDay,
    CalendarImport,
    CalendarImportRecord,
    CalendarYear,
    CalendarYearStatus,
    Case,
    CaseFlow,
    CaseScope,
    DeadlineStatus,
    DeskDeadline,
    Gauges,
    HistoryEntry,
    ImportResult,
    InboundMessage,
    InboundResult,
    InboxItem,
    InsurerMessage,
    NewApiToken,
    OpenResult,
    OutboxMessage,
    Refusal,
    StateCount,
    TimerRun,
    User,
)

__all__ = [
    "SHANGHAI",
    "Actor",
    "Anchor",
    "AnchorBreak",
    "ApiToken",
    "ApiTokenRejected",
    "AuditReport",
    "AvailableEvent",
    "BackupRefused",
    "BackupResult",
    "BaoflowError",
    "CalendarDataInvalid",
    "CalendarDay",
    "CalendarDisagrees",
    "CalendarImport",
    "CalendarImportRecord",
    "CalendarYear",
    "CalendarYearStatus",
    "CalendarYearUnknown",
    "Case",
    "CaseFlow",
    "CaseNotFound",
    "CaseScope",
    "ChainBreak",
    "ChineseOfficialCalendar",
    "Clock",
    "ConflictError",
    "DeadlineStatus",
    "DefinitionError",
    "DeskDeadline",
    "Engine",
    "EventNotAllowed",
    "FakeClock",
    "Gauges",
    "GuardRefused",
    "HistoryEntry",
    "Hooks",
    "IdempotencyKeyReused",
    "ImportRefused",
    "ImportResult",
    "InboundMessage",
    "InboundNotFound",
    "InboundResult",
    "InboundSettled",
    "InboxItem",
    "InsurerMessage",
    "Intake",
    "InvalidData",
    "LogInRefused",
    "MessageIdReused",
    "NewApiToken",
    "NotPermitted",
    "NoticeSpec",
    "OpenResult",
    "OutboxMessage",
    "Policy",
    "PolicyDirectory",
    "Problem",
    "Refusal",
    "Services",
    "SqlPolicyDirectory",
    "State",
    "StateCount",
    "StorageError",
    "StorageUnavailable",
    "SystemClock",
    "TimerRun",
    "Transition",
    "TransitionContext",
    "UnknownApiToken",
    "UnknownEvent",
    "UnknownUser",
    "UnknownWorkflow",
    "User",
    "WorkflowDefinition",
    "WorkingCalendar",
    "discover_workflows",
    "first_working_day_from",
    "format_due",
    "format_duration",
    "format_when",
    "insurer_reference",
    "load_workflow",
    "open_engine",
]

ENTRY_POINT_GROUP = "baoflow.workflows"


def discover_workflows() -> list[WorkflowDefinition]:
    """Load every workflow installed under the ``baoflow.workflows`` entry point group.

    Each entry point names a callable returning a definition or an iterable of them.
    """
    found: list[WorkflowDefinition] = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        made: Any = ep.load()()
        found.extend([made] if isinstance(made, WorkflowDefinition) else list(made))
    return found


def open_engine(
    url: str = "sqlite:///baoflow.db",
    *,
    clock: Clock | None = None,
    workflows: Iterable[WorkflowDefinition] | None = None,
    policies: PolicyDirectory | None = None,
    calendar: WorkingCalendar | None = None,
    migrate: bool = True,
    create: bool = True,
    echo: bool = False,
) -> Engine:
    """Open (and by default migrate) a database and return an :class:`Engine`.

    Args:
        url: a SQLAlchemy URL; SQLite is the embedded default, ``postgresql://...``
            the multi-worker deployment.
        clock: where "now" comes from; the system clock unless a test injects one.
        workflows: the definitions to run; by default every installed workflow.
        policies: the policy directory; by default baoflow's own ``policies`` table.
        calendar: which days are working days; by default the Chinese official
            calendar: the desk's imported arrangements, then chinesecalendar's, then a
            provisional year from the statutory holidays, marked on every deadline it
            touches (``ChineseOfficialCalendar(unknown_years="error")`` refuses instead).
        migrate: bring the schema to the newest revision first. With ``False`` an
            out-of-date schema raises :class:`StorageError`.
        create: make a SQLite file that does not exist yet. With ``False`` a missing
            file raises :class:`StorageError` instead of becoming a new, empty
            database: what a tool that reads, or a mistyped path, wants.
    """
    store = Store(url, echo=echo, create=create)
    try:
        if migrate:
            store.upgrade()
        else:
            store.require_current_schema()
    except BaoflowError:
        store.dispose()
        raise
    except Exception as exc:
        store.dispose()
        raise StorageError(f"cannot open the database at {store.site.url}: {exc}") from exc
    return Engine(
        store,
        discover_workflows() if workflows is None else workflows,
        clock=clock,
        policies=policies or SqlPolicyDirectory(store),
        calendar=calendar,
    )
