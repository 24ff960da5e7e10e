"""Benchmark of the dashboard's overview and the first page of its deadline list with
1,000,000 stored cases (issue #13: each under 200 ms, on SQLite and on PostgreSQL).

Run from the project root::

    .venv/bin/python -m bench.dashboard                      # 1,000,000 cases, both backends
    .venv/bin/python -m bench.dashboard --cases 100000 --backends sqlite

PostgreSQL comes from ``BAOFLOW_BENCH_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``), in a private schema dropped at the end.

The cases are ``bench/load.py``'s desk: real cases of the four workflows in every
state, driven through the engine at several ages up to 2026-05-06, each copied
set-based with its history, deadlines, timers and search keys (claims 70%, 70% of them
closed; four org units; 20 handlers, ``h0`` … ``h19`` by id). Then the clock moves on a
week and 500 more claims are opened "today" (one real one in ``materials_complete``,
copied), so today's intake and this week's are counted among the million — not all of
them, as a desk's day is not its whole history. (Runs before that loader, whose figures
are in docs/benchmarks.md, cloned 1,000,000 claims from one, with deadline rows only.)

Measured, each the median of ``--reps`` requests after one warm-up, alternating (the
garbage collected before each, so no call pays for the one before), through
the dashboard's ASGI app in process (Starlette's test client: the whole request — the
session cookie checked, the account read, the facade calls, the SVG drawn on the cached
layout, the page rendered), for a supervisor who sees their own unit (SH) and one who
sees every case (headquarters):

``overview``       ``GET /`` — every workflow's live diagram and counts.
``overview floor`` the facade calls the overview makes (``state_counts`` and three
                   ``case_flow`` per workflow, and the account read), no page: the least
                   the page can cost.
``deadlines``      ``GET /deadlines`` — the first 50 of the running deadlines, soonest
                   due first (the breached ones on top), in colour bands.
``deadlines floor`` ``running_deadlines(limit=51)`` as that viewer, and the account read.
``by handler``     ``GET /deadlines?handler=h7`` — the same page filtered to one of the
                   20 handlers the cases are spread over (~50,000 cases each at a
                   million).
``by handler floor`` ``running_deadlines(limit=51, handler="h7")``, and the account read.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import time as day_start
from pathlib import Path
from typing import Any

from baoflow.engine import SHANGHAI
from starlette.testclient import TestClient

from baoflow.api.app import create_app
from baoflow.dashboard import create_dashboard
from bench.load import PG_DEFAULT, clone, drive, load, open_desk, pg_schema, report_loaded

PASSWORD = "bench password"
VIEWERS = {
    "SH supervisor": ("s01", ("supervisor",), "SH"),
    "headquarters": ("hq1", ("headquarters",), None),
}


def logged_in(client: TestClient, user: str) -> None:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    answer = client.post(
        "/login",
        data={"csrf": token.group(1), "user_id": user, "password": PASSWORD, "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def run_backend(url: str, n: int, reps: int) -> dict[str, dict[str, float]]:
    eng, clock = open_desk(url)
    try:
        report_loaded(load(eng, n - 500))
        clock.advance(timedelta(days=7))
        today = drive(eng, "claim", "materials_complete")
        # all Shanghai's, as the one driven: both viewers see the day's 500
        clone(eng.store.engine, today.id, 499, index=eng.workflow("claim").index, units=None)
        for user, roles, unit in VIEWERS.values():
            eng.add_user(user, user, PASSWORD, roles=roles, org_unit=unit)
        app = create_app(eng, metrics=False, dashboard=create_dashboard(eng, secret="bench"))
        now = clock.now().astimezone(SHANGHAI)
        midnight = datetime.combine(now.date(), day_start(), SHANGHAI)
        monday = midnight - timedelta(days=now.weekday())
        results: dict[str, dict[str, float]] = {}
        for label, (user, _, _) in VIEWERS.items():
            client = TestClient(app)
            logged_in(client, user)
            actor = eng.user(user).actor

            def overview_floor(actor: Any = actor, user: str = user) -> None:
                eng.user(user)
                for d in eng.workflows():
                    scope = eng.scope(actor)
                    unit = None if d.name in scope.every_case_of else scope.org_unit
                    eng.state_counts(d.name, org_unit=unit)
                    eng.case_flow(d.name, since=midnight, visible_to=actor)
                    eng.case_flow(d.name, since=monday, visible_to=actor)

            def deadlines_floor(actor: Any = actor, user: str = user) -> None:
                eng.user(user)
                eng.running_deadlines(limit=51, visible_to=actor)

            def handler_floor(actor: Any = actor, user: str = user) -> None:
                eng.user(user)
                eng.running_deadlines(limit=51, handler="h7", visible_to=actor)

            def page(path: str, client: TestClient = client) -> Callable[[], None]:
                def get() -> None:
                    answer = client.get(path)
                    assert answer.status_code == 200, answer.text[:500]

                return get

            calls: dict[str, Callable[[], None]] = {
                "overview": page("/"),
                "overview floor": overview_floor,
                "deadlines": page("/deadlines"),
                "deadlines floor": deadlines_floor,
                "by handler": page("/deadlines?handler=h7"),
                "by handler floor": handler_floor,
            }
            for fn in calls.values():
                fn()  # warm: the layouts made, the statements prepared
            times: dict[str, list[float]] = {k: [] for k in calls}
            for _ in range(reps):
                for name, fn in calls.items():
                    gc.collect()  # the last call's garbage is not charged to this one
                    t = time.perf_counter()
                    fn()
                    times[name].append((time.perf_counter() - t) * 1000)
            results[label] = {k: statistics.median(v) for k, v in times.items()}
            shown = client.get("/").text
            intake = re.search(r'data-count="today">(\d+)<', shown)
            results[label]["today"] = float(intake.group(1)) if intake else -1
            client.close()
        return results
    finally:
        eng.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        print(f"{backend}: {args.cases:,} cases")
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                results = run_backend(f"sqlite:///{Path(tmp) / 'bench.db'}", args.cases, args.reps)
        else:
            with pg_schema(os.environ.get("BAOFLOW_BENCH_PG_URL", PG_DEFAULT), "dashboard") as url:
                results = run_backend(url, args.cases, args.reps)
        for label, r in results.items():
            print(
                f"  {label} (sees {r['today']:.0f} opened today), medians of {args.reps}: "
                f"overview {r['overview']:.1f} ms (floor {r['overview floor']:.1f} ms), "
                f"deadlines {r['deadlines']:.1f} ms (floor {r['deadlines floor']:.1f} ms), "
                f"by handler {r['by handler']:.1f} ms (floor {r['by handler floor']:.1f} ms)"
            )


if __name__ == "__main__":
    main()
