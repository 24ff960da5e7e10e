"""The desk never stops for a calendar (issue #10): a year without a published holiday
arrangement is counted provisionally from its statutory holidays, every deadline it
touches says so, and the desk's own import of the State Council's notice recomputes
them — on every worker of the database."""

from __future__ import annotations

import logging
import multiprocessing as mp
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from baoflow.engine import (
    SHANGHAI,
    Actor,
    CalendarDataInvalid,
    CalendarDisagrees,
    ChineseOfficialCalendar,
    Engine,
    FakeClock,
    Policy,
    open_engine,
)
from baoflow.engine.scheduler import Worker
from click.testing import CliRunner

from baoflow.cli import main
from tests.conftest import AGENT, HANDLER, ID_ZHANG, POLICIES, report

EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "arrangement-2027.toml"
OPS = Actor("ops1", "赵敏", roles=("administrator",))
CTX = mp.get_context("spawn")


#: An accident policy of 张伟's in force through 2027 (P-ACC-001 ends with 2026).
P_2027 = Policy(
    number="P-ACC-027",
    product_name="综合意外险",
    product_line="accident",
    insured_name="张伟",
    insured_id_number=ID_ZHANG,
    start_date=date(2026, 6, 1),
    end_date=date(2027, 12, 31),
    coverages=("accident",),
    sum_insured=Decimal("200000"),
)


def to_materials_complete(eng: Engine, incident_days_ago: int = 0) -> Any:
    """A claim with complete materials now, on a policy in force (P-ACC-001 in 2026,
    P-ACC-027 after); another ``incident_days_ago`` is another incident, no duplicate."""
    now = eng.clock.now()
    policy = "P-ACC-001" if now.astimezone(SHANGHAI).year == 2026 else P_2027.number
    data = report(
        policy={"number": policy, "insured_name": "张伟"},
        incident={
            "time": (now - timedelta(days=incident_days_ago)).isoformat(),
            "cause": "accident",
        },
    )
    case = eng.open_case("claim", data, AGENT).case
    case = eng.fire(case.id, "verify", HANDLER)
    case = eng.fire(
        case.id,
        "apply",
        HANDLER,
        {"applicant_name": "张伟", "applicant_id_number": ID_ZHANG, "relationship": "self"},
    )
    case = eng.fire(
        case.id, "receive_materials", HANDLER, {"items": case.data["materials"]["required"]}
    )
    return eng.fire(case.id, "complete_materials", HANDLER)


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def due(eng: Engine, case_id: int, rule: str) -> Any:
    (status,) = [d for d in eng.deadlines(case_id) if d.rule == rule and d.status == "running"]
    return status


def pending_timers(eng: Engine, case_id: int, rule: str) -> dict[tuple[str, int], datetime]:
    with eng.store.read() as tx:
        rows = tx.pending_timers(case_id)
    return {(r.kind, r.level): r.due_at for r in rows if r.rule == rule}


@pytest.fixture
def desk(db_url: str) -> Any:
    """An engine on the default calendar (no test fallback), late in 2026."""
    clock = FakeClock(bj(2026, 12, 28, 9, 0))
    eng = open_engine(db_url, clock=clock)
    eng.policies.add([*POLICIES, P_2027])  # type: ignore[attr-defined]
    yield eng, clock
    eng.close()


# --- provisional years ----------------------------------------------------------------
def test_a_claim_opened_on_2026_12_28_is_handed_over_on_provisional_deadlines(desk: Any) -> None:
    eng, clock = desk
    case = to_materials_complete(eng)  # Mon 2026-12-28: no CalendarYearUnknown
    hand_over = due(eng, case.id, "hand_over")
    # Tue 12-29, Wed 12-30, Thu 12-31 → end of 12-31: the due time itself is in 2026...
    assert hand_over.due_at == bj(2027, 1, 1)
    # ...but the escalation levels after it count 2027's days: Fri 01-01 is New Year's Day
    # by law, then the weekend → level 2 at the end of Mon 01-04, level 3 of Tue 01-05.
    timers = pending_timers(eng, case.id, "hand_over")
    assert timers[("escalation", 2)] == bj(2027, 1, 5)
    assert timers[("escalation", 3)] == bj(2027, 1, 6)
    assert hand_over.provisional_years == (2027,)
    note = next(h for h in eng.history(case.id) if h.event == "complete_materials").notes
    assert any("暂定：2027年放假安排尚未公布" in n for n in note)

    clock.advance(hours=1)
    case = eng.fire(case.id, "hand_over", HANDLER, {"insurer": "太平洋财险"})
    assert case.state == "handed_over"
    insurer = due(eng, case.id, "insurer_decision")
    assert insurer.due_at == bj(2027, 1, 28)  # 30 natural days: Wed 01-27, a working day
    assert insurer.provisional

    calendar = eng.calendar
    assert not calendar.is_working_day(date(2027, 1, 1))
    for day in range(5, 9):  # 除夕 and days 1–3 of the first lunar month
        assert not calendar.is_working_day(date(2027, 2, day))
    assert calendar.is_working_day(date(2027, 2, 9))  # no bridge day is guessed


def test_the_statutory_days_of_a_provisional_year_are_listed_with_their_source(
    desk: Any,
) -> None:
    eng, _ = desk
    year = eng.calendar_year(2027)
    assert year.source == "provisional" and year.imports == ()
    named = {d.day: d.name for d in year.days}
    assert named[date(2027, 1, 1)] == "元旦"
    assert named[date(2027, 2, 5)] == "农历除夕"
    assert [d for d in year.days if d.working] == []  # no make-up days are guessed
    assert {d.source for d in year.days} == {"provisional"}
    assert len([d for d in year.days if d.name]) == 13


# --- importing the year's arrangement --------------------------------------------------
def test_importing_a_make_up_saturday_moves_a_running_deadline_with_a_history_row(
    desk: Any,
) -> None:
    eng, clock = desk
    clock.set(bj(2027, 1, 28, 10, 0))  # Thu: 2027 still unpublished
    case = to_materials_complete(eng)
    before = due(eng, case.id, "hand_over")
    assert before.due_at == bj(2027, 2, 3) and before.provisional  # Fri, Mon, Tue

    clock.advance(hours=1)
    done = eng.import_calendar(EXAMPLE, OPS)
    assert (done.year, done.holidays, done.workdays) == (2027, 29, 6)
    assert done.recomputed >= 1

    after = due(eng, case.id, "hand_over")
    assert after.due_at == bj(2027, 2, 2)  # Fri 01-29, Sat 01-30 (make-up), Mon 02-01
    assert not after.provisional and "desk arrangement 2027" in (after.calendar or "")
    assert pending_timers(eng, case.id, "hand_over")[("breach", 0)] == bj(2027, 2, 2)
    (row,) = [h for h in eng.history(case.id) if h.event == "deadline_recomputed"]
    assert row.data["old_due_at"].startswith("2027-02-03T00:00")
    assert row.data["new_due_at"].startswith("2027-02-02T00:00")
    assert row.actor.id == "calendar" and "2027-02-02 24:00 → 2027-02-01 24:00" in row.notes[0]

    clock.set(bj(2027, 2, 2, 0, 1))  # the breach fires at the new due time
    eng.run_due_timers()
    assert due(eng, case.id, "hand_over").breached


def test_a_deadline_the_import_confirms_is_no_longer_provisional(desk: Any) -> None:
    eng, _ = desk
    case = to_materials_complete(eng)
    eng.import_calendar(EXAMPLE, OPS)
    status = due(eng, case.id, "hand_over")
    assert status.due_at == bj(2027, 1, 1) and not status.provisional
    (row,) = [h for h in eng.history(case.id) if h.event == "deadline_recomputed"]
    assert "不变" in row.notes[0] and row.data["was_provisional"] == "2027"


def test_an_import_is_recorded_with_who_when_and_the_line_of_each_day(desk: Any) -> None:
    eng, clock = desk
    eng.import_calendar(EXAMPLE, OPS)
    clock.advance(days=1)
    eng.import_calendar(EXAMPLE.read_text(encoding="utf-8"), OPS, file_name="again.toml")
    year = eng.calendar_year(2027)
    assert year.source == "desk"
    newest, first = year.imports
    assert newest.current and not first.current  # the first is kept, replaced
    assert newest.file_name == "again.toml" and first.file_name == str(EXAMPLE)
    assert "赵敏" in newest.imported_by and newest.imported_at == bj(2026, 12, 29, 9, 0)
    makeup = next(d for d in year.days if d.day == date(2027, 1, 30))
    assert makeup.working and makeup.name == "春节调休上班" and makeup.line == 20
    assert not eng.calendar.is_working_day(date(2027, 2, 12))  # a bridge day of the notice


AGREEING_2026 = """
year = 2026
source = "国务院办公厅关于2026年部分节假日安排的通知"
[[holidays]]
name = "元旦"
from = 2026-01-01
to = 2026-01-03
workdays = [2026-01-04]
[[holidays]]
name = "春节"
from = 2026-02-15
to = 2026-02-23
workdays = [2026-02-14, 2026-02-28]
[[holidays]]
name = "清明节"
from = 2026-04-04
to = 2026-04-06
[[holidays]]
name = "劳动节"
from = 2026-05-01
to = 2026-05-05
workdays = [2026-05-09]
[[holidays]]
name = "端午节"
from = 2026-06-19
to = 2026-06-21
[[holidays]]
name = "中秋节"
from = 2026-09-25
to = 2026-09-27
[[holidays]]
name = "国庆节"
from = 2026-10-01
to = 2026-10-07
workdays = [2026-09-20, 2026-10-10]
"""


def test_a_file_that_agrees_with_the_published_package_imports_without_override(
    desk: Any,
) -> None:
    eng, _ = desk
    assert eng.import_calendar(AGREEING_2026, OPS).overridden == ()
    assert eng.calendar_year(2026).source == "desk"


def test_a_file_that_disagrees_with_the_published_package_is_refused_unless_overridden(
    desk: Any,
) -> None:
    eng, _ = desk
    text = AGREEING_2026.replace("workdays = [2026-05-09]", "")  # the make-up Sat forgotten
    with pytest.raises(CalendarDisagrees) as refused:
        eng.import_calendar(text, OPS)
    assert refused.value.differences == (
        "2026-05-09 (星期六): the file makes it a rest day, chinesecalendar 1.11.0 a working day",
    )
    assert "--override" in str(refused.value)
    assert eng.calendar_year(2026).source == "package"  # nothing imported

    done = eng.import_calendar(text, OPS, override=True)
    assert done.overridden == refused.value.differences
    assert eng.calendar_year(2026).source == "desk"
    assert eng.calendar_year(2026).imports[0].override
    assert not eng.calendar.is_working_day(date(2026, 5, 9))  # the desk's data wins


# --- bad input: one clear error naming the line, nothing imported ----------------------
BAD = {
    "a date outside its year": (
        "workdays = [2027-01-30, 2027-02-20]",
        "workdays = [2026-12-27, 2027-02-20]",
        "line 20: 2026-12-27 (星期日) is outside 2027",
    ),
    "overlapping ranges": (
        "from = 2027-04-03\nto = 2027-04-05",
        "from = 2027-04-03\nto = 2027-05-01",
        "line 29: 2027-05-01 (星期六) is already a holiday (清明节) on line 24: ranges must not",
    ),
    "a make-up day that is already a working day": (
        "workdays = [2027-04-25, 2027-05-08]",
        "workdays = [2027-04-26, 2027-05-08]",
        "line 31: 2027-04-26 (星期一) is a weekday, already a working day",
    ),
    "a statutory holiday marked as a working day": (
        'name = "中秋节"\nfrom = 2027-09-15',
        'name = "中秋节"\nfrom = 2027-09-16\nworkdays = [2027-09-12]\n'
        '[[holidays]]\nname = "x"\nfrom = 2027-09-14',
        "2027-09-15 (星期三) is 中秋节, a statutory holiday",
    ),
    "a typo in a key": (
        "workdays = [2027-09-26, 2027-10-09]",
        "workday = [2027-09-26, 2027-10-09]",
        "line 45: unknown key 'workday': did you mean 'workdays'?",
    ),
    "an unreadable file": (
        'name = "端午节"',
        'name = "端午节',
        "line 34: this is not valid TOML",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_a_bad_arrangement_file_is_one_clear_error_naming_the_line(desk: Any, case: str) -> None:
    eng, _ = desk
    old, new, message = BAD[case]
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(CalendarDataInvalid) as refused:
        eng.import_calendar(text.replace(old, new, 1), OPS, file_name="bad.toml")
    assert message in str(refused.value), str(refused.value)
    assert str(refused.value).startswith("bad.toml cannot be imported")
    assert eng.calendar_year(2027).source == "provisional"  # nothing imported
    assert eng.calendar_year(2027).imports == ()


def test_a_file_that_is_not_utf8_or_missing_is_refused_by_name(desk: Any, tmp_path: Path) -> None:
    eng, _ = desk
    latin = tmp_path / "latin1.toml"
    latin.write_bytes('source = "été"'.encode("latin-1"))
    with pytest.raises(CalendarDataInvalid, match="is not UTF-8 text"):
        eng.import_calendar(latin, OPS)
    with pytest.raises(CalendarDataInvalid, match="cannot be read"):
        eng.import_calendar(tmp_path / "missing.toml", OPS)


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    from baoflow.engine.arrangements import parse

    with pytest.raises(CalendarDataInvalid) as refused:
        parse('year = 2027\nsorce = "x"\n[[holidays]]\nname = "元旦"\nfrom = 2027-01-01\n', "f")
    text = str(refused.value)
    assert "unknown key 'sorce': did you mean 'source'?" in text
    assert "source must name the notice" in text
    assert "2027-02-05 (星期五) is 农历除夕" in text  # and every statutory day missing


# --- every worker sees the same days ---------------------------------------------------
def _second_worker(url: str, ready: Any, go: Any, out: Any) -> None:
    clock = FakeClock(bj(2027, 1, 28, 10, 0))
    eng = open_engine(url, clock=clock, migrate=False)
    seen: dict[str, Any] = {}
    try:
        first = to_materials_complete(eng)  # computed before the import: provisional
        seen["before"] = due(eng, first.id, "hand_over").due_at
        ready.set()
        go.wait(timeout=60)
        second = to_materials_complete(eng, incident_days_ago=1)  # another incident
        seen["after"] = due(eng, second.id, "hand_over").due_at
        seen["first"] = due(eng, first.id, "hand_over").due_at
    except Exception as exc:
        seen["error"] = f"{type(exc).__name__}: {exc}"
        ready.set()
    finally:
        eng.close()
        out.put(seen)


@pytest.mark.postgres
def test_an_import_is_seen_by_a_second_worker_process_on_postgresql(pg_only_url: str) -> None:
    eng = open_engine(pg_only_url, clock=FakeClock(bj(2027, 1, 28, 9, 0)))
    eng.policies.add([*POLICIES, P_2027])  # type: ignore[attr-defined]
    ready, go, out = CTX.Event(), CTX.Event(), CTX.Queue()
    worker = CTX.Process(target=_second_worker, args=(pg_only_url, ready, go, out))
    worker.start()
    try:
        assert ready.wait(timeout=60)
        eng.import_calendar(EXAMPLE, OPS)  # in this process, while the other runs
        go.set()
        results = out.get(timeout=60)
    finally:
        worker.join(timeout=30)
        eng.close()
    assert "error" not in results, results
    assert results["before"] == bj(2027, 2, 3)  # provisional: Fri, Mon, Tue
    assert results["after"] == bj(2027, 2, 2)  # the other process counts the make-up Sat
    assert results["first"] == bj(2027, 2, 2)  # and its earlier deadline was recomputed


@pytest.mark.postgres
@pytest.mark.parametrize(
    "hot_read",
    ["calendar_generation", "load_case with its deadlines", "hold_calendar, then a read"],
)
def test_an_import_and_a_deadline_being_armed_cannot_interleave(
    pg_only_url: str, hot_read: str
) -> None:
    """The import takes the arrangements' lock first; a transaction arming a deadline
    reads the generation under a share lock, so it waits for the import (and sees it):
    in the transaction fire() and open_case() take — however it holds the calendar —
    and in a CoreTx (the timer worker's)."""
    import psycopg

    eng = open_engine(pg_only_url)
    try:
        with eng.store.write() as tx:
            case_id, _ = tx.insert_case(
                prefix="LP",
                day="20261201",
                workflow="claim",
                workflow_version=1,
                state="reported",
                data={},
                now=datetime(2026, 12, 1, 9, tzinfo=SHANGHAI),
                keys={},
            )
        with eng.store.write() as importing:
            importing.bump_calendar_generation()  # an import under way, not committed
            with eng.store.engine.connect() as other, other.begin():
                other.exec_driver_sql("SET LOCAL lock_timeout = '300ms'")
                with pytest.raises(psycopg.errors.LockNotAvailable, match="lock timeout"):
                    from baoflow.engine.store import CoreTx

                    CoreTx(other).calendar_generation(lock=True)
            with (
                pytest.raises(psycopg.errors.LockNotAvailable, match="lock timeout"),
                eng.store.fire_transaction() as firing,
            ):
                firing.hold("irrelevant")  # the hot transaction has begun; now wait
                firing._cur.execute("SET LOCAL lock_timeout = '300ms'")  # type: ignore[attr-defined]
                if hot_read == "calendar_generation":
                    firing.calendar_generation(lock=True)
                elif hot_read == "load_case with its deadlines":
                    firing.load_case(case_id, deadlines=True)
                else:
                    firing.hold_calendar()  # sent with the next read, which waits
                    firing.find_cases(number="LP-20261201-000001")
    finally:
        eng.close()


# --- said ahead, and on the command line -----------------------------------------------
def test_calendar_status_says_which_year_is_provisional_and_what_waits_for_it(
    desk: Any,
) -> None:
    eng, _ = desk
    to_materials_complete(eng)
    this, following = eng.calendar_status()
    assert (this.year, this.source, this.provisional_deadlines) == (2026, "package", 0)
    assert (following.year, following.source) == (2027, "provisional")
    assert following.provisional_deadlines == 1  # the hand-over's escalation levels
    eng.import_calendar(EXAMPLE, OPS)
    assert eng.calendar_status()[1].provisional_deadlines == 0


def test_the_worker_warns_from_november_of_a_provisional_next_year(
    desk: Any, caplog: pytest.LogCaptureFixture
) -> None:
    eng, clock = desk
    to_materials_complete(eng)
    worker = Worker(eng, digest=None)
    with caplog.at_level(logging.WARNING, logger="baoflow.worker"):
        worker.log_calendar()  # December 2026: 2027 is provisional
        eng.import_calendar(EXAMPLE, OPS)
        clock.set(bj(2027, 10, 31, 9, 0))  # October: nothing to say about 2028 yet
        worker.log_calendar()
        clock.set(bj(2027, 11, 1, 8, 0))
        worker.log_calendar()
    said = [r.getMessage() for r in caplog.records]
    assert [s.split(":")[0] for s in said] == [
        "the 2027 holiday arrangement is not published or imported",
        "the 2028 holiday arrangement is not published or imported",
    ]
    assert said[0].split(": ")[1].startswith("1 running deadline(s)")


def test_the_command_line_imports_shows_and_reports_the_calendar(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    open_engine(url).close()
    runner = CliRunner()
    status = runner.invoke(main, ["calendar", "status", "--url", url])
    assert status.exit_code == 0, status.output
    imported = runner.invoke(
        main, ["calendar", "import", str(EXAMPLE), "--by", "赵敏", "--url", url]
    )
    assert imported.exit_code == 0, imported.output
    assert "imported 2027: 29 holiday(s), 6 make-up working day(s)" in imported.output
    shown = runner.invoke(main, ["calendar", "show", "2027", "--url", url])
    assert shown.exit_code == 0, shown.output
    assert "2027: the desk's imported arrangement" in shown.output
    assert "2027-01-30 六  work  春节调休上班  (desk, line 20)" in shown.output
    assert "by 赵敏" in shown.output
    bad = runner.invoke(main, ["calendar", "import", str(tmp_path / "nope.toml"), "--url", url])
    assert bad.exit_code == 2 and "CalendarDataInvalid" in bad.output
    assert "Traceback" not in bad.output
    published = runner.invoke(main, ["calendar", "show", "2026", "--url", url])
    assert "2026-10-10 六  work  国庆节调休上班  (package)" in published.output


def test_a_strict_calendar_still_refuses_and_cannot_import(db_url: str) -> None:
    from baoflow.engine import CalendarYearUnknown, StorageError

    clock = FakeClock(bj(2026, 12, 28, 9, 0))
    strict = open_engine(db_url, clock=clock, calendar=ChineseOfficialCalendar("error"))
    strict.policies.add([*POLICIES, P_2027])  # type: ignore[attr-defined]
    try:
        with pytest.raises(CalendarYearUnknown):
            to_materials_complete(strict)
        strict.import_calendar(EXAMPLE, OPS)  # a strict calendar takes imports too
        again = to_materials_complete(strict, incident_days_ago=1)
        assert again.state == "materials_complete"
    finally:
        strict.close()

    class Regional:
        def is_working_day(self, day: date) -> bool:
            return day.weekday() < 5

    custom = open_engine(db_url, clock=clock, calendar=Regional(), migrate=False)
    try:
        with pytest.raises(StorageError, match="not the official calendar"):
            custom.import_calendar(EXAMPLE, OPS)
        assert custom.calendar_status()[1].source == "custom"
    finally:
        custom.close()
