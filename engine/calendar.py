"""Which days are working days: the Chinese official calendar, behind a narrow interface.

The State Council publishes each year's holiday arrangement, with its make-up working
weekends (调休), usually in November or December for the next year. The data comes from
the maintained ``chinesecalendar`` package; a day in a year it does not know yet is an
explicit :class:`CalendarYearUnknown`, never a guess — the fix is to upgrade the package
once the arrangement is published (``pip install -U chinesecalendar``), or for an app to
pass its own calendar.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Literal, Protocol, runtime_checkable

import chinese_calendar

from .errors import CalendarYearUnknown

__all__ = ["ChineseOfficialCalendar", "WorkingCalendar", "describe", "first_working_day_from"]

log = logging.getLogger("baoflow.calendar")


@runtime_checkable
class WorkingCalendar(Protocol):
    """Answers one question. An app can pass its own (a regional calendar, say)."""

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day (make-up weekends included).

        Raises:
            CalendarYearUnknown: the calendar has no data for ``day``'s year.
        """
        ...


class ChineseOfficialCalendar:
    """The State Council's arrangement, as the ``chinesecalendar`` package knows it.

    Args:
        unknown_years: ``"error"`` (the default) raises :class:`CalendarYearUnknown` for
            a year without a published arrangement. ``"weekends"`` is the explicit
            fallback an app may choose instead: Monday to Friday count as working days
            in such a year (no holidays, no make-up days), and a warning is logged
            once per year so the guess is never silent.
    """

    source = f"chinesecalendar {getattr(chinese_calendar, '__version__', '?')}"

    def __init__(self, unknown_years: Literal["error", "weekends"] = "error") -> None:
        if unknown_years not in ("error", "weekends"):
            raise ValueError(f"unknown_years must be 'error' or 'weekends', not {unknown_years!r}")
        self.unknown_years = unknown_years
        self._warned: set[int] = set()

    def knows_year(self, year: int) -> bool:
        """Whether the data has the official arrangement for ``year``."""
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
        except NotImplementedError:
            return False
        return True

    def is_working_day(self, day: date) -> bool:
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if self.unknown_years == "error":
                raise CalendarYearUnknown(day.year, self.source) from None
        if day.year not in self._warned:
            self._warned.add(day.year)
            log.warning(
                "no official holiday arrangement for %s in %s: counting Monday to Friday "
                "as working days (the app chose unknown_years='weekends')",
                day.year,
                self.source,
            )
        return day.weekday() < 5


def describe(calendar: WorkingCalendar, first: date, last: date) -> str:
    """Which data a deadline from ``first`` to ``last`` was computed on, for the record:
    the calendar's source, and any year in between it only guessed (the weekday
    fallback), so the guess is visible on the deadline."""
    source = str(getattr(calendar, "source", type(calendar).__name__))
    knows = getattr(calendar, "knows_year", None)
    if knows is None:
        return source
    guessed = [y for y in range(first.year, last.year + 1) if not knows(y)]
    if not guessed:
        return source
    return f"{source}; weekday fallback for {', '.join(map(str, guessed))}"


def first_working_day_from(day: date, calendar: WorkingCalendar) -> date:
    """``day`` if it is a working day, else the first working day after it.

    This is how a period whose last day is a rest day or holiday ends (民法典第二百零三条).
    """
    while not calendar.is_working_day(day):
        day += timedelta(days=1)
    return day
