"""Working days on the Chinese official calendar (DOMAIN.md §5.5), and years it does not know."""

from __future__ import annotations

import logging
from datetime import date, datetime

import pytest
from baoflow.engine import (
    SHANGHAI,
    CalendarYearUnknown,
    ChineseOfficialCalendar,
    Engine,
    FakeClock,
    GuardRefused,
    open_engine,
)
from baoflow.engine import first_working_day_from as roll

from tests.conftest import AGENT, HANDLER, POLICIES, report

OFFICIAL = ChineseOfficialCalendar()


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 5, 4), False),  # Labour Day holiday (05-01..05-05)
        (date(2026, 5, 6), True),
        (date(2026, 5, 9), True),  # a make-up Saturday (调休)
        (date(2026, 5, 16), False),  # an ordinary Saturday
        (date(2026, 2, 14), True),  # make-up Saturday before Spring Festival
        (date(2026, 10, 1), False),  # National Day
        (date(2026, 10, 10), True),  # make-up Saturday after National Day
    ],
)
def test_the_official_calendar_knows_holidays_and_make_up_days(day: date, working: bool) -> None:
    assert OFFICIAL.is_working_day(day) is working


def test_a_period_ending_on_a_rest_day_ends_on_the_next_working_day() -> None:
    """民法典第二百零三条."""
    assert roll(date(2026, 5, 4), OFFICIAL) == date(2026, 5, 6)  # inside Labour Day
    assert roll(date(2026, 5, 16), OFFICIAL) == date(2026, 5, 18)  # a weekend
    assert roll(date(2026, 5, 9), OFFICIAL) == date(2026, 5, 9)  # make-up day: a working day
    assert roll(date(2026, 10, 1), OFFICIAL) == date(2026, 10, 8)  # National Day, 10-01..10-07


def test_a_strict_calendar_refuses_a_year_without_a_published_arrangement() -> None:
    strict = ChineseOfficialCalendar(unknown_years="error")
    with pytest.raises(CalendarYearUnknown, match="baoflow calendar import FILE") as exc:
        strict.is_working_day(date(2099, 3, 2))
    assert exc.value.year == 2099


def test_by_default_an_unpublished_year_counts_its_statutory_holidays_and_weekends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """全国年节及纪念日放假办法 (2024): certain for any year, unlike the bridge days."""
    with caplog.at_level(logging.INFO, logger="baoflow.calendar"):
        assert OFFICIAL.is_working_day(date(2099, 3, 2))  # a Monday
        assert not OFFICIAL.is_working_day(date(2099, 3, 7))  # a Saturday
        assert not OFFICIAL.is_working_day(date(2099, 1, 1))  # New Year's Day, a Thursday
        assert OFFICIAL.is_working_day(date(2099, 1, 2))  # no bridge day is guessed
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "no published holiday arrangement for 2099"
    ]  # said once per year


def test_weekends_is_the_old_name_of_the_provisional_year_and_typos_are_refused() -> None:
    old_name = ChineseOfficialCalendar(unknown_years="weekends")
    assert not old_name.is_working_day(date(2027, 1, 1)) and not old_name.strict
    with pytest.raises(ValueError, match="'provisional' or 'error'"):
        ChineseOfficialCalendar(unknown_years="guess")  # type: ignore[arg-type]


def test_on_a_strict_calendar_a_filing_limit_in_an_unknown_year_refuses_to_guess(
    db_url: str,
) -> None:
    """Incident 2025-07-01 on a 2-year line: the limit 2027-07-01 may be moved by a
    holiday nobody has published yet; an app that chose a strict calendar is told so."""
    clock = FakeClock(datetime(2025, 7, 2, 9, 0, tzinfo=SHANGHAI))
    eng: Engine = open_engine(
        db_url, clock=clock, calendar=ChineseOfficialCalendar(unknown_years="error")
    )
    eng.policies.add(POLICIES)  # type: ignore[attr-defined]
    try:
        case = eng.open_case(
            "claim",
            report(
                policy={"number": "P-ACC-002", "insured_name": "张伟"},
                incident={"time": "2025-07-01T10:00:00+08:00"},
            ),
            AGENT,
        ).case
        clock.set(datetime(2027, 7, 5, 9, 0, tzinfo=SHANGHAI))
        with pytest.raises(CalendarYearUnknown) as exc:
            eng.fire(case.id, "verify", HANDLER)
        assert exc.value.year == 2027
        assert eng.get_case(case.id).state == "reported"  # nothing changed
    finally:
        eng.close()


def test_a_limit_far_in_an_unknown_future_is_never_looked_up(eng: Engine) -> None:
    """Only a limit already past needs the calendar: a 5-year life limit ending in 2031
    is simply not reached, whatever 2031's holidays will be."""
    strict = open_engine(
        eng.store.url, clock=eng.clock, calendar=ChineseOfficialCalendar(unknown_years="error")
    )
    try:
        case = strict.open_case("claim", report(), AGENT).case
        assert strict.fire(case.id, "verify", HANDLER).state == "verified"
        with pytest.raises(GuardRefused):  # and a real refusal still comes through
            strict.fire(
                case.id,
                "apply",
                HANDLER,
                {
                    "applicant_name": "路人",
                    "applicant_id_number": "110101199003074514",
                    "relationship": "other",
                },
            )
    finally:
        strict.close()
