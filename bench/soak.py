"""A soak (issue #15 item 7): minutes of claims opened and moved forward at a steady rate
by several processes while four timer workers drain what falls due, on PostgreSQL and
SQLite; errors, memory per process and lateness per minute, and at the end every timer
that came due fired exactly once and every case equal to its history.

Run from the project root (run by hand: a soak is not a test)::

    .venv/bin/python -m bench.soak --backends postgresql --minutes 5
    .venv/bin/python -m bench.soak --backends sqlite --minutes 3
    .venv/bin/python -m bench.soak --minutes 1 --json -        # both, a short look

PostgreSQL comes from ``BAOFLOW_BENCH_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``); the soak runs in a private schema it
creates and drops (``bench/load.py``'s ``pg_schema``). SQLite runs in a file of a
temporary folder.

**The firers.** ``--firers`` processes (4) each make one call every ``1 / --rate``
seconds on a fixed schedule (10 calls/s each), each call ``open_case`` or ``fire()``
with an idempotency key of its own, a claim's calls being the real claim path of
``bench/claim_path.py`` (its payloads, the times in them taken from the clock) with the
major-case report in it::

    open_case (a major claim: an expected loss over 500,000 yuan) → verify → apply →
    receive_materials → complete_materials      … the case waits …
    report_to_headquarters → hand_over → insurer_requests_materials →
    insurer_confirms_receipt → insurer_decides → insurer_pays (closed)

Every ``--retry-every``-th call (10) is sent a second time with its key, as a client that
lost the answer would, and must return the same case, version and state.

**The claim clock.** A claim is opened on a clock of its own that stands 12 hours less
``--lead`` seconds (5) in the past — a report taken in the night and entered now — and
every later call on the real clock. Its 24-hour major-case report (细则第四条(二)) warns
at half time: so each claim's warning falls due ``--lead`` seconds after it was opened,
on the real clock, and the warnings fall due at the rate the claims are opened. The
case waits in ``materials_complete`` ``--gap`` seconds (20) past its warning before its
second half, so a firer and a worker do not work on one case at once; the report to
headquarters then stops the 24 hours (its breach and escalations are cancelled). Every
other deadline the path arms (the hand-over's 3 working days, the insurer's 30 days …)
is stopped by the path long before it would fall due. No claim is opened in the last
``lead + gap + 5`` seconds, so every second half is done within the run.

**The workers.** Four processes (``--workers``) each run ``engine.scheduler.Worker``
(tick ``--tick``, 0.5 s) on the system clock, from the start to the end of the run and
until nothing due is left. Lateness is the engine's own ``fired_at − due_at`` (the
instant the worker's claim read the clock, minus the due time).

**Per minute** (of the run's wall clock): the calls made and their duration (p50, p99),
the errors — any exception a call raised, by type, and any record a worker logged with
an exception or at ERROR (a worker catches and logs what fails) — the timers fired and
their lateness (p50, p99, max), and every process's VmRSS (``/proc/PID/status``) at the
start and at the end of each minute. The machine's load average too: the box is shared.

**At the end**, from the database: no timer due and still pending; each claim's warning
fired once, with one ``deadline_warning`` history row and one outbox notice; no timer
skipped; every case's history numbered 1..version without gaps, its last row in the
case's state, and its events those its firer fired, in order (a call fired twice would
add a row); one idempotency key stored per keyed call that succeeded.

**Targets**: no error; memory flat (each process's VmRSS at the end of the last minute
within +10% of the end of the first: the first minute warms the caches); lateness p99
within 1 s at a 0.5 s tick. ``--json`` (docs/soak.json) keeps the figures per database,
each run replacing its own; the markdown table is printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from baoflow.engine import Case, ChineseOfficialCalendar, Engine, SystemClock, open_engine
from baoflow.engine.store import normalise_url
from baoflow.workflows.examples import report
from sqlalchemy.pool import NullPool

from bench.claim_path import AGENT, HANDLER, PATH, policies
from bench.load import SUPERVISOR, pg_schema
from bench.timers import cpu_model, engine_commit

ROOT = Path(__file__).resolve().parent.parent
URL_ENV = "BAOFLOW_BENCH_PG_URL"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
CTX = mp.get_context("spawn")  # a fresh interpreter each, as separate processes would be
WAIT = 120.0  # seconds any wait on a child may take beyond the run before giving up

#: The major-case report's 24 hours warn at half time (workflows/claim.toml).
WARNS_AFTER = timedelta(hours=12)
TARGET_P99 = 1.0  # seconds late, at a 0.5 s tick
TARGET_RSS_GROWTH = 0.10  # the last minute's VmRSS over the first minute's, per process

#: The first half of a claim, then (after its warning has fired) the second.
FIRST = ["open_case", "verify", "apply", "receive_materials", "complete_materials"]
SECOND = ["report_to_headquarters"] + [event for event, _ in PATH[4:]]
PAYLOADS: dict[str, dict[str, Any] | None] = {
    **dict(PATH),
    "report_to_headquarters": {"summary": "预计损失80万元，超过重大案件标准"},
}
HQ_REPORTER = {"report_to_headquarters": SUPERVISOR}


class ReportClock:
    """The real clock, or ``back`` behind it (the instant a report was taken)."""

    def __init__(self) -> None:
        self._real = SystemClock()
        self.back = timedelta(0)

    def now(self) -> datetime:
        return self._real.now() - self.back


def vm_rss_kb(pid: int) -> int | None:
    """VmRSS of process ``pid`` in KiB (None once it has gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def quantiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p99 and max of ``values`` (nearest rank), None each when there are none."""
    if not values:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return {"p50": rank(0.5), "p99": rank(0.99), "max": ordered[-1]}


def minute_of(t0: float, at: float, minutes: int) -> int:
    """The run's minute (0-based) an instant falls in; the tail counts to the last."""
    return min(minutes - 1, max(0, int((at - t0) // 60)))


# --- the firers (module level: spawned processes import them) -------------------------
@dataclass
class Claim:
    """One claim of a firer: its calls to come, and the events that were fired."""

    serial: int
    policy: str
    steps: list[str] = field(default_factory=lambda: list(FIRST))
    case: Case | None = None  # as the last call left it, until its calls are done
    case_id: int | None = None
    state: str | None = None
    fired: list[str] = field(default_factory=list)
    ready_at: float = 0.0  # when its next call may be made (wall clock, time.time())


@dataclass
class Minute:
    calls: int = 0
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)


def _payload(event: str, case: Any, now: datetime) -> dict[str, Any]:
    """The path's payload for ``event``, its instants an hour before ``now``."""
    template = PAYLOADS[event]
    if template is None:  # receive_materials: the case's own list
        return {"items": case.data["materials"]["required"]}
    earlier = (now - timedelta(hours=1)).isoformat()
    return {k: earlier if k.endswith("_at") else v for k, v in template.items()}


class Firer:
    """Makes one call every ``1 / rate`` seconds from ``t0`` to ``end``, claims in two
    halves (module docstring)."""

    def __init__(self, eng: Engine, clock: ReportClock, name: str, args: Any) -> None:
        self.eng, self.clock, self.name, self.args = eng, clock, name, args
        self.lead = timedelta(seconds=args.lead)
        self.claims: list[Claim] = []
        self.current: Claim | None = None
        self.waiting: list[Claim] = []  # their first half done, in the order opened
        self.calls = 0
        self.keyed_ok = 0
        self.behind = 0.0  # the most a call started after its slot, seconds

    def run(self, t0: float, minutes: int, policies: Sequence[str]) -> list[Minute]:
        per = [Minute() for _ in range(minutes)]
        end = t0 + minutes * 60
        last_open = end - (self.args.lead + self.args.gap + 5)
        fresh = iter(policies)
        slot = 0
        while True:
            due = t0 + slot / self.args.rate
            slot += 1
            now = time.time()
            if due > now:
                time.sleep(due - now)
                now = due
            self.behind = max(self.behind, now - due)
            claim = self._next(now, last_open, fresh)
            if claim is None:
                if not self.waiting and now >= last_open:
                    return per
                continue
            self._call(claim, per[minute_of(t0, now, minutes)])

    def _next(self, now: float, last_open: float, fresh: Iterator[str]) -> Claim | None:
        if self.current is not None and self.current.steps:
            return self.current
        if self.waiting and self.waiting[0].ready_at <= now:
            self.current = self.waiting.pop(0)
            return self.current
        if now < last_open:
            self.current = Claim(len(self.claims), next(fresh))
            self.claims.append(self.current)
            return self.current
        self.current = None
        return None

    def _call(self, claim: Claim, minute: Minute) -> None:
        step = claim.steps.pop(0)
        self.calls += 1
        started = time.perf_counter()
        try:
            send = self._request(claim, step, f"soak-{self.name}-{claim.serial}-{step}")
            case = send()
            minute.seconds.append(time.perf_counter() - started)
            first = (case.id, case.version, case.state)
            if self.calls % self.args.retry_every == 0:  # the client lost the answer
                minute.retries += 1
                again = send()
                if (again.id, again.version, again.state) != first:
                    raise RuntimeError(f"the retry of {step} answered {again}, not {first}")
        except Exception as exc:  # any exception is an error; the claim stops here
            minute.errors[type(exc).__name__] += 1
            claim.steps.clear()
            if self.args.verbose:
                traceback.print_exc()
        else:
            claim.fired.append(step)
            claim.case, claim.case_id, claim.state = case, case.id, case.state
            if step == FIRST[-1]:
                claim.steps = list(SECOND)
                claim.ready_at = time.time() + self.args.lead + self.args.gap
                self.waiting.append(claim)
                self.current = None  # it waits for its warning
        if not claim.steps:
            claim.case = None  # a firer keeps no case it is done with
        minute.calls += 1

    def _request(self, claim: Claim, step: str, key: str) -> Callable[[], Case]:
        """The call, made once (and again, the same, for a retry)."""
        if step != "open_case":
            assert claim.case is not None
            case_id = claim.case.id
            data = _payload(step, claim.case, self.clock.now())
            actor = HQ_REPORTER.get(step, HANDLER)
            return lambda: self.eng.fire(case_id, step, actor, data, idempotency_key=key)
        back = WARNS_AFTER - self.lead  # the report was taken in the night
        taken = self.clock.now() - back
        data = report(
            policy={"number": claim.policy, "insured_name": "张伟"},
            incident={
                "time": (taken - timedelta(hours=2)).isoformat(),
                "cause": "accident",
                "expected_amount": "800000",
            },
        )

        def open_case() -> Case:
            self.clock.back = back
            try:
                result = self.eng.open_case("claim", data, AGENT, idempotency_key=key)
            finally:
                self.clock.back = timedelta(0)
            if not result.created:
                raise RuntimeError(f"{claim.policy}: the intake found an earlier report")
            return result.case

        return open_case


def _firer(
    url: str, name: str, args: Any, numbers: list[str], go: Any, t0: Any, release: Any, out: Any
) -> None:
    eng = None
    try:
        clock = ReportClock()
        eng = open_engine(url, clock=clock, calendar=ChineseOfficialCalendar(), migrate=False)
        with eng.store.read() as tx:  # warm the connection so all start level
            tx.next_due()
        firer = Firer(eng, clock, name, args)
        out.put((name, "ready"))
        if not go.wait(WAIT):
            raise TimeoutError("no start signal")
        per = firer.run(t0.value, args.minutes, numbers)
        out.put(
            (
                name,
                {
                    "minutes": [
                        {
                            "calls": m.calls,
                            "retries": m.retries,
                            "errors": dict(m.errors),
                            "call": quantiles(m.seconds),
                        }
                        for m in per
                    ],
                    "claims": [
                        {"case_id": c.case_id, "fired": c.fired, "state": c.state}
                        for c in firer.claims
                    ],
                    "calls": firer.calls,
                    "behind_s": firer.behind,
                },
            )
        )
        release.wait(WAIT + args.minutes * 60)  # the last minute's RSS is read first
    except BaseException:
        out.put((name, "error: " + traceback.format_exc()))
    finally:
        if eng is not None:
            eng.close()


# --- the workers ------------------------------------------------------------------------
class Tally(logging.Handler):
    """Counts, per minute of the run, what a worker logged with an exception or at ERROR
    (errors, by exception type or logger) and at WARNING (by logger)."""

    def __init__(self, minutes: int) -> None:
        super().__init__(logging.INFO)
        self.t0 = time.time()
        self.minutes = minutes
        self.errors = [Counter[str]() for _ in range(minutes)]
        self.warnings = [Counter[str]() for _ in range(minutes)]
        self.races = [0] * minutes
        self.first: list[str] = []  # the first few, word for word

    def emit(self, record: logging.LogRecord) -> None:
        m = minute_of(self.t0, record.created, self.minutes)
        if record.exc_info and record.exc_info[0] is not None:
            self.errors[m][record.exc_info[0].__name__] += 1
        elif record.levelno >= logging.ERROR:
            self.errors[m][f"ERROR from {record.name}"] += 1
        elif record.levelno >= logging.WARNING:
            self.warnings[m][record.name] += 1
        elif "concurrent change" in record.getMessage():
            self.races[m] += 1
            return
        else:
            return
        if len(self.first) < 5:
            self.first.append(self.format(record))


def _worker(url: str, name: str, args: Any, go: Any, t0: Any, stop: Any, out: Any) -> None:
    from baoflow.engine.scheduler import Worker

    eng = None
    tally = Tally(args.minutes)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(tally)
    try:
        eng = open_engine(url, calendar=ChineseOfficialCalendar(), migrate=False)
        worker = Worker(eng, tick=args.tick, name=name, digest=None)
        out.put((name, "ready"))
        if not go.wait(WAIT):
            raise TimeoutError("no start signal")
        tally.t0 = t0.value
        worker.start()
        stop.wait(WAIT + args.minutes * 60 + 60)
        worker.stop()
        out.put(
            (
                name,
                {
                    "fired": worker.fired,
                    "errors": [dict(c) for c in tally.errors],
                    "warnings": [dict(c) for c in tally.warnings],
                    "races": tally.races,
                    "first": tally.first,
                },
            )
        )
    except BaseException:
        out.put((name, "error: " + traceback.format_exc()))
    finally:
        if eng is not None:
            eng.close()


def _collect(out: Any, names: Sequence[str], timeout: float) -> dict[str, Any]:
    got: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while len(got) < len(names):
        name, what = out.get(timeout=max(1.0, deadline - time.monotonic()))
        if isinstance(what, str) and what.startswith("error"):
            raise RuntimeError(f"{name} failed:\n{what}")
        got[name] = what
    return got


# --- one soak ---------------------------------------------------------------------------
@contextmanager
def database(backend: str, base: str) -> Iterator[str]:
    """A fresh database of its own: a private PostgreSQL schema, or a temporary SQLite file."""
    if backend == "postgresql":
        with pg_schema(base, "soak") as url:
            yield url
        return
    with tempfile.TemporaryDirectory(prefix="baoflow-soak-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'soak.db'}"


def policy_numbers(url: str, firers: int, per_firer: int) -> list[list[str]]:
    """A policy of its own for every claim a firer may open (the intake would take a
    second report of one policy and incident day for the first), valid this year."""
    today = datetime.now(UTC).date()
    template = policies(1)[0]
    numbers = [[f"P-SOAK-{f}-{i:06d}" for i in range(per_firer)] for f in range(firers)]
    eng = open_engine(url, calendar=ChineseOfficialCalendar())  # migrates
    try:
        eng.policies.add(  # type: ignore[attr-defined]
            [
                dataclasses.replace(
                    template,
                    number=n,
                    start_date=today - timedelta(days=180),
                    end_date=today + timedelta(days=180),
                )
                for group in numbers
                for n in group
            ]
        )
    finally:
        eng.close()
    return numbers


def soak(backend: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    minutes = args.minutes
    per_firer = math.ceil(args.rate * minutes * 60 / len(FIRST + SECOND) * 1.2) + 10
    numbers = policy_numbers(url, args.firers, per_firer)
    go, stop, release = CTX.Event(), CTX.Event(), CTX.Event()
    t0 = CTX.Value("d", 0.0)
    out = CTX.Queue()
    procs: dict[str, Any] = {}
    for i in range(args.workers):
        name = f"worker-{i + 1}"
        procs[name] = CTX.Process(
            target=_worker, args=(url, name, args, go, t0, stop, out), daemon=True
        )
    for i in range(args.firers):
        name = f"firer-{i + 1}"
        procs[name] = CTX.Process(
            target=_firer,
            args=(url, name, args, numbers[i], go, t0, release, out),
            daemon=True,
        )
    load = {"before": os.getloadavg()}
    try:
        for p in procs.values():
            p.start()
        _collect(out, list(procs), WAIT)
        rss: dict[str, list[int | None]] = {n: [vm_rss_kb(p.pid)] for n, p in procs.items()}
        loads = []
        t0.value = time.time()
        go.set()
        print(f"{backend}: started {len(procs)} processes; {minutes} minute(s)", flush=True)
        for m in range(1, minutes + 1):
            time.sleep(max(0.0, t0.value + 60 * m - time.time()))
            for n, p in procs.items():
                rss[n].append(vm_rss_kb(p.pid))
            loads.append(os.getloadavg()[0])
            print(f"  minute {m}: load {loads[-1]:.2f}", flush=True)
        firers = [n for n in procs if n.startswith("firer")]
        fired_by = _collect(out, firers, WAIT)
        release.set()
        pending_due = wait_for_drain(url, WAIT)
        stop.set()
        workers = _collect(out, [n for n in procs if n.startswith("worker")], WAIT)
        ended = time.time()
    finally:
        go.set()
        release.set()
        stop.set()
        for p in procs.values():
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join(timeout=10)
    load["after"] = os.getloadavg()
    checks = check(url, fired_by)
    checks["due_left_pending"] = pending_due
    return figures(backend, url, args, t0.value, ended, fired_by, workers, rss, loads, load, checks)


def wait_for_drain(url: str, timeout: float) -> int:
    """Wait until no timer that is due is still pending; how many are left then."""
    sql = sa.create_engine(normalise_url(url), poolclass=NullPool)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with sql.connect() as conn:
                left = int(
                    conn.execute(
                        sa.text(
                            "SELECT count(*) FROM timers WHERE status = 'pending' AND due_at <= :n"
                        ),
                        {"n": _db_time(sql, datetime.now(UTC))},
                    ).scalar_one()
                )
            if left == 0 or time.monotonic() > deadline:
                return left
            time.sleep(0.5)
    finally:
        sql.dispose()


def _db_time(sql: sa.Engine, at: datetime) -> Any:
    """An instant as the timers table compares it (SQLite keeps naive UTC text)."""
    if sql.dialect.name == "postgresql":
        return at
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ")


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --- the checks at the end --------------------------------------------------------------
def check(url: str, fired_by: dict[str, Any]) -> dict[str, Any]:
    """What the database holds after the soak, against what the firers did."""
    sql = sa.create_engine(normalise_url(url), poolclass=NullPool)
    try:
        with sql.connect() as conn:
            run = conn.execute
            cases = {
                int(i): (s, int(v))
                for i, s, v in run(sa.text("SELECT id, state, version FROM cases"))
            }
            history: dict[int, list[tuple[int, str, str]]] = {}
            for case_id, seq, event, to_state in run(
                sa.text("SELECT case_id, seq, event, to_state FROM history ORDER BY case_id, seq")
            ):
                history.setdefault(int(case_id), []).append((int(seq), event, to_state))
            statuses: dict[str, int] = {
                str(k): int(v)
                for k, v in run(sa.text("SELECT status, count(*) FROM timers GROUP BY status"))
            }
            warnings = Counter(
                int(c)
                for (c,) in run(
                    sa.text(
                        "SELECT case_id FROM timers WHERE status = 'fired' "
                        "AND rule = 'major_report' AND kind = 'warning'"
                    )
                )
            )
            fired_total = int(statuses.get("fired", 0))
            notices = Counter(
                int(c)
                for (c,) in run(
                    sa.text("SELECT case_id FROM outbox WHERE template = 'deadline_warning'")
                )
            )
            keys = int(run(sa.text("SELECT count(*) FROM idempotency_keys")).scalar_one())
    finally:
        sql.dispose()
    problems: list[str] = []
    claims = [c for reply in fired_by.values() for c in reply["claims"]]
    keyed = sum(len(c["fired"]) for c in claims)
    for case_id, (state, version) in cases.items():
        rows = history.get(case_id, [])
        if [r[0] for r in rows] != list(range(1, version + 1)):
            problems.append(f"case {case_id}: history seqs are not 1..{version}")
        elif rows[-1][2] != state:
            problems.append(f"case {case_id}: in {state}, its last history row says {rows[-1][2]}")
    timer_rows = 0
    for c in claims:
        if c["case_id"] is None:
            continue
        case_id = int(c["case_id"])
        events = [e for _, e, _ in history.get(case_id, [])]
        timer_rows += sum(e.startswith("deadline_") for e in events)
        called = [
            e for e in events if e not in ("open", "register") and not e.startswith("deadline_")
        ]
        if ["open_case", *called] != c["fired"]:
            problems.append(f"case {case_id}: history {called}, fired {c['fired']}")
        if cases.get(case_id, (None, 0))[0] != c["state"]:
            problems.append(f"case {case_id}: in {cases.get(case_id)}, its firer saw {c['state']}")
        if "report_to_headquarters" in c["fired"] and warnings[case_id] != 1:
            problems.append(f"case {case_id}: its warning fired {warnings[case_id]} time(s)")
        if (
            warnings[case_id] != notices[case_id]
            or events.count("deadline_warning") != warnings[case_id]
        ):
            problems.append(
                f"case {case_id}: {warnings[case_id]} warning(s) fired, "
                f"{events.count('deadline_warning')} history row(s), {notices[case_id]} notice(s)"
            )
    if timer_rows != fired_total:
        problems.append(f"{fired_total} timers fired, {timer_rows} deadline history rows")
    if keys != keyed:
        problems.append(f"{keys} idempotency keys stored for {keyed} keyed calls that succeeded")
    return {
        "cases": len(cases),
        "claims": len(claims),
        "closed": sum(c["state"] == "closed" for c in claims),
        "timers": {str(k): int(v) for k, v in statuses.items()},
        "warnings_fired": sum(warnings.values()),
        "keys": keys,
        "problems": problems[:20],
        "problem_count": len(problems),
    }


# --- the figures --------------------------------------------------------------------------
def lateness_rows(url: str, t0: float, minutes: int) -> tuple[list[list[float]], list[int]]:
    """Per minute (of its due time): the fired timers' lateness; per minute of firing:
    how many fired."""
    sql = sa.create_engine(normalise_url(url), poolclass=NullPool)
    late: list[list[float]] = [[] for _ in range(minutes)]
    fired = [0] * minutes
    try:
        with sql.connect() as conn:
            for due, at in conn.execute(
                sa.text("SELECT due_at, fired_at FROM timers WHERE status = 'fired'")
            ):
                due_at, fired_at = _aware(due), _aware(at)
                late[minute_of(t0, due_at.timestamp(), minutes)].append(
                    (fired_at - due_at).total_seconds()
                )
                fired[minute_of(t0, fired_at.timestamp(), minutes)] += 1
    finally:
        sql.dispose()
    return late, fired


def figures(
    backend: str,
    url: str,
    args: argparse.Namespace,
    t0: float,
    ended: float,
    fired_by: dict[str, Any],
    workers: dict[str, Any],
    rss: dict[str, list[int | None]],
    loads: list[float],
    load: dict[str, tuple[float, float, float]],
    checks: dict[str, Any],
) -> dict[str, Any]:
    minutes = args.minutes
    late, fired = lateness_rows(url, t0, minutes)
    rows = []
    for m in range(minutes):
        errors: Counter[str] = Counter()
        for reply in fired_by.values():
            errors.update(reply["minutes"][m]["errors"])
        for reply in workers.values():
            errors.update({f"worker: {k}": v for k, v in reply["errors"][m].items()})
        warned: Counter[str] = Counter()
        for reply in workers.values():
            warned.update(reply["warnings"][m])
        p99s = [r["minutes"][m]["call"]["p99"] for r in fired_by.values()]
        p50s = [r["minutes"][m]["call"]["p50"] for r in fired_by.values()]
        rows.append(
            {
                "minute": m + 1,
                "calls": sum(r["minutes"][m]["calls"] for r in fired_by.values()),
                "retries": sum(r["minutes"][m]["retries"] for r in fired_by.values()),
                "call_p50_ms": _ms(statistics.median([x for x in p50s if x is not None] or [0])),
                "call_p99_ms": _ms(max([x for x in p99s if x is not None] or [0])),
                "errors": dict(errors),
                "worker_warnings": dict(warned),
                "races": sum(r["races"][m] for r in workers.values()),
                "timers_fired": fired[m],
                "lateness_s": quantiles(late[m]),
                "rss_kb": {n: v[m + 1] for n, v in rss.items()},
                "load1": loads[m],
            }
        )
    all_late = [x for m in late for x in m]
    # the end of the last minute against the end of the first (the first warms the caches)
    growth = {
        n: (v[-1] / v[1] - 1) if v[1] and v[-1] else None for n, v in rss.items() if len(v) > 2
    }
    errors_total = sum(sum(r["errors"].values()) for r in rows)
    summary = {
        "calls": sum(r["calls"] for r in rows),
        "retries": sum(r["retries"] for r in rows),
        "errors": errors_total,
        "timers_fired": sum(fired),
        "lateness_s": quantiles(all_late),
        "rss_growth": growth,
        "behind_s": max(r["behind_s"] for r in fired_by.values()),
        "seconds": ended - t0,
    }
    p99 = summary["lateness_s"]["p99"]
    targets = {
        "no_error": errors_total == 0,
        "memory_flat": (
            all(g is not None and g <= TARGET_RSS_GROWTH for g in growth.values())
            if growth
            else None  # one minute has nothing to compare
        ),
        "lateness": p99 is not None and p99 <= TARGET_P99,
        "exactly_once": checks["due_left_pending"] == 0
        and checks["problem_count"] == 0
        and checks["timers"].get("skipped", 0) == 0,
    }
    return {
        "backend": backend,
        "command": args.command,
        "date": datetime.fromtimestamp(t0, UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": cpu_model(),
            "load_before": [round(x, 2) for x in load["before"]],
            "load_after": [round(x, 2) for x in load["after"]],
            "commit": engine_commit(),
            "postgres": _pg_version(url) if backend == "postgresql" else None,
        },
        "settings": {
            "minutes": minutes,
            "firers": args.firers,
            "rate_per_firer": args.rate,
            "workers": args.workers,
            "tick_s": args.tick,
            "lead_s": args.lead,
            "gap_s": args.gap,
            "retry_every": args.retry_every,
        },
        "minutes": rows,
        "rss_start_kb": {n: v[0] for n, v in rss.items()},
        "summary": summary,
        "checks": checks,
        "worker_first_logs": {n: r["first"] for n, r in workers.items() if r["first"]},
        "targets": targets,
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _pg_version(url: str) -> str:
    sql = sa.create_engine(normalise_url(url), poolclass=NullPool)
    try:
        with sql.connect() as conn:
            return str(conn.exec_driver_sql("SHOW server_version").scalar_one())
    finally:
        sql.dispose()


# --- the report ---------------------------------------------------------------------------
def _s(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _met(ok: bool | None) -> str:
    return "not measured" if ok is None else "met" if ok else "not met"


def _mib(kb: int | None) -> str:
    return "–" if kb is None else f"{kb / 1024:.1f}"


def table(f: dict[str, Any]) -> str:
    s, c, m, t = f["settings"], f["checks"], f["machine"], f["targets"]
    firers = [n for n in f["rss_start_kb"] if n.startswith("firer")]
    workers = [n for n in f["rss_start_kb"] if n.startswith("worker")]

    def span(values: dict[str, int | None], names: list[str]) -> str:
        got = [v for n, v in values.items() if n in names and v is not None]
        return f"{_mib(min(got))}–{_mib(max(got))}" if got else "–"

    lines = [
        f"### {f['backend']}: {s['minutes']} minutes, {s['firers']} firers × {s['rate_per_firer']:g} "
        f"calls/s, {s['workers']} workers (tick {s['tick_s']:g} s)",
        "",
        f"`{f['command']}` — {f['date']}, {m['nproc']} CPUs ({m['cpu']}), load "
        f"{' '.join(map(str, m['load_before']))} before, {' '.join(map(str, m['load_after']))} "
        f"after" + (f", PostgreSQL {m['postgres']}" if m["postgres"] else "") + f"; {m['commit']}.",
        "",
        "| minute | calls | retried | call p50 / p99 ms | errors | timers fired | lateness p50 / p99 / max s "
        "| firers' RSS MiB | workers' RSS MiB | load |",
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
        f"| start | | | | | | | {span(f['rss_start_kb'], firers)} | {span(f['rss_start_kb'], workers)} | |",
    ]
    for r in f["minutes"]:
        errs = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "0"
        lat = r["lateness_s"]
        lines.append(
            f"| {r['minute']} | {r['calls']:,} | {r['retries']:,} | {r['call_p50_ms']:.1f} / "
            f"{r['call_p99_ms']:.1f} | {errs} | {r['timers_fired']:,} | {_s(lat['p50'])} / "
            f"{_s(lat['p99'])} / {_s(lat['max'])} | {span(r['rss_kb'], firers)} | "
            f"{span(r['rss_kb'], workers)} | {r['load1']:.2f} |"
        )
    u = f["summary"]
    lat = u["lateness_s"]
    growth = {n: g for n, g in u["rss_growth"].items() if g is not None}
    timers = ", ".join(f"{v:,} {k}" for k, v in sorted(c["timers"].items()))
    last = f["minutes"][-1]["rss_kb"]
    first = f["minutes"][0]["rss_kb"]
    lines += [
        "",
        "| process | VmRSS at start MiB | end of minute 1 | end of the last | last / first |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {n} | {_mib(start)} | {_mib(first[n])} | {_mib(last[n])} | "
            + (f"{growth[n]:+.1%}" if n in growth else "–")
            + " |"
            for n, start in f["rss_start_kb"].items()
        ),
        "",
        f"- **No error: {_met(t['no_error'])}** — {u['errors']} in {u['calls']:,} calls "
        f"({u['retries']:,} of them sent again with their key, as a client that lost the "
        "answer would) and in the workers' logs. The firers were at most "
        f"{u['behind_s']:.2f} s behind their schedule.",
        f"- **Memory flat (the last minute within +{TARGET_RSS_GROWTH:.0%} of the first, per "
        f"process): {_met(t['memory_flat'])}** — "
        + (
            f"from {min(growth.values()):+.1%} to {max(growth.values()):+.1%}."
            if growth
            else "one minute has nothing to compare."
        ),
        f"- **Lateness p99 ≤ {TARGET_P99:g} s: {_met(t['lateness'])}** — "
        f"{u['timers_fired']:,} timers fired, `fired_at − due_at` p50 {_s(lat['p50'])} s, p99 "
        f"{_s(lat['p99'])} s, max {_s(lat['max'])} s.",
        f"- **Every due timer fired exactly once, every case equal to its history: "
        f"{_met(t['exactly_once'])}** — {c['claims']:,} claims ({c['closed']:,} closed), "
        f"{c['warnings_fired']:,} warnings fired, each with its history row and notice; "
        f"timers {timers}; {c['due_left_pending']} due and still pending; "
        f"{c['keys']:,} idempotency keys stored; {c['problem_count']} problem(s)"
        + (": " + "; ".join(c["problems"][:3]) if c["problems"] else "")
        + ".",
    ]
    return "\n".join(lines)


def save(path: Path, result: dict[str, Any]) -> None:
    """Keep the figures per database: this run's replace its own."""
    old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    old[result["backend"]] = result
    path.write_text(json.dumps(old, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.soak", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--backends", default="postgresql,sqlite", help="postgresql,sqlite")
    p.add_argument("--minutes", type=int, default=5, help="how long each soak runs (5)")
    p.add_argument("--firers", type=int, default=4, help="processes opening and firing (4)")
    p.add_argument("--rate", type=float, default=10.0, help="calls per second per firer (10)")
    p.add_argument("--workers", type=int, default=4, help="timer worker processes (4)")
    p.add_argument("--tick", type=float, default=0.5, help="the workers' tick, seconds (0.5)")
    p.add_argument("--lead", type=float, default=5.0, help="a claim's warning due after, s (5)")
    p.add_argument("--gap", type=float, default=20.0, help="its second half after that, s (20)")
    p.add_argument("--retry-every", type=int, default=10, help="every n-th call sent twice (10)")
    p.add_argument("--verbose", action="store_true", help="print each error's traceback")
    p.add_argument(
        "--json", default=str(ROOT / "docs" / "soak.json"), help="the figures file ('-': none)"
    )
    args = p.parse_args(argv)
    if args.minutes < 1:
        p.error("--minutes must be at least 1")
    given = list(argv) if argv is not None else sys.argv[1:]
    args.command = " ".join([".venv/bin/python -m bench.soak", *given])
    base = os.environ.get(URL_ENV, DEFAULT_URL)
    ok = True
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend not in ("postgresql", "sqlite"):
            p.error(f"unknown backend {backend!r}")
        with database(backend, base) as url:
            result = soak(backend, url, args)
        print()
        print(table(result))
        print()
        if args.json != "-":
            save(Path(args.json), result)
        ok = ok and all(v is not False for v in result["targets"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
