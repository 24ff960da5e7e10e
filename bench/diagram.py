"""Benchmark of the live state diagram with 1,000,000 stored cases (issue #12 item 1:
under 200 ms for the counts and a live SVG, on SQLite and on PostgreSQL).

Run from the project root::

    .venv/bin/python -m bench.diagram                      # 1,000,000 cases, both backends
    .venv/bin/python -m bench.diagram --cases 100000 --backends sqlite

PostgreSQL comes from ``BAOFLOW_BENCH_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``), in a private schema dropped at the end;
SQLite is a file in a temporary directory.

The cases are made as ``bench/timers.py`` makes them: one real claim is brought to
``materials_complete`` through the engine, then its case row is cloned with one
``INSERT ... SELECT`` (``generate_series`` on PostgreSQL, a recursive CTE on SQLite) —
the real data document and search keys, a state and an org unit per clone (70% closed,
10% withdrawn, 5% handed over, the rest over the open states; SH, BJ, GZ, SZ). Every
clone in ``materials_complete`` or ``handed_over`` gets a running deadline row as the
engine writes it (``hand_over``, ``insurer_decision``), one in ten of them warned and
one in twenty-five breached, at levels 0 to 3. The history is not cloned: neither the
counts nor the live SVG read it.

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
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from baoflow.diagrams import Diagrams, render
from baoflow.engine import SHANGHAI, ChineseOfficialCalendar, FakeClock, open_engine
from baoflow.engine.store import normalise_url
from baoflow.workflows.examples import POLICIES
from sqlalchemy.pool import NullPool

from tests.test_timers import to_materials_complete

OPENED = datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI)
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"

#: (state, per mille of the clones)
MIX = [
    ("closed", 700),
    ("withdrawn", 100),
    ("handed_over", 50),
    ("materials_complete", 30),
    ("applied", 30),
    ("verified", 20),
    ("reported", 20),
    ("awaiting_materials", 15),
    ("rejected", 15),
    ("received", 10),
    ("unmatched", 5),
    ("identity_pending", 5),
]
UNITS = ["SH", "BJ", "GZ", "SZ"]


def _state_case_sql(col: str) -> str:
    """A CASE over ``col`` (0..999) giving each clone its state by MIX."""
    parts, edge = [], 0
    for state, share in MIX:
        edge += share
        parts.append(f"WHEN {col} < {edge} THEN '{state}'")
    return "CASE " + " ".join(parts) + " END"


@contextmanager
def pg_schema(base: str) -> Iterator[str]:
    base = normalise_url(base)
    schema = f"bench_diagram_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, poolclass=NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def clone(sql: sa.Engine, source_id: int, n: int) -> None:
    pg = sql.dialect.name == "postgresql"
    series = (
        "generate_series(1, :n) AS g(x)"
        if pg
        else "(WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < :n) "
        "SELECT x FROM s) AS g"
    )
    pad = "lpad(g.x::text, 7, '0')" if pg else "substr('0000000' || g.x, -7, 7)"
    # a spread of residues: x * 7919 mod 1000 gives the state, x mod 4 the unit
    state = _state_case_sql("(((g.x % 1000) * 7919) % 1000)")
    unit = "CASE g.x % 4 " + " ".join(f"WHEN {i} THEN '{u}'" for i, u in enumerate(UNITS)) + " END"
    t0 = time.perf_counter()
    with sql.begin() as conn:
        conn.execute(
            sa.text(
                f"""
                INSERT INTO cases (number, workflow, workflow_version, state, data, version,
                                   created_at, updated_at, policy_number, insured_name,
                                   id_number, org_unit)
                SELECT s.number || '-' || {pad}, s.workflow, s.workflow_version, {state},
                       s.data, s.version, s.created_at, s.updated_at, s.policy_number,
                       s.insured_name, s.id_number, {unit}
                FROM cases s CROSS JOIN {series}
                WHERE s.id = :src
                """
            ),
            {"src": source_id, "n": n},
        )
        # a running deadline for every clone in materials_complete (hand_over) or
        # handed_over (insurer_decision), copied from the source's row: 1 in 10 warned,
        # 1 in 25 breached at level (id mod 4)
        conn.execute(
            sa.text(
                """
                INSERT INTO case_deadlines (case_id, rule, armed_seq, started_at, due_at,
                                            status, pause_reason, paused_since, paused_seconds,
                                            warned, breached_at, level, stopped_at, calendar)
                SELECT c.id,
                       CASE c.state WHEN 'handed_over' THEN 'insurer_decision' ELSE d.rule END,
                       d.armed_seq, d.started_at, d.due_at, 'running', NULL, NULL, 0,
                       CASE WHEN c.id % 10 = 0 OR c.id % 25 = 0 THEN 1 ELSE 0 END,
                       CASE WHEN c.id % 25 = 0 THEN d.due_at ELSE NULL END,
                       CASE WHEN c.id % 25 = 0 THEN c.id % 4 ELSE 0 END,
                       NULL, d.calendar
                FROM cases c JOIN case_deadlines d ON d.case_id = :src AND d.rule = 'hand_over'
                WHERE c.id <> :src AND c.state IN ('materials_complete', 'handed_over')
                """
            ),
            {"src": source_id},
        )
    settle(sql)
    print(f"  cloned {n:,} cases in {time.perf_counter() - t0:.1f} s")


def settle(sql: sa.Engine) -> None:
    """What a live database has after a bulk write: statistics (``ANALYZE``) and, on
    PostgreSQL, the visibility map (``VACUUM``) that lets a count read only its index —
    autovacuum's work, done at once so that no measurement depends on when it runs."""
    pg = sql.dialect.name == "postgresql"
    with sql.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if pg else "ANALYZE")


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
    eng = open_engine(url, clock=FakeClock(OPENED), calendar=ChineseOfficialCalendar())
    try:
        eng.policies.add(POLICIES)  # type: ignore[attr-defined]
        source = to_materials_complete(eng)
        clone(eng.store.engine, source.id, n - 1)
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
            with pg_schema(os.environ.get("BAOFLOW_BENCH_PG_URL", PG_DEFAULT)) as url:
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
