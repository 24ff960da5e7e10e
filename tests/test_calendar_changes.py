"""When the calendar data changes (next year's arrangement is published in a new
``chinesecalendar``), running deadlines are recomputed and the change is visible on the
case; a provisional year is visible on the deadline (DESIGN.md §3.10, issues #4, #10).
Imports of the desk's own arrangement: tests/test_calendar_import.py."""

from __future__ import annotations

from datetime import date, datetime

from baoflow.engine import SHANGHAI, ChineseOfficialCalendar, FakeClock, open_engine
from baoflow.engine.calendar import YearSource
from click.testing import CliRunner

from baoflow.cli import main
from tests.conftest import POLICIES
from tests.test_timers import to_materials_complete


class Published2027(ChineseOfficialCalendar):
    """What a newer package could say once 2027 is published: 01-01 and 01-04 are
    holidays."""

    def year_source(self, year: int) -> YearSource:
        return YearSource.package if year == 2027 else super().year_source(year)

    def is_working_day(self, day: date) -> bool:
        if day.year == 2027:
            return day.weekday() < 5 and day not in {date(2027, 1, 1), date(2027, 1, 4)}
        return super().is_working_day(day)


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def test_a_provisional_year_shows_on_the_deadline_and_is_recomputed_once_published(
    db_url: str,
) -> None:
    clock = FakeClock(bj(2026, 12, 30, 9, 0))
    provisional = open_engine(db_url, clock=clock)  # the default calendar
    provisional.policies.add(POLICIES)  # type: ignore[attr-defined]
    case = to_materials_complete(provisional)
    (before,) = [d for d in provisional.deadlines(case.id) if d.rule == "hand_over"]
    provisional.close()
    # Thu 12-31, then 2027 provisionally: Fri 01-01 is New Year's Day by law, so Mon 01-04
    # and Tue 01-05 → end of 01-05.
    assert before.due_at == bj(2027, 1, 6)
    assert before.provisional and before.provisional_years == (2027,)
    assert before.calendar is not None and "provisional for 2027" in before.calendar

    published = open_engine(db_url, clock=clock, calendar=Published2027(), migrate=False)
    try:
        assert published.recompute_deadlines() == 1
        (after,) = [d for d in published.deadlines(case.id) if d.rule == "hand_over"]
        # 12-31, then 01-01 and 01-04 are holidays: Tue 01-05, Wed 01-06 → end of 01-06.
        assert after.due_at == bj(2027, 1, 7)
        assert not after.provisional and "provisional" not in (after.calendar or "")
        (row,) = [h for h in published.history(case.id) if h.event == "deadline_recomputed"]
        assert row.data["old_due_at"].startswith("2027-01-06T00:00")
        assert row.data["new_due_at"].startswith("2027-01-07T00:00")
        assert row.data["was_provisional"] == "2027" and row.data["provisional"] is None
        assert published.recompute_deadlines() == 0  # nothing moves twice
        clock.set(bj(2027, 1, 6, 12, 0))
        fired = published.run_due_timers()
        assert fired.fired == 2  # the two warnings; the breach waits for the new due time
    finally:
        published.close()


def test_baoflow_deadlines_recompute_reports_how_many_moved(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'r.db'}"
    eng = open_engine(url, clock=FakeClock(bj(2026, 5, 6, 9, 0)))
    eng.policies.add(POLICIES)  # type: ignore[attr-defined]
    to_materials_complete(eng)
    eng.close()
    result = CliRunner().invoke(main, ["deadlines", "recompute", "--url", url])
    assert result.exit_code == 0, result.output
    assert "0 deadline(s) moved" in result.output  # same data: nothing moves


def test_recomputing_on_data_that_still_lacks_the_year_keeps_the_deadline(db_url: str) -> None:
    clock = FakeClock(bj(2026, 12, 30, 9, 0))
    first = open_engine(db_url, clock=clock)
    first.policies.add(POLICIES)  # type: ignore[attr-defined]
    case = to_materials_complete(first)
    first.close()
    for calendar in (ChineseOfficialCalendar(), ChineseOfficialCalendar(unknown_years="error")):
        again = open_engine(db_url, clock=clock, calendar=calendar, migrate=False)
        try:
            assert again.recompute_deadlines() == 0  # 2027 still unpublished
            (kept,) = [d for d in again.deadlines(case.id) if d.rule == "hand_over"]
            assert kept.due_at == bj(2027, 1, 6) and kept.provisional_years == (2027,)
        finally:
            again.close()
