"""baoflow side by side with its floor and the alternatives, on the five-step claim with
one deadline per state (issue #14, item 4).

Run from the project root (``make bench`` runs it, then ``bench.claim_path`` on both
databases, then ``--render``)::

    .venv/bin/python -m bench.compare                       # 500 claims, 5 rounds
    .venv/bin/python -m bench.compare --cases 50 --rounds 2 --no-postgresql

The claim (``bench/five_step.toml``): ``open_case``, then ``verify``, ``apply``,
``complete_materials`` and ``close`` — five calls, each one commit with a version check
and a history row; every state but the last has a deadline rule (hours), armed on
entering it and stopped on leaving it. The variants, alternating within each round
(the order reversed every other round), each on a fresh database:

``engine``      baoflow's ``Engine.open_case`` and ``fire()``, one process.
``engine ×P``   the same from P processes at once (spawned, each opening its own engine
                and working its own share of the cases, started together); throughput
                is all their calls over the wall time from the first start to the
                last finish.
``floor``       plain ``sqlite3`` / ``psycopg`` replaying exactly the write statements
                the engine sent for each call (``bench/replay.py``: recorded once,
                untimed, first), one transaction per call; on PostgreSQL one pipeline,
                so one round trip, per call. Each round checks that the floor's database
                ends equal, row for row, to the engine's.
``floor, a trip each``  (PostgreSQL) the same statements, each waited for.
``orm``         the claim by hand with ``transitions`` and SQLAlchemy 2's ORM
                (``bench/rivals.py``: a Machine per loaded case, ``version_id_col``,
                deadline rows armed on entry and stopped on exit, a commit per call).
``spiff``       SpiffWorkflow 3.2 (``pip install -e '.[bench]'``): a BPMN process of
                user tasks, serialised into the case row and reloaded at every call,
                the deadlines written by the app's own SQL (SQLite only: on PostgreSQL
                it would add round trips to the same Python, nothing about Spiff).

The hand-written versions write a case row, a history row per call and a deadline row
per state; the engine writes more for the same calls (a timer row per deadline, the
search keys on the case, the history's notes) and the floor exactly what it wrote.

Reported: calls/s per variant (each call is one commit) and the ratios issue #14's
targets name, each the median over the rounds of the ratio taken within a round; a
short cProfile of the engine on this path (SQLite). ``--json`` writes the figures;
``--doc`` rewrites this benchmark's section of docs/benchmarks.md between its markers
(with the claim path's figures from its JSON files), keeping everything else.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib.util
import json
import multiprocessing as mp
import os
import platform
import pstats
import queue
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Protocol

from baoflow.engine import (
    SHANGHAI,
    Actor,
    ChineseOfficialCalendar,
    Clock,
    FakeClock,
    Hooks,
    WorkflowDefinition,
    load_workflow,
    open_engine,
)
from pydantic import BaseModel

from bench import claim_path, replay
from bench.replay import Backend, Postgres, Recording, Sqlite
from bench.rivals import DEFINITION, OrmApp, SpiffApp, load_flow

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BAOFLOW_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
START = datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI)
STEP = timedelta(minutes=20)  # the clock between two calls
HANDLER = Actor("h01", "王芳", roles=("handler",), org_unit="SH")
FLOW = load_flow()
LABELS = ["open_case", *FLOW.events]
CTX = mp.get_context("spawn")  # a fresh interpreter each, as separate workers would be
BEGIN = "<!-- begin: the section written by bench/compare.py (make bench) -->"
END = "<!-- end: the section written by bench/compare.py -->"


class PolicyRef(BaseModel):
    number: str
    insured_name: str


class Report(BaseModel):
    policy: PolicyRef
    description: str


def definition() -> WorkflowDefinition:
    return load_workflow(DEFINITION, Hooks(schemas={"Report": Report}))


def report(i: int) -> dict[str, Any]:
    return {
        "policy": {"number": f"P-BENCH-{i:05d}", "insured_name": "张伟"},
        "description": "骑电动车摔倒，左腕骨折，门诊治疗",
    }


class App(Protocol):
    def open(self, i: int, data: dict[str, Any]) -> int: ...
    def fire(self, case_id: int, event_name: str) -> None: ...
    def close(self) -> None: ...


class EngineApp:
    """baoflow as an app embeds it."""

    def __init__(self, url: str, clock: Clock) -> None:
        self.eng = open_engine(
            url, clock=clock, workflows=[definition()], calendar=ChineseOfficialCalendar()
        )

    def open(self, i: int, data: dict[str, Any]) -> int:
        return self.eng.open_case("five_step", data, HANDLER).case.id

    def fire(self, case_id: int, event_name: str) -> None:
        self.eng.fire(case_id, event_name, HANDLER)

    def close(self) -> None:
        self.eng.close()


def drive(
    app: App, clock: FakeClock, cases: Sequence[int], on_call: Callable[[str], None]
) -> dict[str, float]:
    """Take each case of ``cases`` the whole way; the seconds spent in each kind of call."""
    spent: dict[str, float] = defaultdict(float)
    perf = time.perf_counter
    for i in cases:
        on_call("open_case")
        t = perf()
        case_id = app.open(i, report(i))
        spent["open_case"] += perf() - t
        clock.advance(STEP)
        for event_name in FLOW.events:
            on_call(event_name)
            t = perf()
            app.fire(case_id, event_name)
            spent[event_name] += perf() - t
            clock.advance(STEP)
    return spent


def _quiet(_label: str) -> None:
    pass


def run_app(make: Callable[[FakeClock], App], n: int) -> dict[str, float]:
    clock = FakeClock(START)
    app = make(clock)
    try:
        return drive(app, clock, range(n), _quiet)
    finally:
        app.close()


def record(url: str, n: int) -> Recording:
    clock = FakeClock(START)
    app = EngineApp(url, clock)
    try:
        return replay.record(app.eng, lambda on_call: drive(app, clock, range(n), on_call))
    finally:
        app.close()


def _engine_process(url: str, cases: list[int], ready: Any, go: Any, out: Any) -> None:
    """One of P processes: its own engine, its own cases, started with the others."""
    clock = FakeClock(START)
    app = EngineApp(url, clock)
    try:
        ready.put(os.getpid())
        go.wait()
        t = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process
        drive(app, clock, cases, _quiet)
        out.put((t, time.monotonic(), len(cases) * len(LABELS)))
    except BaseException as exc:
        out.put(("error", repr(exc), 0))
        raise
    finally:
        app.close()


def run_processes(url: str, n: int, processes: int) -> float:
    """The wall time from the first process's start to the last one's finish."""
    ready, out, go = CTX.Queue(), CTX.Queue(), CTX.Event()
    procs = [
        CTX.Process(
            target=_engine_process, args=(url, list(range(k, n, processes)), ready, go, out)
        )
        for k in range(processes)
    ]
    for p in procs:
        p.start()
    started = 0
    while started < processes:  # every engine open before any starts
        try:
            ready.get(timeout=1)
            started += 1
        except queue.Empty:
            if not all(p.is_alive() for p in procs):
                for p in procs:
                    p.kill()
                raise SystemExit(f"a process of engine ×{processes} died while opening") from None
    go.set()
    results: list[tuple[Any, Any, int]] = [out.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    errors = [r[1] for r in results if r[0] == "error"]
    if errors:
        raise SystemExit(f"a process of engine ×{processes} failed: {errors[0]}")
    return float(max(r[1] for r in results) - min(r[0] for r in results))


@dataclass(frozen=True)
class Variant:
    backend: str  # sqlite | postgresql
    kind: str  # engine | floor | floor_each | orm | spiff | engine_procs
    processes: int = 1

    @property
    def name(self) -> str:
        if self.kind == "engine_procs":
            return f"{self.backend} engine ×{self.processes}"
        return f"{self.backend} {self.kind}"

    @property
    def db(self) -> str:
        return self.kind if self.kind != "engine_procs" else f"engine_p{self.processes}"


def variants(backends: Sequence[str], spiff: bool, processes: Sequence[int]) -> list[Variant]:
    out: list[Variant] = []
    for b in backends:
        out += [Variant(b, "engine"), Variant(b, "floor")]
        if b == "postgresql":
            out.append(Variant(b, "floor_each"))
        out.append(Variant(b, "orm"))
        if spiff and b == "sqlite":
            out.append(Variant(b, "spiff"))
        out += [Variant(b, "engine_procs", p) for p in processes]
    return out


def run_variant(
    v: Variant, backend: Backend, r: int, n: int, recording: Recording
) -> dict[str, Any]:
    """Seconds (and per call kind, where measured in-process) of one variant's run."""
    name = f"{v.db}-{r}"
    per_label: dict[str, float] | None = None
    if v.kind in ("engine", "engine_procs", "floor", "floor_each"):
        url = backend.fresh(name)
    else:
        url = backend.blank(name)
    gc.collect()
    if v.kind == "engine":
        per_label = run_app(lambda clock: EngineApp(url, clock), n)
    elif v.kind.startswith("floor"):
        per_label = backend.replay(name, recording, one_trip=v.kind == "floor")
    elif v.kind == "orm":
        per_label = run_app(lambda clock: OrmApp(url, clock, HANDLER, FLOW), n)
    elif v.kind == "spiff":
        assert isinstance(backend, Sqlite)
        path = backend.work / f"{name}.db"
        per_label = run_app(lambda clock: SpiffApp(path, clock, HANDLER, FLOW), n)
    else:
        return {"seconds": run_processes(url, n, v.processes)}
    return {"seconds": sum(per_label.values()), "per_label": dict(per_label)}


def setup(url: str) -> None:
    """The template: the engine's schema, migrated."""
    EngineApp(url, FakeClock(START)).close()


def run(
    cases: int,
    rounds: int,
    *,
    backends: Sequence[str] = ("sqlite", "postgresql"),
    pg_url: str = PG_URL,
    spiff: bool = True,
    processes: Sequence[int] = (1, 2, 4),
    profile: int = 200,
) -> dict[str, Any]:
    """The whole comparison; the figures as :func:`summarise` returns them."""
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        opened: dict[str, Backend] = {}
        try:
            for b in backends:
                opened[b] = Sqlite(Path(tmp)) if b == "sqlite" else Postgres(pg_url, "bench_cmp")
                opened[b].template(setup)
            recordings = {}
            writes = {}
            for b, backend in opened.items():
                recordings[b] = record(backend.fresh("recorded"), cases)
                backend.drop("recorded")
                writes[b] = {label: 0 for label in LABELS}
                for label, statements in recordings[b]:
                    writes[b][label] += len(statements)
            order = variants(backends, spiff, processes)
            results: list[dict[str, dict[str, Any]]] = []
            for r in range(rounds):
                got: dict[str, dict[str, Any]] = {}
                for v in order if r % 2 == 0 else order[::-1]:
                    got[v.name] = run_variant(v, opened[v.backend], r, cases, recordings[v.backend])
                for b, backend in opened.items():
                    engine_rows = backend.dump(f"engine-{r}")
                    for floor in ("floor", "floor_each"):
                        if f"{b} {floor}" in got and backend.dump(f"{floor}-{r}") != engine_rows:
                            raise SystemExit(f"round {r + 1}: the {b} {floor} wrote other rows")
                for v in order:
                    opened[v.backend].drop(f"{v.db}-{r}")
                results.append(got)
                print(progress(r, got, cases), flush=True)
            server = pg_version(opened["postgresql"]) if "postgresql" in opened else None
        finally:
            for backend in opened.values():
                backend.close()
        prof = profile_engine(Path(tmp), profile) if profile else None
    figures = summarise(results, cases, writes, order)
    figures["run"] = meta(cases, rounds, load_before, server)
    figures["profile"] = prof
    return figures


def pg_version(backend: Backend) -> str:
    assert isinstance(backend, Postgres)
    row = backend.admin.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def progress(r: int, got: dict[str, dict[str, Any]], n: int) -> str:
    calls = n * len(LABELS)
    return f"round {r + 1}: " + ", ".join(
        f"{name} {calls / res['seconds']:,.0f}/s" for name, res in got.items()
    )


#: (key, what it compares, the slower variant, the faster one, the target): each ratio
#: is the slower one's time over the faster one's in the same round — the engine's share
#: of a floor, how many times faster the engine is than another, or what P processes
#: give over one (for these the time of the same calls: throughput over throughput).
RATIOS: list[tuple[str, str, str, str, float | None]] = [
    (
        "sqlite_floor_share",
        "SQLite: engine / floor (share of the floor)",
        "sqlite floor",
        "sqlite engine",
        0.5,
    ),
    (
        "sqlite_vs_spiff",
        "SQLite: engine / SpiffWorkflow (× faster)",
        "sqlite spiff",
        "sqlite engine",
        6.0,
    ),
    (
        "sqlite_vs_orm",
        "SQLite: engine / transitions + ORM (× faster)",
        "sqlite orm",
        "sqlite engine",
        10.0,
    ),
    (
        "sqlite_2p",
        "SQLite: engine ×2 / engine ×1 (throughput)",
        "sqlite engine ×1",
        "sqlite engine ×2",
        None,
    ),
    (
        "sqlite_4p",
        "SQLite: engine ×4 / engine ×1 (throughput)",
        "sqlite engine ×1",
        "sqlite engine ×4",
        None,
    ),
    (
        "pg_floor_share",
        "PostgreSQL: engine / one-round-trip floor (share)",
        "postgresql floor",
        "postgresql engine",
        0.5,
    ),
    (
        "pg_floor_each_share",
        "PostgreSQL: engine / floor with a trip each (share)",
        "postgresql floor_each",
        "postgresql engine",
        None,
    ),
    (
        "pg_vs_orm",
        "PostgreSQL: engine / transitions + ORM (× faster)",
        "postgresql orm",
        "postgresql engine",
        None,
    ),
    (
        "pg_2p",
        "PostgreSQL: engine ×2 / engine ×1 (throughput)",
        "postgresql engine ×1",
        "postgresql engine ×2",
        None,
    ),
    (
        "pg_4p",
        "PostgreSQL: engine ×4 / engine ×1 (throughput)",
        "postgresql engine ×1",
        "postgresql engine ×4",
        2.0,
    ),
]


def summarise(
    results: list[dict[str, dict[str, Any]]],
    n: int,
    writes: dict[str, dict[str, int]],
    order: list[Variant],
) -> dict[str, Any]:
    calls = n * len(LABELS)
    out_variants = {
        v.name: {
            "backend": v.backend,
            "kind": v.kind,
            "processes": v.processes,
            "calls_per_s": statistics.median(calls / r[v.name]["seconds"] for r in results),
            "rounds_calls_per_s": [calls / r[v.name]["seconds"] for r in results],
        }
        for v in order
    }
    ratios = {}
    for key, what, slower, faster, target in RATIOS:
        if slower not in out_variants or faster not in out_variants:
            continue
        each = [r[slower]["seconds"] / r[faster]["seconds"] for r in results]
        median = statistics.median(each)
        ratios[key] = {
            "what": what,
            "median": median,
            "rounds": each,
            "target": target,
            "met": None if target is None else median >= target,
        }
    per_call: dict[str, dict[str, dict[str, float]]] = {}
    for b in writes:
        kinds = [
            k
            for k in ("floor", "floor_each", "engine", "orm", "spiff")
            if f"{b} {k}" in out_variants
        ]
        per_call[b] = {
            label: {
                "writes": writes[b][label] / n,
                **{
                    f"{k}_us": statistics.median(r[f"{b} {k}"]["per_label"][label] for r in results)
                    / n
                    * 1e6
                    for k in kinds
                },
                "engine_share": statistics.median(
                    r[f"{b} floor"]["per_label"][label] / r[f"{b} engine"]["per_label"][label]
                    for r in results
                ),
            }
            for label in LABELS
        }
    return {
        "cases": n,
        "calls_per_case": len(LABELS),
        "rounds": len(results),
        "variants": out_variants,
        "ratios": ratios,
        "per_call": per_call,
    }


def meta(
    cases: int, rounds: int, load_before: tuple[float, float, float], server: str | None
) -> dict[str, Any]:
    versions = {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        **{
            name: package_version(name)
            for name in ("SQLAlchemy", "psycopg", "transitions", "pydantic")
        },
    }
    if importlib.util.find_spec("SpiffWorkflow"):
        versions["SpiffWorkflow"] = package_version("SpiffWorkflow")
    if server:
        versions["postgresql"] = server
    return {
        "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": f"python -m bench.compare --cases {cases} --rounds {rounds}",
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}",
        "load_before": list(load_before),
        "load_after": list(os.getloadavg()),
        "versions": versions,
    }


def profile_engine(work: Path, n: int) -> dict[str, Any]:
    """cProfile of the engine driving ``n`` claims on a fresh SQLite database."""
    url = f"sqlite:///{work / 'profile.db'}"
    clock = FakeClock(START)
    app = EngineApp(url, clock)
    prof = cProfile.Profile()
    try:
        prof.enable()
        drive(app, clock, range(n), _quiet)
        prof.disable()
    finally:
        app.close()
    stats = pstats.Stats(prof)
    calls = n * len(LABELS)
    rows = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _cc, _nc, tt, _ct, _callers in rows.values())

    def where(key: tuple[str, int, str]) -> str:
        file, line, func = key
        if file == "~":
            return func
        file = file.replace(str(ROOT) + "/", "")
        if "site-packages/" in file:
            file = file.split("site-packages/", 1)[1]
        return f"{file}:{line}({func})"

    top = sorted(rows.items(), key=lambda kv: kv[1][2], reverse=True)[:15]
    sql = sum(
        tt for key, (_cc, _nc, tt, _ct, _callers) in rows.items() if "sqlite3.Cursor" in key[2]
    )
    return {
        "cases": n,
        "profiled_us_per_call": total / calls * 1e6,
        "sqlite_share": sql / total,
        "top": [
            {
                "function": where(key),
                "own_us_per_call": tt / calls * 1e6,
                "cum_us_per_call": ct / calls * 1e6,
                "calls_per_call": nc / calls,
            }
            for key, (_cc, nc, tt, ct, _callers) in top
        ],
    }


# -- the report ------------------------------------------------------------------------


def _num(x: float) -> str:
    return f"{x:,.0f}"


def section(fig: dict[str, Any], claim: dict[str, dict[str, Any]]) -> str:
    """This benchmark's section of docs/benchmarks.md, from its figures and the claim
    path's (``claim``: backend -> bench.claim_path's JSON)."""
    run_ = fig["run"]
    v = run_["versions"]
    lines = [
        "## Side by side: baoflow, its floor, transitions + ORM, SpiffWorkflow (issue #14)",
        "",
        "Generated by `bench/compare.py` (`make bench`; hand-written notes go below this",
        "section's end marker). The figures are also in [bench-compare.json](bench-compare.json).",
        "",
        "```",
        f"make bench   # .venv/bin/python -m bench.compare --cases {fig['cases']} --rounds {fig['rounds']} --json docs/bench-compare.json, then bench.claim_path ×2",
        "```",
        "",
        f"Run {run_['at']}: {run_['machine']}; load average "
        + " ".join(f"{x:.2f}" for x in run_["load_before"])
        + " before, "
        + " ".join(f"{x:.2f}" for x in run_["load_after"])
        + " after. "
        + ", ".join(f"{k} {val}" for k, val in v.items())
        + ".",
        "",
        f"**The five-step claim with one deadline per state** (`bench/five_step.toml`):"
        f" {fig['cases']:,} claims × {fig['calls_per_case']} calls (`open_case`, `verify`,"
        " `apply`, `complete_materials`, `close`), each call one commit with a version"
        " check and a history row; the deadline of each state armed on entry and stopped"
        f" on exit. {fig['rounds']} rounds, the variants alternating in each (the order"
        " reversed every other round), each on a fresh database; medians over the rounds."
        " What each variant does is in the module docstrings of `bench/compare.py` and"
        " `bench/rivals.py`.",
        "",
        "`engine` runs in the benchmark's process and is timed per call, as `floor`, `orm`"
        " and `spiff` are; `engine ×P` is P spawned processes timed by the wall clock from"
        " the first start to the last finish (×1 is the base of the process ratios).",
        "",
        "| variant | processes | calls/s | rounds |",
        "|---|---:|---:|---|",
    ]
    for name, var in fig["variants"].items():
        lines.append(
            f"| {name} | {var['processes']} | "
            f"{_num(var['calls_per_s'])} | "
            + ", ".join(_num(x) for x in var["rounds_calls_per_s"])
            + " |"
        )
    lines += [
        "",
        "Ratios, each the median of the ratios taken within a round:",
        "",
        "| ratio | median | rounds | target | |",
        "|---|---:|---|---:|---|",
    ]
    for r in fig["ratios"].values():
        share = "share" in r["what"]

        def fmt(x: float, share: bool = share) -> str:
            return f"{x:.0%}" if share else f"{x:.2f}×"

        target = "" if r["target"] is None else "≥ " + fmt(r["target"])
        verdict = "" if r["met"] is None else ("**met**" if r["met"] else "**missed**")
        lines.append(
            f"| {r['what']} | **{fmt(r['median'])}** | "
            + ", ".join(fmt(x) for x in r["rounds"])
            + f" | {target} | {verdict} |"
        )
    for b, calls in fig["per_call"].items():
        kinds = [
            k
            for k in ("floor", "floor_each", "engine", "orm", "spiff")
            if f"{k}_us" in calls[LABELS[0]]
        ]
        lines += [
            "",
            f"Per call on {b} (µs, medians; writes = the engine's write statements per call):",
            "",
            "| call | writes | "
            + " | ".join(k.replace("_", " ") for k in kinds)
            + " | engine share |",
            "|---|---:|" + "---:|" * len(kinds) + "---:|",
        ]
        for label, c in calls.items():
            lines.append(
                f"| `{label}` | {c['writes']:.0f} | "
                + " | ".join(_num(c[f"{k}_us"]) for k in kinds)
                + f" | {c['engine_share']:.0%} |"
            )
    prof = fig.get("profile")
    if prof:
        lines += [
            "",
            f"Where the engine's time goes on SQLite (cProfile of {prof['cases']} claims, run"
            f" apart; {prof['profiled_us_per_call']:.0f} µs per call profiled, of which"
            f" `sqlite3` cursor calls {prof['sqlite_share']:.0%}; cProfile inflates Python-heavy"
            " code, so read the shares):",
            "",
            "| function | own µs/call | cumulative µs/call | calls per call |",
            "|---|---:|---:|---:|",
        ]
        for row in prof["top"]:
            lines.append(
                f"| `{row['function']}` | {row['own_us_per_call']:.1f} | "
                f"{row['cum_us_per_call']:.1f} | {row['calls_per_call']:.1f} |"
            )
    for b, figures in claim.items():
        lines += [
            "",
            f"**The real claim, report to payment** (`bench/claim_path.py`, {b},"
            f" docs/{CLAIM_JSON[b]}):",
            "",
            claim_path.table(figures),
        ]
    return "\n".join(lines) + "\n"


CLAIM_JSON = {"sqlite": "claim-path.json", "postgresql": "claim-path-postgresql.json"}


def write_doc(path: Path, text: str) -> None:
    """Put ``text`` between this benchmark's markers in ``path`` (at the end the first
    time), keeping everything outside them."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{BEGIN}\n{text}{END}\n"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        after = rest.split(END, 1)[1].lstrip("\n")
        new = head + block + ("\n" + after if after else "")
    else:
        new = old.rstrip("\n") + "\n\n" + block
    path.write_text(new, encoding="utf-8")


def render(json_path: Path, doc: Path) -> None:
    fig = json.loads(json_path.read_text(encoding="utf-8"))
    claim = {
        b: json.loads((json_path.parent / name).read_text(encoding="utf-8"))
        for b, name in CLAIM_JSON.items()
        if (json_path.parent / name).exists()
    }
    write_doc(doc, section(fig, claim))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.compare", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--cases", type=int, default=500, help="claims per variant per round (500)")
    p.add_argument("--rounds", type=int, default=5, help="rounds (5)")
    p.add_argument("--pg-url", default=PG_URL, help="the PostgreSQL server (BAOFLOW_BENCH_PG_URL)")
    p.add_argument("--no-postgresql", action="store_true", help="SQLite only")
    p.add_argument(
        "--processes",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[1, 2, 4],
        help="engine ×P variants on each database ('' for none; 1,2,4)",
    )
    p.add_argument("--profile", type=int, default=200, help="claims to profile after (0: none)")
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--doc", type=Path, help="rewrite this benchmark's section of this file")
    p.add_argument(
        "--render",
        action="store_true",
        help="no run: write --doc from --json (and the claim path's)",
    )
    args = p.parse_args(argv)
    if args.render:
        if not (args.json and args.doc):
            p.error("--render needs --json and --doc")
        render(args.json, args.doc)
        return 0
    spiff = importlib.util.find_spec("SpiffWorkflow") is not None
    if not spiff:
        print("SpiffWorkflow is not installed (pip install -e '.[bench]'): no spiff variant")
    figures = run(
        args.cases,
        args.rounds,
        backends=("sqlite",) if args.no_postgresql else ("sqlite", "postgresql"),
        pg_url=args.pg_url,
        spiff=spiff,
        processes=args.processes,
        profile=args.profile,
    )
    for r in figures["ratios"].values():
        print(
            f"{r['what']}: {r['median']:.3g}"
            + (
                ""
                if r["met"] is None
                else f" (target {r['target']:g}: {'met' if r['met'] else 'missed'})"
            )
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
        if args.doc:
            render(args.json, args.doc)
    elif args.doc:
        write_doc(args.doc, section(figures, {}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
