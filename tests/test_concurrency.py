"""Two processes firing on one case at once: exactly one wins, the other gets the
conflict error, and the history has one row for it (DESIGN.md §3.1)."""

from __future__ import annotations

import multiprocessing as mp
from datetime import datetime
from typing import Any

from baoflow.engine import SHANGHAI, Actor, ConflictError, Engine, FakeClock, open_engine

from tests.conftest import AGENT, report

CTX = mp.get_context("spawn")  # a fresh interpreter each, as two workers would be


def _fire_after_barrier(
    url: str, case_id: int, version: int, who: str, barrier: Any, out: Any
) -> None:
    clock = FakeClock(datetime(2026, 5, 6, 10, 0, tzinfo=SHANGHAI))
    eng = open_engine(url, clock=clock, migrate=False)
    actor = Actor(who, who, roles=("handler",), org_unit="SH")
    try:
        eng.get_case(case_id)  # warm the connection so both start level
        barrier.wait(timeout=30)
        eng.fire(
            case_id, "withdraw", actor, {"reason": f"withdrawn by {who}"}, expected_version=version
        )
        out.put((who, "won"))
    except ConflictError as exc:
        out.put((who, f"conflict: expected {exc.expected_version}, now {exc.actual_version}"))
    except Exception as exc:  # report, so the test shows what went wrong
        out.put((who, f"unexpected {type(exc).__name__}: {exc}"))
    finally:
        eng.close()


def test_two_processes_firing_on_one_case_one_wins_one_conflicts(eng: Engine, db_url: str) -> None:
    case = eng.open_case("claim", report(), AGENT).case
    barrier = CTX.Barrier(2)
    out = CTX.Queue()
    procs = [
        CTX.Process(
            target=_fire_after_barrier, args=(db_url, case.id, case.version, who, barrier, out)
        )
        for who in ("worker-a", "worker-b")
    ]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)

    outcomes = sorted(v.split(":")[0] for v in results.values())
    assert outcomes == ["conflict", "won"], results
    loser = next(v for v in results.values() if v.startswith("conflict"))
    assert loser == f"conflict: expected {case.version}, now {case.version + 1}"
    history = eng.history(case.id)
    assert [h.event for h in history].count("withdraw") == 1
    winner = next(w for w, v in results.items() if v == "won")
    assert eng.get_case(case.id).data["withdrawal"]["reason"] == f"withdrawn by {winner}"
    assert [h.seq for h in history] == list(range(1, len(history) + 1))


def _report_after_barrier(url: str, data: dict[str, Any], barrier: Any, out: Any) -> None:
    clock = FakeClock(datetime(2026, 5, 6, 10, 0, tzinfo=SHANGHAI))
    eng = open_engine(url, clock=clock, migrate=False)
    try:
        eng.find_cases(limit=1)  # warm the connection so both start level
        barrier.wait(timeout=30)
        opened = eng.open_case("claim", data, AGENT)
        out.put((opened.case.number, opened.created))
    except Exception as exc:  # report, so the test shows what went wrong
        out.put((f"unexpected {type(exc).__name__}: {exc}", False))
    finally:
        eng.close()


ROUNDS = 5


def test_one_incident_reported_by_two_processes_at_once_opens_one_case(
    eng: Engine, db_url: str
) -> None:
    # 细则第四条(二) 报案记录查询: a report already on record is answered with its case.
    # Without the intake holding its subject (Tx.hold), both processes' checks passed
    # on PostgreSQL before either had committed, and each opened a case.
    for n in range(ROUNDS):
        data = report(incident={"time": f"2026-04-{10 + n}T09:30:00+08:00"})  # a day each
        barrier, out = CTX.Barrier(2), CTX.Queue()
        procs = [
            CTX.Process(target=_report_after_barrier, args=(db_url, data, barrier, out))
            for _ in range(2)
        ]
        for p in procs:
            p.start()
        results = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        numbers = {number for number, _ in results}
        assert len(numbers) == 1, results  # both got the same case
        assert sorted(created for _, created in results) == [False, True], results
    assert len(eng.find_cases(workflow="claim")) == ROUNDS
