"""What a person reads: Beijing time everywhere, a deadline ending at 24:00 as that day's
24:00, lateness in days, hours and minutes (issue #11 item 7)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from baoflow.engine import (
    SHANGHAI,
    Engine,
    FakeClock,
    format_due,
    format_duration,
    format_when,
)
from baoflow.engine.scheduler import Worker
from click.testing import CliRunner

from baoflow.cli import main
from tests.conftest import AGENT, HANDLER, report
from tests.test_timers import to_materials_complete


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


# --- the three formats -------------------------------------------------------------------
def test_an_instant_reads_in_beijing_time_whatever_its_zone() -> None:
    assert format_when(datetime(2026, 5, 6, 1, 0, tzinfo=UTC)) == "2026-05-06 09:00"
    assert format_when(bj(2026, 5, 6, 9, 0)) == "2026-05-06 09:00"


def test_a_deadline_ending_at_midnight_reads_as_the_last_days_24_00() -> None:
    assert format_due(bj(2026, 12, 9, 0, 0)) == "2026-12-08 24:00"
    assert format_due(datetime(2026, 12, 8, 16, 0, tzinfo=UTC)) == "2026-12-08 24:00"
    assert format_due(bj(2027, 1, 1, 0, 0)) == "2026-12-31 24:00"  # across the year end


def test_any_other_due_time_reads_as_it_is() -> None:
    assert format_due(bj(2026, 12, 9, 17, 30)) == "2026-12-09 17:30"
    assert format_due(bj(2026, 12, 9, 0, 1)) == "2026-12-09 00:01"


@pytest.mark.parametrize(
    ("seconds", "zh", "en"),
    [
        (0, "0分钟", "0 min"),
        (29, "0分钟", "0 min"),
        (59, "1分钟", "1 min"),
        (3600, "1小时", "1 h"),
        (7300, "2小时2分钟", "2 h 2 min"),
        (86400, "1天", "1 d"),
        (318600, "3天16小时30分钟", "3 d 16 h 30 min"),
        (-90060, "-1天1小时1分钟", "-1 d 1 h 1 min"),
    ],
)
def test_a_length_of_time_reads_in_days_hours_and_minutes(seconds: int, zh: str, en: str) -> None:
    assert format_duration(seconds) == zh
    assert format_duration(seconds, locale="en") == en


def test_an_unknown_locale_is_named_with_the_locales_there_are() -> None:
    with pytest.raises(ValueError, match=r"no locale 'fr'; the locales are: zh-CN, en"):
        format_duration(60, locale="fr")


# --- where people read them --------------------------------------------------------------
def test_a_late_timers_note_says_how_late_in_days_and_hours(eng: Engine, clock: FakeClock) -> None:
    case = to_materials_complete(eng)
    clock.set(bj(2026, 5, 14, 8, 0))  # back after the breach and every level
    eng.run_due_timers()
    notes = [n for h in eng.history(case.id) if h.event.startswith("deadline_") for n in h.notes]
    assert notes and all("秒" not in n for n in notes)
    late = [n for n in notes if "迟 " in n]
    assert late and all("天" in n and "小时" in n for n in late), late


def test_a_duplicate_report_says_when_the_case_was_last_updated_in_beijing_time(
    eng: Engine, clock: FakeClock
) -> None:
    first = eng.open_case("claim", report(), AGENT).case
    eng.fire(first.id, "verify", HANDLER)
    again = eng.open_case("claim", report(), AGENT)
    assert f"最近更新 {format_when(clock.now())}。" in again.notes[0]
    assert "+00:00" not in again.notes[0]


def test_a_late_notice_says_how_late_in_days_hours_and_minutes() -> None:
    from baoflow.notifications.templates import TemplateSet

    from tests.test_templates import CONTEXTS, NOTICE_FIELDS

    templates = TemplateSet(NOTICE_FIELDS)
    context: dict[str, Any] = {**CONTEXTS["deadline_breach"], "late_seconds": 318600.0}
    assert "晚发约3天16小时30分钟。" in templates.render("deadline_breach", context).text
    english = templates.render("deadline_breach", context, locale="en").text
    assert "about 3 d 16 h 30 min later than scheduled" in english


def test_the_deadlines_listing_shows_a_midnight_due_time_as_24_00(eng: Engine, db_url: str) -> None:
    to_materials_complete(eng)
    (hand_over,) = [d for d in eng.running_deadlines() if d.rule == "hand_over"]
    local = hand_over.due_at.astimezone(SHANGHAI)
    assert (local.hour, local.minute) == (0, 0)  # the end of the third working day
    shown = f"{local - timedelta(days=1):%Y-%m-%d} 24:00"
    result = CliRunner().invoke(
        main, ["deadlines", "list", "--url", db_url], env={"COLUMNS": "120"}, catch_exceptions=False
    )
    assert shown in result.output, result.output
    assert f"{local:%Y-%m-%d} 00:00" not in result.output


def test_the_worker_says_when_the_next_timer_is_due_once_not_per_tick(
    eng: Engine, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    to_materials_complete(eng)
    nxt = eng.next_timer_due()
    assert nxt is not None
    worker = Worker(eng, tick=0.05, name="w-say", digest=None)
    with caplog.at_level(logging.INFO, logger="baoflow.worker"):
        worker.start()
        try:
            time.sleep(0.5)  # about ten ticks
        finally:
            worker.stop()
    said = [r.getMessage() for r in caplog.records if "next timer due" in r.getMessage()]
    assert said == [
        f"w-say: next timer due {format_when(nxt)} (Beijing time), in "
        f"{format_duration((nxt - clock.now()).total_seconds(), locale='en')}"
    ]
