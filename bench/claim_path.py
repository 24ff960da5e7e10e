"""Benchmark of the path users take: a real claim from report to payment, every event
with its deadlines, notices and permission checks, against a floor that replays
exactly the rows the engine wrote (issue #14).

Run from the project root::

    .venv/bin/python -m bench.claim_path                    # 200 claims, 5 rounds
    .venv/bin/python -m bench.claim_path --claims 50 --rounds 3

Each claim goes the whole way the claim workflow has for it, on SQLite, one process::

    open_case (report; the intake's lookup and register) → verify → apply →
    receive_materials → complete_materials (the 3-working-day hand-over starts) →
    hand_over (it stops; the insurer's three deadlines start) →
    insurer_requests_materials (they pause) → insurer_confirms_receipt (they resume,
    re-timed) → insurer_decides (they stop; the payment deadline starts) →
    insurer_pays (it stops; closed)

Variants, alternating in each round on fresh copies of one database (the same policies,
the same clock script, so the same rows):

``engine``   ``open_case`` and ``fire()`` as an app calls them: every call on the hot
             path (``engine/store/hot.py``; on PostgreSQL in pipeline mode).
``core``     the same calls with the hot path switched off (``store._hot = None``), every
             statement through SQLAlchemy Core: what an event that touched a deadline
             cost before this change, when it left the hot path for Core.
``floor``    plain ``sqlite3`` (WAL, synchronous=NORMAL), one ``BEGIN IMMEDIATE`` …
             ``COMMIT`` per call, replaying the write statements — ``INSERT``,
             ``UPDATE``, ``DELETE``, with their parameters as bound — that the engine
             sent to the database for that call (recorded once, untimed, at the start).
             So the floor writes exactly the engine's rows, no fewer; each round checks
             that the floor's database ends up equal, row for row, to the engine's.

Reported: per event, whether it wrote a deadline or a timer, the engine's and Core's µs per call and their share of the floor
(floor time / their time), each the median over the rounds of the ratio taken within a
round; and the same for the whole path. ``--json`` writes the figures to a file.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from baoflow.engine import (
    SHANGHAI,
    Actor,
    ChineseOfficialCalendar,
    Engine,
    FakeClock,
    Policy,
    open_engine,
)
from baoflow.workflows.examples import ID_ZHANG, report

from bench import replay
from bench.replay import Backend, Postgres, Recording, Sqlite

START = datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI)
AGENT = Actor("a01", "李静", roles=("service_agent",), org_unit="SH")
HANDLER = Actor("h01", "王芳", roles=("handler",), org_unit="SH")
STEP = timedelta(minutes=20)  # the clock between two calls

#: The path after the report: (event, payload). The materials are the case's own list.
PATH: list[tuple[str, dict[str, Any] | None]] = [
    ("verify", {}),
    (
        "apply",
        {"applicant_name": "张伟", "applicant_id_number": ID_ZHANG, "relationship": "self"},
    ),
    ("receive_materials", None),
    ("complete_materials", {}),
    ("hand_over", {"insurer": "中国平安财产保险", "insurer_code": "pingan"}),
    ("insurer_requests_materials", {"items": ["medical_records"]}),
    ("insurer_confirms_receipt", {"received_at": "2026-05-08T10:00:00+08:00"}),
    (
        "insurer_decides",
        {"outcome": "approved", "amount": "8000.00", "decided_at": "2026-05-20T15:00:00+08:00"},
    ),
    ("insurer_pays", {"amount": "8000.00", "paid_at": "2026-05-25T11:00:00+08:00"}),
]
EVENTS = ["open_case"] + [event for event, _ in PATH]


def policies(n: int) -> list[Policy]:
    """One accident policy per claim: a desk's claims are spread over many policies
    (the intake reads every open claim on the policy reported)."""
    return [
        Policy(
            number=f"P-BENCH-{i:05d}",
            product_name="综合意外险",
            product_line="accident",
            insured_name="张伟",
            insured_id_number=ID_ZHANG,
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
            coverages=("accident",),
            sum_insured=Decimal("300000"),
        )
        for i in range(n)
    ]


def new_engine(url: str) -> tuple[Engine, FakeClock]:
    clock = FakeClock(START)
    return open_engine(url, clock=clock, calendar=ChineseOfficialCalendar()), clock


Call = tuple[str, Callable[[], Any]]


def claim_calls(eng: Engine, clock: FakeClock, i: int) -> list[Call]:
    """The calls of claim ``i``, each a (label, thunk); the thunks run in order."""
    state: dict[str, Any] = {}

    def opened() -> None:
        data = report(
            policy={"number": f"P-BENCH-{i:05d}", "insured_name": "张伟"},
            incident={"time": (clock.now() - timedelta(days=1)).isoformat(), "cause": "accident"},
        )
        state["case"] = eng.open_case("claim", data, AGENT).case

    def fire(event: str, payload: dict[str, Any] | None) -> Callable[[], None]:
        def call() -> None:
            case = state["case"]
            data = payload if payload is not None else {"items": case.data["materials"]["required"]}
            state["case"] = eng.fire(case.id, event, HANDLER, data)

        return call

    return [("open_case", opened)] + [(event, fire(event, payload)) for event, payload in PATH]


def drive(
    eng: Engine, clock: FakeClock, n: int, on_call: Callable[[str], None]
) -> dict[str, float]:
    """Walk ``n`` claims down the path; the seconds spent in each kind of call."""
    spent: dict[str, float] = defaultdict(float)
    perf = time.perf_counter
    for i in range(n):
        for label, call in claim_calls(eng, clock, i):
            on_call(label)
            t = perf()
            call()
            spent[label] += perf() - t
            clock.advance(STEP)
    return spent


def setup(url: str, n: int) -> None:
    """The template every variant starts from: migrated, with one policy per claim."""
    eng, _ = new_engine(url)
    eng.policies.add(policies(n))  # type: ignore[attr-defined]
    eng.close()


def record(url: str, n: int) -> Recording:
    """Run the engine once, untimed, keeping every write statement of every call."""
    eng, clock = new_engine(url)
    try:
        return replay.record(eng, lambda on_call: drive(eng, clock, n, on_call))
    finally:
        eng.close()


def run_engine(url: str, n: int, *, hot: bool) -> dict[str, float]:
    eng, clock = new_engine(url)
    if not hot:
        eng.store._hot = None  # every call in a CoreTx on SQLAlchemy's connection
    try:
        return drive(eng, clock, n, lambda _label: None)
    finally:
        eng.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--url", help="a PostgreSQL server to run on (postgresql://…/db); default SQLite"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    n = args.claims
    with tempfile.TemporaryDirectory() as tmp:
        backend: Backend = Postgres(args.url) if args.url else Sqlite(Path(tmp))
        try:
            figures = run(backend, n, args.rounds)
        finally:
            backend.close()
    print(table(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")


def run(backend: Backend, n: int, rounds_wanted: int) -> dict[str, Any]:
    backend.template(lambda url: setup(url, n))
    recording = record(backend.fresh("recorded"), n)
    backend.drop("recorded")
    statements = {label: 0 for label in EVENTS}
    deadlines: set[str] = set()  # the calls that wrote a deadline or a timer
    for label, writes in recording:
        statements[label] += len(writes)
        if any("case_deadlines" in sql or "timers" in sql for sql, _, _ in writes):
            deadlines.add(label)
    variants = ["engine", "floor", "core"]
    if backend.name == "postgresql":
        variants.append("floor_each")  # the writes one round trip each
    rounds: list[dict[str, dict[str, float]]] = []
    for r in range(rounds_wanted):
        order = variants if r % 2 == 0 else variants[::-1]
        times: dict[str, dict[str, float]] = {}
        for variant in order:
            url = backend.fresh(f"{variant}-{r}")
            gc.collect()
            if variant.startswith("floor"):
                one_trip = variant == "floor"
                times[variant] = backend.replay(f"{variant}-{r}", recording, one_trip=one_trip)
            else:
                times[variant] = run_engine(url, n, hot=variant == "engine")
        engine_rows = backend.dump(f"engine-{r}")
        for floor in (v for v in variants if v.startswith("floor")):
            if backend.dump(f"{floor}-{r}") != engine_rows:
                raise SystemExit(f"round {r}: the {floor} did not write the engine's rows")
        rounds.append(times)
        for variant in variants:
            backend.drop(f"{variant}-{r}")
        total = {v: sum(times[v].values()) for v in times}
        print(
            f"round {r + 1}: whole path engine {total['floor'] / total['engine']:.1%} "
            f"of the floor, core {total['floor'] / total['core']:.1%}",
            flush=True,
        )
    return summarise(backend.name, rounds, n, statements, deadlines)


def summarise(
    backend: str,
    rounds: list[dict[str, dict[str, float]]],
    n: int,
    statements: dict[str, int],
    deadlines: set[str],
) -> dict[str, Any]:
    def per_call(variant: str, label: str) -> float:
        return statistics.median(r[variant][label] for r in rounds) / n * 1e6

    def share(variant: str, label: str | None) -> float:
        def one(r: dict[str, dict[str, float]]) -> float:
            if label is None:
                return sum(r["floor"].values()) / sum(r[variant].values())
            return r["floor"][label] / r[variant][label]

        return statistics.median(one(r) for r in rounds)

    each = "floor_each" in rounds[0]
    events = {
        label: {
            "deadlines": label in deadlines,
            "write_statements": statements[label] / n,
            "floor_us": per_call("floor", label),
            **({"floor_each_us": per_call("floor_each", label)} if each else {}),
            "engine_us": per_call("engine", label),
            "core_us": per_call("core", label),
            "engine_share": share("engine", label),
            "core_share": share("core", label),
        }
        for label in EVENTS
    }
    whole = {
        "floor_us": sum(e["floor_us"] for e in events.values()),
        **({"floor_each_us": sum(e["floor_each_us"] for e in events.values())} if each else {}),
        "engine_us": sum(e["engine_us"] for e in events.values()),
        "core_us": sum(e["core_us"] for e in events.values()),
        "engine_share": share("engine", None),
        "core_share": share("core", None),
    }
    return {
        "backend": backend,
        "claims": n,
        "rounds": len(rounds),
        "events": events,
        "whole_path": whole,
    }


def table(figures: dict[str, Any]) -> str:
    each = "floor_each_us" in figures["whole_path"]
    lines = [
        f"{figures['backend']}: {figures['claims']} claims × {len(EVENTS)} calls, "
        f"{figures['rounds']} rounds (medians; share = floor time / time"
        + ("; the floor sends each call's writes as one round trip" if each else "")
        + ")",
        "",
        "| call | deadlines | writes | floor µs | "
        + ("floor, a trip each µs | " if each else "")
        + "engine µs | engine share | CoreTx µs | CoreTx share |",
        "|---|:-:|---:|---:|" + ("---:|" if each else "") + "---:|---:|---:|---:|",
    ]
    for label, e in figures["events"].items():
        lines.append(
            f"| `{label}` | {'yes' if e['deadlines'] else ''} | {e['write_statements']:.0f} | "
            f"{e['floor_us']:.0f} | "
            + (f"{e['floor_each_us']:.0f} | " if each else "")
            + f"{e['engine_us']:.0f} | {e['engine_share']:.0%} | "
            f"{e['core_us']:.0f} | {e['core_share']:.0%} |"
        )
    w = figures["whole_path"]
    lines.append(
        f"| **whole path** | | | {w['floor_us']:.0f} | "
        + (f"{w['floor_each_us']:.0f} | " if each else "")
        + f"{w['engine_us']:.0f} | **{w['engine_share']:.0%}** | {w['core_us']:.0f} | "
        f"{w['core_share']:.0%} |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
