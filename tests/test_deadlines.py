"""Deadline arithmetic on the real official calendar, counted as the law counts
(DOMAIN.md §5.5): the worked examples, National Day, Spring Festival, make-up days."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import date, datetime, time, timedelta

import pytest
from baoflow.engine import SHANGHAI, CalendarYearUnknown, ChineseOfficialCalendar
from baoflow.engine.deadlines import (
    Period,
    Unit,
    due_after,
    due_at,
    last_day,
    resumed_start,
    warning_times,
)

CAL = ChineseOfficialCalendar()


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def test_worked_example_a_complaint_due_15_natural_days_after_acceptance() -> None:
    """Accepted Mon 2026-04-20: day 15 is 05-05, inside Labour Day → end of Wed 05-06."""
    assert due_at(bj(2026, 4, 20, 10, 0), Period(15, Unit.natural_days), CAL) == bj(
        2026, 5, 7, 0, 0
    )


def test_worked_example_materials_handed_over_within_3_working_days() -> None:
    """Received Wed 2026-05-06: Thu, Fri, then the make-up Saturday 05-09 → end of 05-09."""
    due = due_at(bj(2026, 5, 6, 16, 30), Period(3, Unit.working_days), CAL)
    assert due == bj(2026, 5, 10, 0, 0)


def test_worked_example_a_major_case_reported_within_24_hours_holidays_included() -> None:
    assert due_at(bj(2026, 5, 1, 9, 0), Period(24, Unit.hours), CAL) == bj(2026, 5, 2, 9, 0)


def test_working_days_skip_the_national_day_week() -> None:
    """Materials complete Wed 2026-09-30; 10-01..10-07 are holidays; 10-08 and 10-09 and
    the make-up Saturday 10-10 are working days → end of Sat 10-10."""
    assert due_at(bj(2026, 9, 30, 11, 0), Period(3, Unit.working_days), CAL) == bj(2026, 10, 11)


def test_working_days_skip_spring_festival_and_count_its_make_up_saturday() -> None:
    """Fri 2026-02-13 start: Sat 02-14 is a make-up working day (day 1), then the
    Spring Festival holiday (02-15..02-23), then Tue 02-24 (day 2), Wed 02-25 (day 3)."""
    assert due_at(bj(2026, 2, 13, 9, 0), Period(3, Unit.working_days), CAL) == bj(2026, 2, 26)


def test_the_start_day_is_not_counted_whatever_the_hour() -> None:
    early = due_at(bj(2026, 5, 11, 0, 1), Period(1, Unit.working_days), CAL)
    late = due_at(bj(2026, 5, 11, 23, 59), Period(1, Unit.working_days), CAL)
    assert early == late == bj(2026, 5, 13)  # end of Tue 05-12


def test_a_natural_day_period_ending_on_a_weekday_is_not_moved() -> None:
    assert due_at(bj(2026, 6, 1, 10, 0), Period(3, Unit.natural_days), CAL) == bj(2026, 6, 5)


def test_a_close_of_business_ends_the_last_day_early() -> None:
    due = due_at(bj(2026, 5, 6, 16, 30), Period(3, Unit.working_days), CAL, time(17, 30))
    assert due == bj(2026, 5, 9, 17, 30)


def test_hours_are_exact_across_a_utc_day_boundary() -> None:
    start = datetime(2026, 5, 6, 20, 0, tzinfo=SHANGHAI).astimezone()
    assert due_at(start, Period(5, Unit.hours), CAL) == bj(2026, 5, 7, 1, 0)


def test_warnings_fall_at_their_fractions_of_the_period() -> None:
    start, due = bj(2026, 5, 1, 9, 0), bj(2026, 5, 2, 9, 0)
    assert warning_times(start, due, (0.5, 0.8)) == [bj(2026, 5, 1, 21, 0), bj(2026, 5, 2, 4, 12)]


def test_a_pause_moves_the_start_on_and_the_period_is_counted_again() -> None:
    """Hand-over started Wed 05-06; paused 2 days for missing materials → counted from
    Fri 05-08: Sat 05-09 (make-up), Mon 05-11, Tue 05-12 → end of 05-12."""
    start = resumed_start(bj(2026, 5, 6, 10, 0), timedelta(days=2))
    assert due_at(start, Period(3, Unit.working_days), CAL) == bj(2026, 5, 13)


def test_a_day_period_into_an_unpublished_year_skips_its_statutory_holidays() -> None:
    """Wed 2026-12-30 + 5 working days: Thu 12-31, then 2027 provisionally — Fri 01-01
    is New Year's Day by law — Mon 01-04 .. Thu 01-07 → end of 01-07."""
    assert due_at(bj(2026, 12, 30, 10, 0), Period(5, Unit.working_days), CAL) == bj(2027, 1, 8)


def test_a_strict_calendar_refuses_a_day_period_into_an_unpublished_year() -> None:
    strict = ChineseOfficialCalendar(unknown_years="error")
    with pytest.raises(CalendarYearUnknown):
        due_at(bj(2026, 12, 30, 10, 0), Period(5, Unit.working_days), strict)


def test_one_working_day_after_a_breach_at_24_00_is_the_next_working_day() -> None:
    """A breach at the end of Thu 2026-06-04 (stored as 00:00 Fri): the breach day is
    the starting day, not counted; day 1 is Fri 06-05 → end of Fri, not of Mon 06-08."""
    breach = bj(2026, 6, 5, 0, 0)
    assert due_after(breach, Period(1, Unit.working_days), CAL) == bj(2026, 6, 6)
    assert due_after(breach, Period(2, Unit.working_days), CAL) == bj(2026, 6, 9)  # Mon
    assert due_after(breach, Period(2, Unit.hours), CAL) == bj(2026, 6, 5, 2, 0)


def test_a_period_after_a_breach_at_close_of_business_counts_from_that_day() -> None:
    """A breach at 17:30 Thu 06-04: the same starting day as one at 24:00."""
    assert due_after(bj(2026, 6, 4, 17, 30), Period(1, Unit.working_days), CAL) == bj(2026, 6, 6)


def test_the_last_day_of_a_period_ending_at_24_00_is_the_day_before_its_instant() -> None:
    assert last_day(bj(2026, 6, 5, 0, 0)) == date(2026, 6, 4)
    assert last_day(bj(2026, 6, 5, 17, 30)) == date(2026, 6, 5)


@pytest.mark.parametrize(
    "text", ["3 weeks", "three working_days", "-1 hours", "3", "", "3.5 hours"]
)
def test_a_period_that_is_not_whole_units_is_refused_with_the_form_expected(text: str) -> None:
    with pytest.raises(ValueError, match="'<whole number> <unit>'"):
        Period.parse(text)


def test_periods_parse_and_print() -> None:
    assert Period.parse("3 working_days") == Period(3, Unit.working_days)
    assert str(Period.parse(" 24  hours ")) == "24 hours"


# --- at the edges (issue #15 item 8: mutants of deadlines.py that survived) -------------
class EveryDayWorks:
    """A calendar with no rest day: the count alone decides."""

    def is_working_day(self, day: date) -> bool:
        return True


def test_a_long_period_counts_every_one_of_its_working_days() -> None:
    """300 working days (a number past any small-integer shortcut) end on the 300th."""
    due = due_at(bj(2026, 1, 5, 9, 0), Period(300, Unit.working_days), EveryDayWorks())
    assert due == bj(2026, 1, 5, 0, 0) + timedelta(days=301)


def test_a_period_ending_a_microsecond_after_midnight_ends_on_that_day() -> None:
    """Only 24:00 (stored as 00:00 of the next day) belongs to the day before."""
    assert last_day(bj(2026, 5, 8, 0, 0)) == date(2026, 5, 7)
    assert last_day(bj(2026, 5, 8, 0, 0) + timedelta(microseconds=1)) == date(2026, 5, 8)


def test_a_period_is_a_value_that_cannot_be_changed() -> None:
    """Rules share their periods (and periods key caches): none may be changed in place."""
    period = Period.parse("3 working_days")
    with pytest.raises(FrozenInstanceError):
        period.amount = 4  # type: ignore[misc]
    assert period == Period(3, Unit.working_days) and hash(period) == hash(
        Period(3, Unit.working_days)
    )
