"""The public surface an app learns: pinned, so a change to it is a decision."""

from __future__ import annotations

from baoflow import engine


def test_the_facade_exports_exactly_these_names() -> None:
    assert sorted(engine.__all__) == sorted(
        [
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
            "CaseNotFound",
            "CaseFlow",
            "CaseScope",
            "ChainBreak",
            "ChineseOfficialCalendar",
            "Clock",
            "ConflictError",
            "DeadlineStatus",
            "DeskDeadline",
            "DefinitionError",
            "Engine",
            "EventNotAllowed",
            "FakeClock",
            "Gauges",
            "GuardRefused",
            "HistoryEntry",
            "ImportRefused",
            "ImportResult",
            "InboxItem",
            "Hooks",
            "IdempotencyKeyReused",
            "InboundMessage",
            "InboundNotFound",
            "InboundResult",
            "InboundSettled",
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
    )
    for name in engine.__all__:
        assert hasattr(engine, name), name


def test_every_error_is_a_baoflow_error() -> None:
    errors = [getattr(engine, n) for n in engine.__all__ if isinstance(getattr(engine, n), type)]
    for cls in errors:
        if issubclass(cls, Exception):
            assert issubclass(cls, engine.BaoflowError), cls


def test_installed_workflows_are_discovered() -> None:
    assert [w.name for w in engine.discover_workflows()] == [
        "claim",
        "complaint",
        "endorsement",
        "surrender",
    ]


def test_transitions_is_imported_only_by_the_machine_module() -> None:
    from pathlib import Path

    root = Path(engine.__file__).parent.parent
    users = sorted(
        str(p.relative_to(root))
        for folder in ("engine", "workflows", "notifications", "diagrams")
        for p in (root / folder).rglob("*.py")
        if "from transitions" in p.read_text(encoding="utf-8")
        or "import transitions" in p.read_text(encoding="utf-8")
    )
    assert users == ["engine/machine.py"]
