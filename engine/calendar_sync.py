"""The desk's holiday arrangements between the store and the calendar (issue #10).

An import is stored in the database, so every worker on PostgreSQL counts on the same
days. Each engine keeps the stored arrangements loaded in its
:class:`~engine.calendar.ChineseOfficialCalendar` and compares a generation number
with the store's: in every transaction that computes a deadline (under a share lock,
see ``Tx.calendar_generation``), in every timer run, and at least once a minute
otherwise. So a deadline is never computed on data an import has just replaced.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from pathlib import Path

from . import arrangements, timers
from .calendar import PACKAGE, ChineseOfficialCalendar, WorkingCalendar
from .clock import SHANGHAI, monotonic
from .display import format_due
from .errors import CalendarDisagrees, CalendarYearUnknown, ConflictError, StorageError
from .registry import Registry
from .store import CalendarTx, Store, Tx
from .types import (
    Actor,
    CalendarDay,
    CalendarImport,
    CalendarYear,
    CalendarYearStatus,
)

log = logging.getLogger("baoflow.engine")

#: How often an engine that computed no deadline looks for a newer import (seconds).
REFRESH_SECONDS = 60.0


class CalendarSync:
    """Keeps one engine's calendar in step with the arrangements in its store."""

    def __init__(self, calendar: WorkingCalendar) -> None:
        self.calendar = calendar if isinstance(calendar, ChineseOfficialCalendar) else None
        self._checked = float("-inf")

    def sync(self, tx: Tx, *, lock: bool) -> None:
        """Load the stored arrangements if they changed. ``lock``: the transaction will
        compute deadlines, and must not interleave with an import."""
        if self.calendar is None:
            return
        generation = tx.calendar_generation(lock=lock)
        if generation != self.calendar.generation:
            self.calendar.load(generation, tx.desk_years())
        self._checked = monotonic()

    def due(self) -> bool:
        """Whether it is time to look for a newer import (an engine computing no
        deadline still answers guards, the filing limit say, on the current days)."""
        return self.calendar is not None and monotonic() - self._checked > REFRESH_SECONDS

    def forget(self) -> None:
        """After a failed import: reload from the store next time."""
        if self.calendar is not None:
            self.calendar.generation = -1
            self._checked = float("-inf")


def year_view(calendar: ChineseOfficialCalendar, tx: CalendarTx, year: int) -> CalendarYear:
    """The year's holidays and make-up days, each with the layer it comes from."""
    source = calendar.year_source(year)
    days: list[CalendarDay] = []
    desk = calendar.desk_year(year)
    if desk is not None:
        days = [CalendarDay(d.day, d.working, d.name, "desk", d.line) for d in desk.days]
    elif source.value == "unknown":
        days = []
    else:
        day = date(year, 1, 1)
        while day.year == year:
            working, name, layer = calendar.day_source(day)
            if name or working == (day.weekday() >= 5):  # not an ordinary day
                days.append(CalendarDay(day, working, name, layer))
            day += timedelta(days=1)
    imports = tuple(tx.calendar_imports(year))
    return CalendarYear(year, source.value, tuple(days), imports)


def statuses(
    calendar: WorkingCalendar, tx: CalendarTx, years: list[int]
) -> list[CalendarYearStatus]:
    """Where each year's days come from, and how many running deadlines wait on it."""
    waiting: dict[int, int] = {}
    for value, n in tx.provisional_deadline_years().items():
        for part in value.split(","):
            waiting[int(part)] = waiting.get(int(part), 0) + n
    out = []
    for year in years:
        source = getattr(calendar, "year_source", None)
        layer = source(year).value if source is not None else "custom"
        out.append(CalendarYearStatus(year, layer, waiting.get(year, 0)))
    return out


def import_arrangement(
    store: Store,
    sync: CalendarSync,
    registry: Registry,
    source: str | Path,
    by: str,
    now: datetime,
    *,
    file_name: str | None,
    override: bool,
) -> CalendarImport:
    """Check and store a year's arrangement, and recompute in the same commit every
    running deadline that may count on that year (``Engine.import_calendar``)."""
    calendar = sync.calendar
    if calendar is None:
        raise StorageError(
            "this engine's calendar is not the official calendar (ChineseOfficialCalendar): "
            "an imported arrangement would not be used. Open the engine with the default "
            "calendar to import one."
        )
    if isinstance(source, Path):
        file_name = file_name or str(source)
        source = arrangements.read(source)
    file_name = file_name or "the arrangement text"
    arrangement = arrangements.parse(source, file_name)
    differences = arrangements.disagreements(arrangement)
    if differences and not override:
        raise CalendarDisagrees(arrangement.year, PACKAGE, differences)
    try:
        with store.write() as tx:
            generation = tx.bump_calendar_generation()  # first: every arming waits
            import_id = tx.insert_calendar_import(
                year=arrangement.year,
                source=arrangement.source,
                file_name=file_name,
                imported_by=by,
                imported_at=now,
                override=bool(differences),
                days=arrangement.days,
            )
            calendar.load(generation, tx.desk_years())
            moved = recompute(tx, registry, calendar, now, arrangement.year)
    except BaseException:
        sync.forget()  # what was loaded did not commit
        raise
    log.info(
        "imported the %d arrangement (%s) by %s; %d deadline(s) recomputed",
        arrangement.year,
        arrangement.source,
        by,
        moved,
    )
    return CalendarImport(
        year=arrangement.year,
        import_id=import_id,
        holidays=sum(not d.working for d in arrangement.days),
        workdays=sum(d.working for d in arrangement.days),
        recomputed=moved,
        overridden=tuple(differences),
    )


def recompute(
    tx: CalendarTx,
    registry: Registry,
    calendar: WorkingCalendar,
    now: datetime,
    year: int | None = None,
) -> int:
    """Recompute the running deadlines (those started by the end of ``year``)."""
    moved = 0
    for row in tx.running_deadlines():
        if year is not None and row.started_at.astimezone(SHANGHAI).year > year:
            continue
        case = tx.load_case(row.case_id)
        definition = registry.get(case.workflow, case.workflow_version)
        rule = timers.rule_named(definition, row.rule)
        if rule is None:
            continue
        paused = timedelta(seconds=row.paused_seconds)
        period = timers.instance_period(rule, row)
        try:
            plan = timers.schedule(rule, row.started_at, paused, calendar, period)
        except CalendarYearUnknown as exc:  # a strict calendar: keep it, say so
            log.warning("%s %s kept as it is: %s", case.number, rule.name, exc)
            continue
        if (plan.due, plan.calendar, plan.provisional) == (
            row.due_at,
            row.calendar,
            row.provisional,
        ):
            continue
        tx.update_deadline(
            case.id,
            rule.name,
            row.armed_seq,
            due_at=plan.due,
            calendar=plan.calendar,
            provisional=plan.provisional,
        )
        for (kind, level), at in plan.times.items():
            tx.retime_timer(case.id, rule.name, row.armed_seq, kind, level, at, status="pending")
        if not tx.update_case(
            case_id=case.id,
            expected_version=case.version,
            state=None,
            data=case.data,
            now=now,
            keys=None,
        ):
            raise ConflictError(case.number, case.version, tx.current_version(case.id))
        old, new = row.due_at.astimezone(SHANGHAI), plan.due.astimezone(SHANGHAI)
        title = rule.title or rule.name
        change = (
            f"{format_due(old)} → {format_due(new)}" if old != new else f"{format_due(new)} 不变"
        )
        tx.append_history(
            case_id=case.id,
            number=case.number,
            seq=case.version + 1,
            at=now,
            actor=Actor.system("calendar"),
            event="deadline_recomputed",
            from_state=case.state,
            to_state=case.state,
            data={
                "rule": rule.name,
                "old_due_at": old.isoformat(),
                "new_due_at": new.isoformat(),
                "calendar": plan.calendar,
                "was_provisional": row.provisional,
                "provisional": plan.provisional,
            },
            notes=[
                f"日历数据更新，期限「{title}」重算：{change}（{plan.calendar}）"
                f"{timers.caveat(plan)}"
            ],
        )
        moved += 1
    if moved:
        log.info("recomputed %d deadline(s) on %s", moved, getattr(calendar, "source", "?"))
    return moved
