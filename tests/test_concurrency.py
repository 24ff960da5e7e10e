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
