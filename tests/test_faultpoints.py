"""The fault-injection points (engine/faultpoints.py), and a timer worker killed inside a
batch of effects: after the batch's effects are written, before its commit (issue #15
item 8). Nothing of that batch stays, nothing fires twice, and every timer fires once
afterwards — on SQLite once the dead worker's lease runs out, on PostgreSQL at once (its
row locks die with its connection). On SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from baoflow.engine import (
    SHANGHAI,
    ChineseOfficialCalendar,
    Engine,
    FakeClock,
    faultpoints,
    open_engine,
)

from tests.test_timers import to_materials_complete

CTX = mp.get_context("spawn")  # a fresh interpreter, as a separate worker would be
LATER = datetime(2026, 5, 20, 9, 0, tzinfo=SHANGHAI)  # every claim's timers due
LEASE = timedelta(minutes=10)
BATCH = 4


def _passes(env: str, times: int) -> subprocess.CompletedProcess[str]:
    code = (
        "from baoflow.engine import faultpoints\n"
        f"for i in range({times}):\n"
        "    faultpoints.point('timers.batch_recorded')\n"
        "    print(i + 1, flush=True)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"BAOFLOW_FAULT": env, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_armed_point_kills_the_process_the_nth_time_it_is_passed() -> None:
    done = _passes("timers.batch_recorded:3", 5)
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split() == ["1", "2"]


def test_an_unarmed_or_other_point_changes_nothing() -> None:
    assert _passes("", 3).stdout.split() == ["1", "2", "3"]
    assert _passes("delivery.sent", 3).returncode == 0


def test_a_fault_that_names_no_point_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no fault point 'timers\.batch'"):
        faultpoints.arm("timers.batch")
    done = _passes("timers.batch_recorded:soon", 1)
    assert done.returncode != 0 and "must be a number" in done.stderr


# --- a worker killed inside a batch -----------------------------------------------------
def _doomed(url: str, batch_to_die_in: int) -> None:
    """Drain at LATER as worker "doomed", killed inside its ``batch_to_die_in``-th batch."""
    eng = open_engine(
        url, clock=FakeClock(LATER), calendar=ChineseOfficialCalendar(), migrate=False
    )
    faultpoints.arm("timers.batch_recorded", batch_to_die_in)
    while eng.run_due_timers(worker="doomed", batch=BATCH, lease=LEASE).fired:
        pass


def _timers(eng: Engine) -> dict[tuple[str, str | None], int]:
    """(status, worker) -> how many timers."""
    with eng.store.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT status, claimed_by, count(*) FROM timers GROUP BY status, claimed_by")
        ).all()
    return {(status, by): n for status, by, n in rows}


def _due_at_later(eng: Engine) -> int:
    with eng.store.engine.connect() as conn:
        q = sa.text("SELECT due_at FROM timers WHERE status = 'pending'")
        return sum(1 for (due_at,) in conn.execute(q) if _utc(due_at) <= LATER)


def _utc(value: datetime | str) -> datetime:
    """A stored instant (SQLite keeps text) as an aware datetime."""
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def _timer_rows_in_history(eng: Engine) -> int:
    with eng.store.engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM history WHERE event LIKE 'deadline_%'")
            ).scalar_one()
        )


@pytest.mark.timeout(120)
def test_a_worker_killed_inside_a_batch_leaves_nothing_of_it_and_nothing_fires_twice(
    eng: Engine, clock: FakeClock, db_url: str
) -> None:
    claims = []
    for _ in range(4):  # four incidents a day apart: four claims, not one reported again
        claims.append(to_materials_complete(eng))
        clock.advance(days=1)
    due = _due_at_later(eng)
    assert due > 3 * BATCH  # enough for the doomed worker's batches and the others'
    before = _timer_rows_in_history(eng)

    doomed = CTX.Process(target=_doomed, args=(db_url, 2), daemon=True)
    doomed.start()
    doomed.join(timeout=90)
    assert doomed.exitcode == -signal.SIGKILL  # killed at the point, not finished
    after_kill = _timers(eng)
    assert after_kill.get(("fired", "doomed")) == BATCH  # its first batch committed
    assert _timer_rows_in_history(eng) == before + BATCH  # and none of its second
    held = after_kill.get(("pending", "doomed"), 0)

    clock.set(LATER)
    others = eng.run_due_timers(worker="survivor", batch=BATCH, lease=LEASE)
    if eng.backend == "sqlite":  # its second batch is leased until the lease runs out
        assert held == BATCH
        assert others.fired == due - 2 * BATCH
        clock.set(LATER + LEASE + timedelta(seconds=1))
        assert eng.run_due_timers(worker="survivor", batch=BATCH, lease=LEASE).fired == BATCH
    else:  # PostgreSQL: taken under row locks, which died with the connection
        assert held == 0
        assert others.fired == due - BATCH

    assert _timers(eng) == {("fired", "doomed"): BATCH, ("fired", "survivor"): due - BATCH}
    assert _timer_rows_in_history(eng) == before + due  # each effect once
    assert eng.run_due_timers(worker="survivor").fired == 0
    for claim in claims:
        versions = [h.seq for h in eng.history(claim.id)]
        assert versions == list(range(1, len(versions) + 1))
        assert eng.get_case(claim.id).version == versions[-1]
