"""The desk's holiday arrangements between the store and the calendar (issue #10).

An import is stored in the database, so every worker on PostgreSQL counts on the same
days. Each engine keeps the stored arrangements loaded in its
:class:`~engine.calendar.ChineseOfficialCalendar` and compares a generation number
with the store's: in every transaction that computes a deadline (under a share lock,
see ``CoreTx.calendar_generation``), in every timer run, and at least once a minute
otherwise. So a deadline is never computed on data an import has just replaced.
"""

from __future__ import annotations

from datetime import date, timedelta

from .calendar import ChineseOfficialCalendar, WorkingCalendar
from .clock import monotonic
from .store import CoreTx
from .types import CalendarDay, CalendarImportRecord, CalendarYear, CalendarYearStatus

#: How often an engine that computed no deadline looks for a newer import (seconds).
REFRESH_SECONDS = 60.0


class CalendarSync:
    """Keeps one engine's calendar in step with the arrangements in its store."""

    def __init__(self, calendar: WorkingCalendar) -> None:
        self.calendar = calendar if isinstance(calendar, ChineseOfficialCalendar) else None
        self._checked = float("-inf")

    def sync(self, tx: CoreTx, *, lock: bool) -> None:
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


def year_view(calendar: ChineseOfficialCalendar, tx: CoreTx, year: int) -> CalendarYear:
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
    imports = tuple(
        CalendarImportRecord(
            id=row.id,
            year=row.year,
            source=row.source,
            file_name=row.file_name,
            imported_by=row.imported_by,
            imported_at=row.imported_at,
            override=row.override,
            current=row.current,
        )
        for row in tx.calendar_imports(year)
    )
    return CalendarYear(year, source.value, tuple(days), imports)


def statuses(calendar: WorkingCalendar, tx: CoreTx, years: list[int]) -> list[CalendarYearStatus]:
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
