"""The worker fires due timers on its own, catches up after downtime, and stops
gracefully on SIGTERM; breaches and the SLA report read what happened (issue #4)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from baoflow.engine import (
    SHANGHAI,
    ChineseOfficialCalendar,
    Engine,
    FakeClock,
    StorageUnavailable,
    TimerRun,
    open_engine,
)
from baoflow.engine.scheduler import Worker
from baoflow.engine.store import tables as t
from click.testing import CliRunner

from baoflow.cli import main
from tests.conftest import AGENT, HANDLER, POLICIES, report
from tests.test_timers import to_materials_complete


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def deadline_events(eng: Engine, case_id: int) -> list[str]:
    return [h.event for h in eng.history(case_id) if h.event.startswith("deadline_")]


def wait_for(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_the_worker_fires_what_is_due_and_releases_its_leases_when_stopped(
    eng: Engine, clock: FakeClock
) -> None:
    case = to_materials_complete(eng)
    clock.set(bj(2026, 5, 12, 1, 0))  # past the breach and levels 1 and 2
    worker = Worker(eng, tick=0.05, name="w-test", digest=None)
    worker.start()
    try:
        assert wait_for(lambda: worker.fired >= 5)
    finally:
        worker.stop()
    assert deadline_events(eng, case.id) == [
        "deadline_warning",
        "deadline_warning",
        "deadline_breach",
        "deadline_escalation",
        "deadline_escalation",
    ]
    with eng.store.read() as tx:
        leased = tx.conn.execute(
            sa.select(sa.func.count()).where(
                t.timers.c.claimed_by.is_not(None), t.timers.c.status == "pending"
            )
        ).scalar_one()
    assert leased == 0


def test_breaches_and_the_sla_report_explain_what_happened(eng: Engine, clock: FakeClock) -> None:
    late = to_materials_complete(eng)
    clock.set(bj(2026, 5, 10, 8, 0))
    eng.run_due_timers()
    (breach,) = eng.breaches()
    assert (breach.case_number, breach.rule, breach.level) == (late.number, "hand_over", 1)
    assert eng.breaches(rule="major_report") == [] and eng.breaches(min_level=2) == []

    report = eng.sla_report()
    (hand_over,) = [r for r in report.rules if r.rule == "hand_over"]
    assert (hand_over.started, hand_over.running, hand_over.breached_open) == (1, 1, 1)
    assert hand_over.on_time_rate is None  # nothing has ended: no share of nothing

    eng.fire(late.id, "hand_over", HANDLER, {"insurer": "太平洋财险"})
    assert eng.breaches() == []
    (hand_over,) = [r for r in eng.sla_report().rules if r.rule == "hand_over"]
    assert (hand_over.met_late, hand_over.breached_open) == (1, 0)
    assert (hand_over.running, hand_over.ended, hand_over.on_time_rate) == (0, 1, 0.0)
    times = eng.sla_report().median_time_in_state
    assert times[("claim", "materials_complete")] == bj(2026, 5, 10, 8, 0) - bj(2026, 5, 6, 9, 0)
    assert eng.sla_report().median_time_to_close == {}  # nothing closed yet

    result = CliRunner().invoke(
        main, ["sla", "report", "--url", eng.store.url], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "hand_over" in result.output and "0%" in result.output


def test_baoflow_worker_catches_up_after_downtime_and_stops_on_sigterm(tmp_path: Path) -> None:
    """Timers that came due while no worker ran fire at start, marked late; SIGTERM ends
    the worker cleanly once its batch is done."""
    url = f"sqlite:///{tmp_path / 'worker.db'}"
    clock = FakeClock(bj(2026, 5, 6, 9, 0))  # months before the real clock
    eng = open_engine(url, clock=clock, calendar=ChineseOfficialCalendar())
    eng.policies.add(POLICIES)  # type: ignore[attr-defined]
    case = to_materials_complete(eng)
    eng.close()

    cli = [sys.executable, "-m", "baoflow.cli", "worker", "--url", url, "--tick", "0.2"]
    proc = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        reader = open_engine(url, migrate=False)
        assert wait_for(lambda: len(deadline_events(reader, case.id)) == 6, timeout=60)
        late = [
            h.data["late_seconds"]
            for h in reader.history(case.id)
            if h.event.startswith("deadline_")
        ]
        reader.close()
        assert all(s > timedelta(days=30).total_seconds() for s in late)
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "SIGTERM received" in err and "stopped after firing 6 timer(s)" in err
    # Not APScheduler's line per tick ("Running job ...", "executed successfully"): what
    # the worker fired, and when the next timer is due.
    assert "apscheduler" not in err and "Running job" not in err, err
    assert "next timer due" in err or "no timer pending" in err, err


def test_breaches_and_the_sla_report_by_org_unit(eng: Engine, clock: FakeClock) -> None:
    """The org unit of whoever opened the case (the branch) filters both."""
    from baoflow.engine import Actor

    shanghai = to_materials_complete(eng)  # opened by an agent of SH
    clock.advance(days=1)
    beijing_agent = Actor("a09", "赵敏", roles=("service_agent",), org_unit="BJ")
    bj_handler = Actor("h09", "钱伟", roles=("handler",), org_unit="BJ")
    data = report(
        policy={"number": "P-ACC-001", "insured_name": "张伟"},
        incident={"time": eng.clock.now().isoformat(), "cause": "accident"},
        reporter={"phone": "13900000003"},
    )
    beijing = eng.open_case("claim", data, beijing_agent).case
    beijing = eng.fire(beijing.id, "verify", bj_handler)
    beijing = eng.fire(
        beijing.id,
        "apply",
        bj_handler,
        {
            "applicant_name": "张伟",
            "applicant_id_number": "110101199003074514",
            "relationship": "self",
        },
    )
    beijing = eng.fire(
        beijing.id,
        "receive_materials",
        bj_handler,
        {"items": beijing.data["materials"]["required"]},
    )
    eng.fire(beijing.id, "complete_materials", bj_handler)
    clock.set(bj(2026, 5, 20))
    eng.run_due_timers()
    assert [b.case_number for b in eng.breaches(org_unit="SH")] == [shanghai.number]
    assert [(b.case_number, b.org_unit) for b in eng.breaches(org_unit="BJ")] == [
        (beijing.number, "BJ")
    ]
    by_unit = {(r.org_unit, r.rule): r for r in eng.sla_report().rules}
    assert by_unit[("SH", "hand_over")].breached_open == 1
    assert by_unit[("BJ", "hand_over")].breached_open == 1
    assert {r.org_unit for r in eng.sla_report(org_unit="BJ").rules} == {"BJ"}
    # The time in each state follows the filter too: only Shanghai's case has left
    # materials_complete, so Beijing's report has no stay there.
    eng.fire(shanghai.id, "hand_over", HANDLER, {"insurer": "太平洋财险"})
    stay = ("claim", "materials_complete")
    assert stay in eng.sla_report(org_unit="SH").median_time_in_state
    assert stay not in eng.sla_report(org_unit="BJ").median_time_in_state


def test_the_worker_wakes_for_a_timer_due_before_its_next_tick(eng: Engine, db_url: str) -> None:
    """With a 30 s tick, timers due 1.5 s and 1.7 s after the start fire within a
    fraction of a second of their due times: the wake-up is set at the next due time,
    not left to the tick."""
    case = to_materials_complete(eng)
    soon = datetime.now(SHANGHAI) + timedelta(seconds=1.5)
    with eng.store.write() as tx:
        tx.conn.execute(  # the rest of the case's timers: not due during this test
            t.timers.update()
            .where(t.timers.c.status == "pending")
            .values(due_at=soon + timedelta(days=1))
        )
        ids = [
            row.id
            for row in tx.conn.execute(
                sa.select(t.timers.c.id)
                .where(t.timers.c.case_id == case.id, t.timers.c.kind == "warning")
                .order_by(t.timers.c.level)
            )
        ]
        for i, timer_id in enumerate(ids):
            tx.conn.execute(
                t.timers.update()
                .where(t.timers.c.id == timer_id)
                .values(due_at=soon + timedelta(seconds=0.2 * i))
            )
    real = open_engine(db_url, calendar=ChineseOfficialCalendar(), migrate=False)
    worker = Worker(real, tick=30, name="w-wake", digest=None)
    worker.start()
    try:
        assert wait_for(lambda: worker.fired >= 2, timeout=10)
        assert worker.fired == 2
    finally:
        worker.stop()
        real.close()
    with eng.store.read() as tx:
        rows = tx.conn.execute(
            sa.select(t.timers.c.due_at, t.timers.c.fired_at).where(t.timers.c.id.in_(ids))
        ).all()
    lateness = [(r.fired_at - r.due_at).total_seconds() for r in rows]
    assert all(0 <= late < 1.0 for late in lateness), lateness


def test_the_sla_report_per_month_week_or_day_of_the_start(eng: Engine, clock: FakeClock) -> None:
    """May's hand-over was late, June's on time: per month they are two rows, each with
    its own on-time rate; weeks are ISO weeks; the label is the Beijing date."""
    may = to_materials_complete(eng)  # Wed 2026-05-06 09:00, ISO week 19
    clock.set(bj(2026, 5, 12, 9, 0))  # past the hand-over deadline
    eng.fire(may.id, "hand_over", HANDLER, {"insurer": "太平洋财险"})
    clock.set(bj(2026, 6, 2, 7, 30))  # Tue 2026-06-02, ISO week 23 (06-01 23:30 UTC)
    june = to_materials_complete(eng, reporter={"phone": "13900000004"})
    clock.advance(hours=2)
    eng.fire(june.id, "hand_over", HANDLER, {"insurer": "太平洋财险"})

    def hand_over(per: str | None) -> list[tuple[str | None, int, int, float]]:
        rows = [r for r in eng.sla_report(per=per).rules if r.rule == "hand_over"]
        return [(r.period, r.met_on_time, r.met_late, r.on_time_rate) for r in rows]

    assert hand_over("month") == [("2026-05", 0, 1, 0.0), ("2026-06", 1, 0, 1.0)]
    assert hand_over("week") == [("2026-W19", 0, 1, 0.0), ("2026-W23", 1, 0, 1.0)]
    assert hand_over("day") == [("2026-05-06", 0, 1, 0.0), ("2026-06-02", 1, 0, 1.0)]
    assert hand_over(None) == [(None, 1, 1, 0.5)]
    with pytest.raises(ValueError, match="per must be 'day', 'week' or 'month'"):
        eng.sla_report(per="quarter")

    result = CliRunner().invoke(
        main, ["sla", "report", "--url", eng.store.url, "--per", "month"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "2026-05" in result.output and "2026-06" in result.output
    result = CliRunner().invoke(main, ["sla", "report", "--url", eng.store.url, "--per", "year"])
    assert result.exit_code == 2 and "'year' is not one of" in result.output


def test_the_sla_report_gives_the_median_time_from_opening_to_closing(
    eng: Engine, clock: FakeClock
) -> None:
    """Opening to the first final state (closed, withdrawn, ...), per workflow, of the
    cases that got there; an open case does not count."""

    def opened(phone: str, day: int) -> Any:
        data = report(
            reporter={"phone": phone}, incident={"time": f"2026-05-0{day}T10:00:00+08:00"}
        )
        return eng.open_case("claim", data, AGENT).case  # opened 05-06 09:00

    quick, slow = opened("13900000009", 5), opened("13900000008", 4)
    opened("13900000007", 3)  # stays open
    clock.set(bj(2026, 5, 7, 9, 0))
    eng.fire(quick.id, "withdraw", HANDLER, {"reason": "撤案"})  # 1 day
    clock.set(bj(2026, 5, 9, 9, 0))
    eng.fire(slow.id, "withdraw", HANDLER, {"reason": "撤案"})  # 3 days
    assert eng.sla_report().median_time_to_close == {"claim": timedelta(days=2)}
    assert eng.sla_report(org_unit="BJ").median_time_to_close == {}


class _Backlog:
    """An engine's face to the worker: its database down, then back with a backlog whose
    run meets a second outage (tests/test_pg_restart.py met it with a real server)."""

    def __init__(self) -> None:
        self.clock = FakeClock(bj(2026, 5, 6, 9, 0))
        self.down = True

    def _answer(self) -> None:
        if self.down:
            raise StorageUnavailable("postgresql://db", "db:5432", "lost", "terminating connection")

    def next_timer_due(self) -> datetime | None:
        self._answer()
        return None

    def run_due_timers(self, **_: Any) -> TimerRun:
        self._answer()
        self.down = True  # down again while the backlog is fired
        self._answer()
        raise AssertionError("unreachable")


def test_the_worker_says_the_database_is_back_before_the_backlog_so_a_second_outage_is_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backlog = _Backlog()
    worker = Worker(backlog, name="w", digest=None)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="baoflow.worker"):
        worker.drain()  # down
        backlog.down = False
        worker.drain()  # back, and down again during the backlog's run
        worker.drain()  # still down: nothing more to say
    said = [(r.levelname, r.getMessage().split(":")[1].strip()) for r in caplog.records]
    assert said == [
        ("WARNING", "checking again on every tick"),
        ("INFO", "the database is back; timer checks go on"),
        ("WARNING", "checking again on every tick"),
    ]
