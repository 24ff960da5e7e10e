"""Pure deadline arithmetic, counted as the law counts (DOMAIN.md §5.5, DESIGN.md §3.4).

- ``hours``: exact elapsed time from the moment of the event; holidays count
  (民法典第二百零一条 second paragraph).
- ``natural_days``: counting starts the day after the starting day (第二百零一条); the
  period ends at 24:00 of its last day, or at a configured close of business
  (第二百零三条); a last day that is a rest day or holiday moves to the first working
  day after it (第二百零三条).
- ``working_days``: the N working days after the starting day on the official calendar
  (make-up working weekends count, holidays do not); the period ends at 24:00 of the
  Nth, or at the close of business.

All instants are timezone-aware; day boundaries are Beijing days. No function here
reads a clock: the caller passes the instants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from .calendar import WorkingCalendar, first_working_day_from
from .clock import SHANGHAI


class Unit(StrEnum):
    hours = "hours"
    natural_days = "natural_days"
    working_days = "working_days"


_PERIOD = re.compile(r"^\s*(\d+)\s+(hours|natural_days|working_days)\s*$")


@dataclass(frozen=True)
class Period:
    """An amount of a unit, e.g. ``Period(3, Unit.working_days)``."""

    amount: int
    unit: Unit

    @classmethod
    def parse(cls, text: str) -> Period:
        """``"3 working_days"``, ``"24 hours"``, ``"15 natural_days"``.

        Raises:
            ValueError: with what was expected.
        """
        match = _PERIOD.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(
                f"{text!r} is not a period; write '<whole number> <unit>' with unit one of "
                "hours, natural_days, working_days (e.g. '3 working_days')"
            )
        return cls(int(match.group(1)), Unit(match.group(2)))

    def __str__(self) -> str:
        return f"{self.amount} {self.unit.value}"


def due_at(
    start: datetime,
    period: Period,
    calendar: WorkingCalendar,
    close_of_business: time | None = None,
) -> datetime:
    """When a period that started at ``start`` ends (an aware instant, in Beijing time).

    Raises:
        CalendarYearUnknown: a day-based period needs a year the calendar does not know.
    """
    if start.tzinfo is None:
        raise ValueError(f"{start!r} has no time zone")
    if period.unit is Unit.hours:
        return (start + timedelta(hours=period.amount)).astimezone(SHANGHAI)
    return _end_of_days(start.astimezone(SHANGHAI).date(), period, calendar, close_of_business)


def due_after(due: datetime, period: Period, calendar: WorkingCalendar) -> datetime:
    """When a period that starts where another ended ends — an escalation level
    ``after = "1 working_days"`` of a breach, say.

    The starting day is the day the first period ended on, not counted (民法典第二百零一条):
    a due time of 24:00 Thursday (stored as 00:00 Friday) starts from Thursday, so one
    working day after it is Friday, not Monday.
    """
    if period.unit is Unit.hours:
        return (due + timedelta(hours=period.amount)).astimezone(SHANGHAI)
    return _end_of_days(last_day(due), period, calendar, None)


def last_day(due: datetime) -> date:
    """The Beijing day a period due at ``due`` ends on: a period that ends at 24:00 is
    stored as 00:00 of the next day, and still ends on the day before it."""
    return (due.astimezone(SHANGHAI) - timedelta(microseconds=1)).date()


def _end_of_days(
    day: date, period: Period, calendar: WorkingCalendar, close_of_business: time | None
) -> datetime:
    """The end of ``period`` (natural or working days) counted from starting day ``day``."""
    if period.unit is Unit.natural_days:
        last = first_working_day_from(day + timedelta(days=period.amount), calendar)
    else:
        counted = 0
        last = day
        while counted < period.amount:
            last += timedelta(days=1)
            if calendar.is_working_day(last):
                counted += 1
    if close_of_business is not None:
        return datetime.combine(last, close_of_business, SHANGHAI)
    return datetime.combine(last + timedelta(days=1), time(0, 0), SHANGHAI)


def warning_times(start: datetime, due: datetime, fractions: tuple[float, ...]) -> list[datetime]:
    """The instants at which ``fractions`` of the time from ``start`` to ``due`` have passed."""
    span = due - start
    return [start + span * f for f in fractions]


def resumed_start(start: datetime, paused: timedelta) -> datetime:
    """The effective start of a period after pauses totalling ``paused``.

    Paused time does not count (SPC Interpretation II Art. 15): the period is counted
    again, by the same rules, from its start moved on by the time spent paused.
    """
    return start + paused
