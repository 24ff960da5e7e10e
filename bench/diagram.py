"""Benchmark of the live state diagram with 1,000,000 stored cases (issue #12 item 1:
under 200 ms for the counts and a live SVG, on SQLite and on PostgreSQL).

Run from the project root::

    .venv/bin/python -m bench.diagram                      # 1,000,000 cases, both backends
    .venv/bin/python -m bench.diagram --cases 100000 --backends sqlite

PostgreSQL comes from ``BAOFLOW_BENCH_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``), in a private schema dropped at the end;
SQLite is a file in a temporary directory.

The cases are ``bench/load.py``'s desk: real cases of the four workflows in every
state, driven through the engine at several ages (the older ones warned, breached and
escalated by the engine's own timer worker), each copied set-based with its history,
deadlines, timers and search keys — claims 70% of the cases, 70% of them closed, the
rest over the open states; four org units. (Runs before that loader, whose figures are
in docs/benchmarks.md, cloned 1,000,000 claims from one in ``materials_complete``, with
deadline rows only, 10% of them warned.)

Measured, each the median of ``--reps`` calls after one warm-up, alternating:

``state_counts``    ``Engine.state_counts("claim")`` — the facade: both aggregates in
                    one read transaction, the StateCount list built.
``floor``           the same two aggregates' SQL text, run on the raw driver connection
                    (sqlite3 / psycopg) with no engine around it: the least the counts
                    can cost on this data.
``unit``            ``Engine.state_counts("claim", org_unit="SH")``.
``live svg``        ``baoflow.diagrams.render(engine, "claim", "svg", live=True)`` — the
                    counts plus the SVG drawn on the cached layout (the layout itself,
                    made once per process, is reported apart as ``first layout``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from baoflow.diagrams import Diagrams, render

from bench.load import PG_DEFAULT, load, open_desk, pg_schema, report_loaded

COUNT_SQL = (
    "SELECT workflow, state, count(*) FROM cases WHERE workflow = 'claim' GROUP BY workflow, state"
)
#: The second aggregate as a join (what the engine did first; SQLite planned it as a
#: walk over every claim): kept for comparing plans, not run.
JOIN_SQL = [
    "SELECT c.state, p.level, sum(p.warned), sum(p.breached) FROM (SELECT case_id, "
    "max(CASE WHEN breached_at IS NOT NULL THEN 1 ELSE 0 END) AS breached, "
    "max(CASE WHEN breached_at IS NOT NULL THEN 0 ELSE 1 END) AS warned, "
    "max(CASE WHEN breached_at IS NOT NULL THEN level ELSE -1 END) AS level "
    "FROM case_deadlines WHERE status IN ('running', 'paused') AND (warned > 0 OR "
    "breached_at IS NOT NULL) GROUP BY case_id) AS p JOIN cases c ON c.id = p.case_id "
    "WHERE c.workflow = 'claim' GROUP BY c.state, p.level",
]
#: The engine's own statement for the second aggregate (a correlated lookup per alerted
#: case instead of the join above), for the plan and the floor.
FLOOR_SQL = [
    COUNT_SQL,
    "SELECT state, level, sum(warned), sum(breached) FROM (SELECT (SELECT c.state FROM "
    "cases c WHERE c.id = p.case_id AND c.workflow = 'claim') AS state, p.level, "
    "p.warned, p.breached FROM (SELECT case_id, "
    "max(CASE WHEN breached_at IS NOT NULL THEN 1 ELSE 0 END) AS breached, "
    "max(CASE WHEN breached_at IS NOT NULL THEN 0 ELSE 1 END) AS warned, "
    "max(CASE WHEN breached_at IS NOT NULL THEN level ELSE -1 END) AS level "
    "FROM case_deadlines WHERE status IN ('running', 'paused') AND (warned > 0 OR "
    "breached_at IS NOT NULL) GROUP BY case_id) AS p) AS located "
    "WHERE state IS NOT NULL GROUP BY state, level",
]


def median_ms(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def run_backend(url: str, n: int, reps: int) -> dict[str, Any]:
    eng, _ = open_desk(url)
    try:
        report_loaded(load(eng, n))
        raw = eng.store.engine.raw_connection()

        def floor() -> None:
            cur = raw.cursor()
            for q in FLOOR_SQL:
                cur.execute(q)
                cur.fetchall()
            cur.close()
            raw.commit()

        diagrams = Diagrams()
        t = time.perf_counter()
        render(eng, "claim", "svg", live=True, diagrams=diagrams)
        first = (time.perf_counter() - t) * 1000
        measures: dict[str, list[float]] = {
            "state_counts": [],
            "floor": [],
            "unit": [],
            "live svg": [],
        }
        calls: dict[str, Callable[[], object]] = {
            "state_counts": lambda: eng.state_counts("claim"),
            "floor": floor,
            "unit": lambda: eng.state_counts("claim", org_unit="SH"),
            "live svg": lambda: render(eng, "claim", "svg", live=True, diagrams=diagrams),
        }
        for fn in calls.values():
            fn()  # warm
        for _ in range(reps):  # alternating, so drift hits each alike
            for name, fn in calls.items():
                measures[name].append(median_ms(fn, 1))
        total = sum(c.cases for c in eng.state_counts("claim"))
        alerted = sum(c.warned + c.breached for c in eng.state_counts("claim"))
        raw.close()
        return {
            "cases": total,
            "alerted": alerted,
            "first layout": first,
            **{k: statistics.median(v) for k, v in measures.items()},
        }
    finally:
        eng.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results = {}
    for backend in args.backends.split(","):
        print(f"{backend}: {args.cases:,} cases")
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                results[backend] = run_backend(
                    f"sqlite:///{Path(tmp) / 'bench.db'}", args.cases, args.reps
                )
        else:
            with pg_schema(os.environ.get("BAOFLOW_BENCH_PG_URL", PG_DEFAULT), "diagram") as url:
                results[backend] = run_backend(url, args.cases, args.reps)
        r = results[backend]
        print(
            f"  {r['cases']:,} claims, {r['alerted']:,} warned or breached; medians of "
            f"{args.reps}: state_counts {r['state_counts']:.1f} ms (floor {r['floor']:.1f} ms), "
            f"one unit {r['unit']:.1f} ms, live svg {r['live svg']:.1f} ms; "
            f"first layout {r['first layout']:.0f} ms"
        )


if __name__ == "__main__":
    main()
