"""When the calendar data changes (next year's arrangement is published), running
deadlines are recomputed and the change is visible on the case; a guessed year is
visible on the deadline (DESIGN.md §3.10, issue #4)."""

from __future__ import annotations

from datetime import date, datetime

from click.testing import CliRunner

from engine import SHANGHAI, ChineseOfficialCalendar, FakeClock, open_engine
from engine.cli import main
from tests.conftest import POLICIES
from tests.test_timers import to_materials_complete


class Published2027(ChineseOfficialCalendar):
    """What the data could say once 2027 is published: 01-01 and 01-04 are holidays."""

    source = "test arrangement incl. 2027"

    def knows_year(self, year: int) -> bool:
        return year <= 2027

    def is_working_day(self, day: date) -> bool:
        if day.year == 2027:
            return day.weekday() < 5 and day not in {date(2027, 1, 1), date(2027, 1, 4)}
        return super().is_working_day(day)


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def test_a_guessed_year_shows_on_the_deadline_and_is_recomputed_once_published(
    db_url: str,
) -> None:
    clock = FakeClock(bj(2026, 12, 30, 9, 0))
    guessing = open_engine(db_url, clock=clock, calendar=ChineseOfficialCalendar("weekends"))
    guessing.policies.add(POLICIES)  # type: ignore[attr-defined]
    case = to_materials_complete(guessing)
    (before,) = [d for d in guessing.deadlines(case.id) if d.rule == "hand_over"]
    guessing.close()
    # Thu 12-31, then the guess: Fri 2027-01-01 and Mon 01-04 count → end of 01-04.
    assert before.due_at == bj(2027, 1, 5)
    assert before.calendar is not None and "weekday fallback for 2027" in before.calendar

    published = open_engine(db_url, clock=clock, calendar=Published2027(), migrate=False)
    try:
        assert published.recompute_deadlines() == 1
        (after,) = [d for d in published.deadlines(case.id) if d.rule == "hand_over"]
        # 12-31, then 01-01 and 01-04 are holidays: Tue 01-05, Wed 01-06 → end of 01-06.
        assert after.due_at == bj(2027, 1, 7)
        assert after.calendar == "test arrangement incl. 2027"
        (row,) = [h for h in published.history(case.id) if h.event == "deadline_recomputed"]
        assert row.data["old_due_at"].startswith("2027-01-05T00:00")
        assert row.data["new_due_at"].startswith("2027-01-07T00:00")
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
    guessing = open_engine(db_url, clock=clock, calendar=ChineseOfficialCalendar("weekends"))
    guessing.policies.add(POLICIES)  # type: ignore[attr-defined]
    case = to_materials_complete(guessing)
    guessing.close()
    strict = open_engine(db_url, clock=clock, migrate=False)  # 2027 still unknown
    try:
        assert strict.recompute_deadlines() == 0
        (kept,) = [d for d in strict.deadlines(case.id) if d.rule == "hand_over"]
        assert kept.due_at == bj(2027, 1, 5) and "weekday fallback" in (kept.calendar or "")
    finally:
        strict.close()
