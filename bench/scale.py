"""Benchmark of the desk at scale (issue #14 item 5): 10,000, 100,000 and 1,000,000 cases
with their history, deadlines and 1,000,000 pending timers, on SQLite and PostgreSQL —
what each query a face runs costs as the cases grow, its plan, and the memory of an
engine and of a timer worker.

Run from the project root (``make bench-scale``)::

    .venv/bin/python -m bench.scale --sizes 10000,100000,1000000 --backends sqlite,postgresql
    .venv/bin/python -m bench.scale --sizes 10000 --backends sqlite --out - --json -

PostgreSQL comes from ``BAOFLOW_BENCH_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``), a private schema per size, dropped after;
SQLite is a file in a temporary directory.

Each size is loaded by ``bench/load.py`` (real cases of the four workflows in every
state and at six ages, copied set-based), with the pending timers topped up to as many
as there are cases (``add_timers``: not due, so no measured call meets them). Then, in a
fresh process (spawned: nothing of the loader in it), on the loaded desk's clock, each
call below is made once to warm up and then ``--reps`` times, round robin, each on
other cases (a lookup finds a different case each time; every ``fire()`` moves its own
claim); the median is reported:

``fire()``             ``hand_over`` on a claim in ``materials_complete``, by a handler
                       of its unit: the 3-working-day hand-over deadline stops, the
                       insurer's deadlines and their timers are armed.
``by number``          ``find_cases(number=…)`` — one case.
``by policy``          ``find_cases(policy_number=…)``.
``by ID number``       ``find_cases(id_number=…)``.
``state_counts``       ``Engine.state_counts("claim")``: the claims per state, and their
                       warned and breached ones by escalation level — the live diagram.
``count_by_state``     ``Engine.count_by_state()``: every workflow's cases per state.
``gauges``             ``Engine.gauges()``: what the metrics scrape reads (cases per
                       state, breaches per workflow, rule and level, the next timer due,
                       the outbox and inbound backlogs).
``breaches``           ``Engine.breaches()``: every breached running deadline, oldest due
                       first — the HTTP API's ``GET /v1/breaches``, which has no pages.
``deadline list``      ``Engine.running_deadlines(limit=51)``: the first page of the
                       dashboard's deadline list — the breached on top, then those due
                       soonest.
``SLA report``         ``Engine.sla_report(per="month")``: what the dashboard's SLA page
                       shows (``--sla-reps`` calls, one at 1,000,000 cases): counted in
                       the database — a GROUP BY over every deadline row, window
                       functions over every case's history for the medians.

After the calls before the SLA report, the process's VmRSS is read (the engine's memory
with the desk's queries done); after the SLA report, its VmRSS and peak (VmHWM) again.
Then another fresh process, a timer worker, opens the engine on a clock 30 days on and
drains a batch (``run_due_timers(batch=100, limit=1000)``): its VmRSS after. Memory is
flat when these do not grow with the cases.

Each face query's plan is taken from the statements those calls sent (SQLAlchemy's
``before_cursor_execute``): ``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN (COSTS OFF)`` on
PostgreSQL, with the parameters they were sent with.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from baoflow.engine import Actor, ChineseOfficialCalendar, Engine, FakeClock, open_engine

from bench.load import OPENED, PG_DEFAULT, load, open_desk, pg_schema
from bench.timers import cpu_model, engine_commit, rss_kb

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Scale: 10k, 100k and 1,000,000 cases (issue #14)"
END_MARKER = "<!-- end of the section written by bench/scale.py -->"
CTX = mp.get_context("spawn")

#: (label, target in ms or None), in the order they are reported.
CALLS = [
    ("fire()", None),
    ("by number", 5.0),
    ("by policy", 5.0),
    ("by ID number", 5.0),
    ("state_counts", 200.0),
    ("count_by_state", 200.0),
    ("gauges", None),
    ("breaches", 200.0),
    ("deadline list", 200.0),
]
SLA = "SLA report"
#: Which statements' plans are shown for each call (a substring of the SQL).
PLANS = {
    "by number": "cases.number =",
    "by policy": "cases.policy_number =",
    "by ID number": "cases.id_number =",
    "state_counts": "GROUP BY cases.workflow, cases.state",
    "state_counts (alerts)": "max(CASE WHEN",
    "breaches per rule and level (gauges)": "GROUP BY cases.workflow, case_deadlines.rule",
    "breaches": "breached_at IS NOT NULL ORDER BY case_deadlines.due_at",
    "deadline list": "ORDER BY case_deadlines.due_at, case_deadlines.case_id",
    "next timer due (gauges)": "min(timers.due_at)",
    "SLA report (tallies)": "case_deadlines.due_at <=",
    "SLA report (medians)": "lag(history.to_state) OVER",
}


# --- the measuring process ---------------------------------------------------------------
def _samples(eng: Engine, reps: int) -> dict[str, list[Any]]:
    """Different cases for each rep (and the warm-up): claims to hand over, and claims
    whose number, policy and identity number are looked up — spread over the ids."""
    with eng.store.engine.connect() as conn:
        handable = conn.execute(
            sa.text(
                "SELECT id, org_unit FROM cases WHERE workflow = 'claim' "
                "AND state = 'materials_complete' ORDER BY id DESC LIMIT :n"
            ),
            {"n": reps + 1},
        ).all()
        total = int(conn.execute(sa.text("SELECT max(id) FROM cases")).scalar_one())
        looked = conn.execute(
            sa.text(
                "SELECT number, policy_number, id_number FROM cases "
                "WHERE workflow = 'claim' AND id_number IS NOT NULL AND id % :step = 0 "
                "ORDER BY id LIMIT :n"
            ),
            {"step": max(total // (4 * (reps + 1)), 1), "n": reps + 1},
        ).all()
    if len(handable) < reps + 1 or len(looked) < reps + 1:
        raise RuntimeError(f"too few cases to sample: {len(handable)}, {len(looked)}")
    return {"hand": list(handable), "look": list(looked)}


@contextmanager
def _statements(eng: Engine) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def note(_c: object, _cur: object, sql: str, params: Any, *_rest: object) -> None:
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((sql, params))

    sa.event.listen(eng.store.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(eng.store.engine, "before_cursor_execute", note)


def _plans(eng: Engine, seen: Sequence[tuple[str, Any]]) -> dict[str, dict[str, str]]:
    """Each face query's statement and plan (the first statement matching ``PLANS``)."""
    pg = eng.store.engine.dialect.name == "postgresql"
    explain = "EXPLAIN (COSTS OFF) " if pg else "EXPLAIN QUERY PLAN "
    out: dict[str, dict[str, str]] = {}
    with eng.store.engine.connect() as conn:
        for label, marker in PLANS.items():
            found = [(sql, p) for sql, p in seen if marker in sql]
            if not found:
                continue
            sql, params = found[0]
            rows = conn.exec_driver_sql(explain + sql, params).all()
            plan = "\n".join(str(r[0]) if pg else f"{'  ' * _depth(rows, r)}{r[-1]}" for r in rows)
            out[label] = {"sql": " ".join(sql.split()), "plan": plan}
    return out


def _depth(rows: Sequence[Any], row: Any) -> int:
    """How deep a row of SQLite's EXPLAIN QUERY PLAN stands (its parent chain)."""
    parents = {r[0]: r[1] for r in rows}
    depth, at = 0, row[1]
    while at in parents:
        depth, at = depth + 1, parents[at]
    return depth


def measure(url: str, reps: int, sla_reps: int) -> dict[str, Any]:
    """In a fresh process: every call's median, the plans, and the memory."""
    eng = open_engine(url, clock=FakeClock(OPENED), calendar=ChineseOfficialCalendar())
    try:
        rss_start = rss_kb()
        pick = _samples(eng, reps)

        def fire(i: int) -> None:
            case_id, unit = pick["hand"][i]
            handler = Actor("h01", "王芳", roles=("handler",), org_unit=unit)
            data = {"insurer": "中国平安财产保险", "insurer_code": "pingan"}
            eng.fire(case_id, "hand_over", handler, data)

        calls: dict[str, Callable[[int], object]] = {
            "fire()": fire,
            "by number": lambda i: eng.find_cases(number=pick["look"][i][0]),
            "by policy": lambda i: eng.find_cases(policy_number=pick["look"][i][1]),
            "by ID number": lambda i: eng.find_cases(id_number=pick["look"][i][2]),
            "state_counts": lambda i: eng.state_counts("claim"),
            "count_by_state": lambda i: eng.count_by_state(),
            "gauges": lambda i: eng.gauges(),
            "breaches": lambda i: eng.breaches(),
            "deadline list": lambda i: eng.running_deadlines(limit=51),
        }
        times: dict[str, list[float]] = {k: [] for k in calls}
        with _statements(eng) as seen:
            for fn in calls.values():
                fn(reps)  # warm: statements prepared, caches filled
            found = {
                "by number": len(eng.find_cases(number=pick["look"][0][0])),
                "by policy": len(eng.find_cases(policy_number=pick["look"][0][1])),
                "by ID number": len(eng.find_cases(id_number=pick["look"][0][2])),
                "breaches": len(eng.breaches()),
                "deadline list": len(eng.running_deadlines(limit=51)),
                "claims": sum(c.cases for c in eng.state_counts("claim")),
            }
            for i in range(reps):  # round robin, so drift hits each alike
                for name, fn in calls.items():
                    t = time.perf_counter()
                    fn(i)
                    times[name].append((time.perf_counter() - t) * 1000)
            rss_calls = rss_kb()
            sla: list[float] = []
            for _ in range(sla_reps):  # warm already: it reads what the calls above read
                t = time.perf_counter()
                eng.sla_report(per="month")
                sla.append((time.perf_counter() - t) * 1000)
            rss_sla = rss_kb()
        plans = _plans(eng, seen)
        return {
            "ms": {
                **{k: statistics.median(v) for k, v in times.items()},
                SLA: statistics.median(sla),
            },
            "found": found,
            "rss_kib": {
                "after start": rss_start["VmRSS"],
                "after the calls": rss_calls["VmRSS"],
                "after the SLA report": rss_sla["VmRSS"],
                "peak": rss_sla["VmHWM"],
            },
            "plans": plans,
        }
    finally:
        eng.close()


def worker(url: str) -> dict[str, Any]:
    """In a fresh process: a timer worker 30 days on drains one batch of 1,000."""
    clock = FakeClock(OPENED + timedelta(days=30))
    eng = open_engine(url, clock=clock, calendar=ChineseOfficialCalendar())
    try:
        start = rss_kb()["VmRSS"]
        t = time.perf_counter()
        run = eng.run_due_timers(worker="scale", batch=100, limit=1000)
        seconds = time.perf_counter() - t
        after = rss_kb()
        return {
            "fired": run.fired,
            "skipped": run.skipped,
            "effects_per_s": (run.fired + run.skipped) / seconds,
            "rss_kib": {"after start": start, "after the batch": after["VmRSS"]},
            "peak_kib": after["VmHWM"],
        }
    finally:
        eng.close()


def _child(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    with CTX.Pool(1) as pool:
        return pool.apply(fn, args)


# --- one size on one backend ----------------------------------------------------------
def run_size(url: str, n: int, reps: int, sla_reps: int) -> dict[str, Any]:
    eng, _ = open_desk(url)
    try:
        t = time.perf_counter()
        loaded = load(eng, n, timers=n)
        whole = time.perf_counter() - t
    finally:
        eng.close()
    rows = sum(loaded.rows.values())
    print(
        f"  loaded {loaded.cases:,} cases ({rows:,} rows, {loaded.pending_timers:,} pending "
        f"timers) in {whole:.1f} s: {loaded.rows_per_s:,.0f} rows/s",
        flush=True,
    )
    result: dict[str, Any] = {
        "load": {
            "cases": loaded.cases,
            "sources": loaded.sources,
            "rows": loaded.rows,
            "pending_timers": loaded.pending_timers,
            "drive_s": loaded.drive_s,
            "copy_s": loaded.copy_s,
            "settle_s": loaded.settle_s,
            "seconds": whole,
            "rows_per_s": loaded.rows_per_s,
        }
    }
    # the SLA report walks every deadline row and every history row: once at a million
    result.update(_child(measure, url, reps, sla_reps if n < 1_000_000 else 1))
    print("  " + ", ".join(f"{k} {v:.2f} ms" for k, v in result["ms"].items()), flush=True)
    result["worker"] = _child(worker, url)
    print(f"  rss {result['rss_kib']}, worker {result['worker']}", flush=True)
    return result


def run(sizes: Sequence[int], backends: Sequence[str], reps: int, sla_reps: int) -> dict[str, Any]:
    runs: dict[str, dict[str, Any]] = {}
    for backend in backends:
        runs[backend] = {}
        for n in sizes:
            print(f"{backend}: {n:,} cases", flush=True)
            if backend == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    url = f"sqlite:///{Path(tmp) / 'scale.db'}"
                    runs[backend][str(n)] = run_size(url, n, reps, sla_reps)
            else:
                base = os.environ.get("BAOFLOW_BENCH_PG_URL", PG_DEFAULT)
                with pg_schema(base, "scale") as url:
                    runs[backend][str(n)] = run_size(url, n, reps, sla_reps)
    return runs


# --- the report -------------------------------------------------------------------------
FLAT_MIB = 5.0  # "memory flat": an RSS that grows by no more than this from the smallest size


def versions(backends: Sequence[str]) -> dict[str, str]:
    import sqlite3

    out = {"python": platform.python_version(), "sqlalchemy": sa.__version__}
    if "sqlite" in backends:
        out["sqlite"] = sqlite3.sqlite_version
    if "postgresql" in backends:
        import psycopg

        out["psycopg"] = psycopg.__version__
        base = os.environ.get("BAOFLOW_BENCH_PG_URL", PG_DEFAULT)
        engine = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as conn:
            out["postgresql"] = str(conn.exec_driver_sql("SHOW server_version").scalar_one())
        engine.dispose()
    return out


def _mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def _size(n: str) -> str:
    k = int(n)
    return f"{k // 1_000_000:,}M" if k >= 1_000_000 else f"{k // 1000:,}k"


def targets(runs: dict[str, dict[str, Any]]) -> list[str]:
    """One line per target and backend, at the largest size: met or not, and by how much."""
    lines = []
    for backend, sizes in runs.items():
        big = max(sizes, key=int)
        ms = sizes[big]["ms"]
        name = f"{backend}, {int(big):,} cases"
        lookups = max(ms["by number"], ms["by policy"], ms["by ID number"])
        lines.append(_verdict(f"lookups < 5 ms ({name})", lookups < 5, f"slowest {lookups:.2f} ms"))
        lines.append(
            _verdict(
                f"counts per state < 200 ms ({name})",
                ms["state_counts"] < 200,
                f"state_counts {ms['state_counts']:.1f} ms, count_by_state "
                f"{ms['count_by_state']:.1f} ms",
            )
        )
        worst = max(ms["breaches"], ms["deadline list"])
        lines.append(
            _verdict(
                f"the breach list's first page < 200 ms ({name})",
                worst < 200,
                f"breaches() {ms['breaches']:.1f} ms, the deadline list's first page "
                f"{ms['deadline list']:.1f} ms",
            )
        )
        small = min(sizes, key=int)
        for what, path in (
            ("engine, after the face calls", ("rss_kib", "after the calls")),
            ("timer worker, after a batch", ("worker", "rss_kib", "after the batch")),
            ("the engine's peak, the SLA report included", ("rss_kib", "peak")),
        ):
            grew = (_dig(sizes[big], path) - _dig(sizes[small], path)) / 1024
            lines.append(
                _verdict(
                    f"memory flat: {what} ({backend})",
                    grew <= FLAT_MIB,
                    f"{_mib(_dig(sizes[small], path))} at {int(small):,} cases, "
                    f"{_mib(_dig(sizes[big], path))} at {int(big):,} ({grew:+.1f} MiB)",
                )
            )
    return lines


def _dig(d: dict[str, Any], path: Sequence[str]) -> float:
    for key in path:
        d = d[key]
    return float(d)  # type: ignore[arg-type]


def _verdict(what: str, met: bool, detail: str) -> str:
    return f"- **{what}: {'met' if met else 'not met'}** — {detail}."


def _head(first: str, sizes: Sequence[str]) -> list[str]:
    """A table's heading: ``first`` (its columns split by ``|``), then a column a size."""
    left = first.count("|") + 1
    return [
        f"| {first} | " + " | ".join(_size(n) for n in sizes) + " |",
        "|---|" + "---:|" * (left - 1 + len(sizes)),
    ]


def render(result: dict[str, Any]) -> str:
    runs: dict[str, dict[str, Any]] = result["runs"]
    v = result["versions"]
    out = [
        SECTION,
        "",
        "Generated by `bench/scale.py` (`make bench-scale`; figures also in `docs/scale.json`);"
        " rerun with:",
        "",
        "```",
        result["command"],
        "```",
        "",
        f"Machine: {result['machine']}; shared with other work. "
        + ", ".join(f"{k} {val}" for k, val in v.items())
        + f". Engine at {result['commit']}. Run {result['started']}, "
        f"{result['minutes']:.0f} minutes in all.",
        "",
        "Each size is loaded by `bench/load.py`: real cases of the four workflows in every"
        " state and at six ages (opened 2026-05-06 and 1, 3, 8, 20 and 45 days before; the"
        " older ones warned, breached and escalated by the engine's own timer worker as"
        " the clock moved on), each copied set-based with its history, deadline rows,"
        " timers, own search keys and a policy of its own (claims 70% of the cases, 70%"
        " of them closed; 4 org units, 20 handlers). The pending timers are topped up to"
        " as many as there are cases with not-due ones (due from 90 days on). Medians of"
        f" {result['reps']} calls after a warm-up, in a fresh process (the SLA report:"
        f" {result['sla_reps']}, one at 1,000,000 cases); `bench/scale.py`'s docstring says"
        " what each call is.",
        "",
        "### The load",
        "",
        "| backend | cases | rows written | of them history / deadlines / timers"
        " | pending timers | driven | copied | settled | rows/s copying |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for backend, sizes in runs.items():
        for n, r in sizes.items():
            ld = r["load"]
            rows = ld["rows"]
            out.append(
                f"| {backend} | {int(n):,} | {sum(rows.values()):,} | {rows.get('history', 0):,}"
                f" / {rows.get('case_deadlines', 0):,} / {rows.get('timers', 0):,}"
                f" + {rows.get('timers (added, not due)', 0):,} added"
                f" | {ld['pending_timers']:,} | {ld['drive_s']:.1f} s | {ld['copy_s']:.1f} s"
                f" | {ld['settle_s']:.1f} s | {ld['rows_per_s']:,.0f} |"
            )
    for backend, sizes in runs.items():
        names = list(sizes)
        out += ["", f"### {backend}: ms per call (median)", "", *_head("call | target", names)]
        for label, target in [*CALLS, (SLA, None)]:
            cells = " | ".join(f"{sizes[n]['ms'][label]:.2f}" for n in names)
            goal = f"< {target:g}" if target else ""
            out.append(f"| {label} | {goal} | {cells} |")
        out.append(
            "| rows found: by number / by policy / by ID number / breaches / deadline list | | "
            + " | ".join(
                "{by number} / {by policy} / {by ID number} / {breaches:,} / {deadline list}".format(
                    **sizes[n]["found"]
                )
                for n in names
            )
            + " |"
        )
        out += ["", f"Memory ({backend}, VmRSS):", "", *_head("process", names)]
        for label in ("after start", "after the calls", "after the SLA report", "peak"):
            cells = " | ".join(_mib(sizes[n]["rss_kib"][label]) for n in names)
            out.append(f"| engine, {label} | {cells} |")
        for label in ("after start", "after the batch"):
            cells = " | ".join(_mib(sizes[n]["worker"]["rss_kib"][label]) for n in names)
            out.append(f"| timer worker, {label} | {cells} |")
        cells = " | ".join(
            f"{sizes[n]['worker']['fired']:,} fired, {sizes[n]['worker']['effects_per_s']:,.0f}/s"
            for n in names
        )
        out.append(f"| the worker's batch (1,000 at most) | {cells} |")
    out += ["", "### Against the targets", "", *targets(runs)]
    for backend, sizes in runs.items():
        big = max(sizes, key=int)
        out += [
            "",
            f"### The plans on {backend}, {int(big):,} cases",
            "",
            "Each face query's statement as the call sent it (the SQL with its parameters is"
            " in `docs/scale.json`).",
            "",
        ]
        for label, p in sizes[big]["plans"].items():
            out += [f"{label}:", "", "```", p["plan"], "```", ""]
    out.append(END_MARKER)
    return "\n".join(out) + "\n"


def write_doc(path: Path, section: str) -> None:
    """Replace the section in ``path`` (from its heading to the end marker), or append it."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if SECTION in text and END_MARKER in text:
        head, rest = text.split(SECTION, 1)
        tail = rest.split(END_MARKER, 1)[1].removeprefix("\n")
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")


def machine() -> str:
    return f"{os.cpu_count()} CPUs ({cpu_model()}), {platform.platform()}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--reps", type=int, default=11)
    parser.add_argument(
        "--sla-reps", type=int, default=3, help="SLA reports per size (one at 1,000,000 cases)"
    )
    parser.add_argument("--out", default="docs/benchmarks.md", help="'-' prints the section")
    parser.add_argument("--json", default="docs/scale.json", help="'-' prints nothing")
    parser.add_argument(
        "--from-json", default=None, help="write the section from a run's JSON, run nothing"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        write_doc(ROOT / args.out, render(json.loads(Path(args.from_json).read_text())))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = args.backends.split(",")
    t0 = time.time()
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    runs = run(sizes, backends, args.reps, args.sla_reps)
    result = {
        "command": ".venv/bin/python -m bench.scale "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "versions": versions(backends),
        "commit": engine_commit(),
        "started": started,
        "minutes": (time.time() - t0) / 60,
        "reps": args.reps,
        "sla_reps": args.sla_reps,
        "runs": runs,
    }
    if args.json != "-":
        Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    section = render(result)
    if args.out == "-":
        print(section)
    else:
        write_doc(ROOT / args.out, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
