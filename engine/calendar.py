"""Which days are working days: the Chinese official calendar in three layers.

The State Council publishes each year's holiday arrangement, with its make-up working
weekends (调休), usually in November or December for the next year. A desk must keep
counting deadlines in December all the same, so :class:`ChineseOfficialCalendar` answers
from three layers, the first that knows the year:

1. **the desk's own arrangement** for the year, imported from the notice with
   ``baoflow calendar import`` and kept in the database (:mod:`engine.arrangements`
   reads the file; the engine loads what is stored into the calendar);
2. **the published arrangement** of the maintained ``chinesecalendar`` package;
3. **a provisional year**: the statutory holidays fixed by law (《全国年节及纪念日放假办法》,
   as amended in 2024: 13 days, lunar dates computed by the ``holidays`` package) plus
   weekends, with no bridge days and no make-up days. Every deadline that touches such a
   year is marked provisional and recomputed when the year's arrangement arrives.

An app that prefers to stop instead chooses ``unknown_years="error"``: a provisional
year then raises :class:`CalendarYearUnknown`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cache, lru_cache
from typing import Literal, Protocol, runtime_checkable

import chinese_calendar

from .errors import CalendarYearUnknown

__all__ = [
    "ChineseOfficialCalendar",
    "DeskDay",
    "DeskYear",
    "WorkingCalendar",
    "YearSource",
    "describe",
    "first_working_day_from",
    "provisional_years",
    "statutory_holidays",
]

log = logging.getLogger("baoflow.calendar")

#: The law the provisional layer follows (cited on every provisional deadline).
STATUTE = "全国年节及纪念日放假办法（2024年修订）"

PACKAGE = f"chinesecalendar {getattr(chinese_calendar, '__version__', '?')}"


@runtime_checkable
class WorkingCalendar(Protocol):
    """Answers one question. An app can pass its own (a regional calendar, say)."""

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day (make-up weekends included).

        Raises:
            CalendarYearUnknown: the calendar has no data for ``day``'s year.
        """
        ...


class YearSource(StrEnum):
    """Where a year's working days come from."""

    desk = "desk"  # imported by the desk from the State Council's notice
    package = "package"  # the published arrangement in chinesecalendar
    provisional = "provisional"  # statutory holidays and weekends only, until published
    unknown = "unknown"  # none of them, and the app chose to stop (unknown_years="error")


@dataclass(frozen=True)
class DeskDay:
    """One day of an imported arrangement: a holiday, or a make-up working day."""

    day: date
    working: bool
    name: str
    line: int | None = None  # where it stands in the imported file


@dataclass(frozen=True)
class DeskYear:
    """A year's arrangement as the desk imported it (one ``calendar import``)."""

    year: int
    days: tuple[DeskDay, ...]
    source: str  # the notice it was typed from
    imported_by: str
    imported_at: datetime
    import_id: int
    override: bool = False  # imported although chinesecalendar says otherwise
    holidays: frozenset[date] = field(init=False, repr=False)
    workdays: frozenset[date] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "holidays", frozenset(d.day for d in self.days if not d.working))
        object.__setattr__(self, "workdays", frozenset(d.day for d in self.days if d.working))

    @property
    def label(self) -> str:
        return f"desk arrangement {self.year} (import {self.import_id})"


@cache
def statutory_holidays(year: int) -> Mapping[date, str]:
    """The statutory holidays of ``year`` fixed by law, with their Chinese names.

    From the ``holidays`` package, which computes the lunar dates; only the days the law
    names are kept — not the package's own bridge-day guesses ("observed") nor the
    swapped rest days of a published year, which only the year's notice decides.
    """
    import holidays  # imported here: computing lunar dates is needed for few years

    named = {"元旦", "农历除夕", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节"}
    found = holidays.country_holidays("CN", years=year, observed=False, language="zh_CN")
    return {
        day: name
        for day, name in sorted(found.items())
        if any(part.strip() in named for part in name.split(";"))
    }


class ChineseOfficialCalendar:
    """The official working-day calendar: the desk's imports, then ``chinesecalendar``,
    then a provisional year counted from the statutory holidays.

    Args:
        unknown_years: ``"provisional"`` (the default) counts a year without a
            published arrangement from its statutory holidays and weekends, and marks
            what it computed provisional. ``"error"`` raises :class:`CalendarYearUnknown`
            instead, for an app that prefers to stop. ``"weekends"`` is the name this
            option had before provisional years existed; it now means ``"provisional"``.
    """

    def __init__(
        self, unknown_years: Literal["provisional", "error", "weekends"] = "provisional"
    ) -> None:
        if unknown_years not in ("provisional", "error", "weekends"):
            raise ValueError(
                f"unknown_years must be 'provisional' or 'error', not {unknown_years!r}"
            )
        self.strict = unknown_years == "error"
        self._desk: dict[int, DeskYear] = {}
        #: which stored arrangements are loaded (the engine compares it with the store's)
        self.generation = 0
        self._announced: set[int] = set()

    # --- the layers -----------------------------------------------------------------
    def load(self, generation: int, years: Iterable[DeskYear]) -> None:
        """Replace the desk's arrangements with those stored at ``generation``."""
        self._desk = {y.year: y for y in years}
        self.generation = generation

    def desk_year(self, year: int) -> DeskYear | None:
        return self._desk.get(year)

    def year_source(self, year: int) -> YearSource:
        """Which layer answers for ``year``."""
        if year in self._desk:
            return YearSource.desk
        if package_knows(year):
            return YearSource.package
        return YearSource.unknown if self.strict else YearSource.provisional

    def knows_year(self, year: int) -> bool:
        """Whether ``year``'s arrangement is published (imported, or in the package)."""
        return self.year_source(year) in (YearSource.desk, YearSource.package)

    @property
    def source(self) -> str:
        years = ", ".join(str(y) for y in sorted(self._desk))
        return f"{PACKAGE} + desk {years}" if years else PACKAGE

    def is_working_day(self, day: date) -> bool:
        desk = self._desk.get(day.year) if self._desk else None
        if desk is not None:
            if day in desk.workdays:
                return True
            return day.weekday() < 5 and day not in desk.holidays
        package = _package_workday(day)
        if package is not None:
            return package
        if self.strict:
            raise CalendarYearUnknown(day.year, PACKAGE)
        if day.year not in self._announced:
            self._announced.add(day.year)
            log.info(
                "no published holiday arrangement for %s: counting it provisionally from "
                "the statutory holidays (%s) and weekends until it is imported",
                day.year,
                STATUTE,
            )
        return day.weekday() < 5 and day not in statutory_holidays(day.year)

    def day_source(self, day: date) -> tuple[bool, str, str]:
        """Whether ``day`` is a working day, what it is called (a holiday's or make-up
        day's name, else ``""``), and which layer said so — for ``calendar show``."""
        source = self.year_source(day.year)
        working = self.is_working_day(day)
        name = ""
        if source is YearSource.desk:
            desk = self._desk[day.year]
            name = next((d.name for d in desk.days if d.day == day), "")
        elif source is YearSource.package:
            _, detail = chinese_calendar.get_holiday_detail(day)
            if detail:
                zh = _PACKAGE_NAMES.get(detail, str(detail))
                name = f"{zh}调休上班" if working else zh
        else:
            name = statutory_holidays(day.year).get(day, "")
        return working, name, source.value


@lru_cache(maxsize=8192)
def _package_workday(day: date) -> bool | None:
    """chinesecalendar's answer for ``day`` (None: a year it does not know), kept: the
    package's data never changes in a process, and asking it validates the date against
    its whole table each time (a third of a deadline's due-time computation)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


_PACKAGE_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}


@cache  # the package's data does not change while it runs
def package_knows(year: int) -> bool:
    """Whether ``chinesecalendar`` has the official arrangement for ``year``."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def package_day(day: date) -> bool | None:
    """What ``chinesecalendar`` says of ``day`` (working or not), or None for a year it
    does not know — what an import is compared with."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


def provisional_years(calendar: WorkingCalendar, first: date, last: date) -> tuple[int, ...]:
    """The years from ``first`` to ``last`` that ``calendar`` only counts provisionally
    (no published arrangement yet). A calendar that cannot say has none."""
    source = getattr(calendar, "year_source", None)
    if source is not None:
        return tuple(
            y for y in range(first.year, last.year + 1) if source(y) is YearSource.provisional
        )
    knows = getattr(calendar, "knows_year", None)
    if knows is None:
        return ()
    return tuple(y for y in range(first.year, last.year + 1) if not knows(y))


def describe(calendar: WorkingCalendar, first: date, last: date) -> str:
    """Which data a deadline from ``first`` to ``last`` was computed on, for the record:
    the calendar's source, the desk's arrangements it used, and any year it counted only
    provisionally, so a provisional deadline says so wherever it is shown."""
    year_source = getattr(calendar, "year_source", None)
    parts = [PACKAGE if year_source is not None else str(getattr(calendar, "source", ""))]
    if not parts[0]:
        parts = [type(calendar).__name__]
    if year_source is not None:
        desk = [y for y in range(first.year, last.year + 1) if year_source(y) is YearSource.desk]
        if desk:
            parts.append("desk arrangement " + ", ".join(map(str, desk)))
    guessed = provisional_years(calendar, first, last)
    if guessed:
        parts.append(f"provisional for {', '.join(map(str, guessed))} (statutory holidays only)")
    return "; ".join(parts)


def first_working_day_from(day: date, calendar: WorkingCalendar) -> date:
    """``day`` if it is a working day, else the first working day after it.

    This is how a period whose last day is a rest day or holiday ends (民法典第二百零三条).
    """
    while not calendar.is_working_day(day):
        day += timedelta(days=1)
    return day
