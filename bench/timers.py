"""Benchmark of the deadline timers on PostgreSQL against the issue #4 targets, in one run.

Run from the project root::

    .venv/bin/python -m bench.timers                 # the full run, updates docs/benchmarks.md
    .venv/bin/python -m bench.timers --timers 5000 --rounds 1 --pending 100000 --out -

PostgreSQL comes from ``BAOFLOW_BENCH_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``). Every part runs in a private schema of its
own (``CREATE SCHEMA``, ``search_path`` in the URL's ``options``, ``DROP SCHEMA ... CASCADE``
at the end), as ``tests/conftest.py`` does; nothing else in the database is touched.

The due timers are made in bulk by ``bench/load.py`` (``drive``, ``clone``): one real claim
is brought to ``materials_complete`` through the engine, then copied with SQL — its case
row, its history, its ``hand_over`` rule instance and one pending warning timer per copy
— so the workers fire real effects on real cases.

1. **Throughput.** ``--timers`` due timers drained by ``--workers`` spawned processes, in
   ``--rounds`` rounds, three variants side by side, each on an identical fresh schema
   (order rotated each round), timed from the start signal to the last worker done:

   ``floor``
       plain psycopg, autocommit: ``UPDATE timers SET status='fired' ... WHERE id IN
       (SELECT id ... ORDER BY due_at LIMIT 100 FOR UPDATE SKIP LOCKED)`` until nothing
       is left — claiming and marking, no effect (the issue's 65,000 timers/s figure).
   ``engine``
       ``Engine.run_due_timers(worker=..., batch=100)`` with a ``FakeClock`` after every
       due time: each effect is the timer marked fired, the case's version bumped, a
       ``deadline_warning`` history row, the rule instance's ``warned`` and an outbox row
       telling the handler. Whatever shape the engine has when the benchmark runs (one
       transaction per timer before commit e373cb0, one per claimed batch since; on
       PostgreSQL two statements per batch since the outbox was added).
   ``dbapi``
       a what-if, not the engine: the same effects, computed by the engine's own
       ``timers.effect()``, a whole claimed batch in one transaction, in plain psycopg:
       claim-and-mark ``UPDATE ... WHERE id = ANY(ARRAY(SELECT ... FOR UPDATE SKIP
       LOCKED)) RETURNING``,
       one ``SELECT`` of the cases (``id = ANY(%s)``), one of the rule instances, one
       ``UPDATE cases ... FROM jsonb_to_recordset(%s)`` with the version check, one
       ``INSERT INTO history ... SELECT ... FROM jsonb_to_recordset(%s)``, one ``UPDATE
       case_deadlines ... FROM jsonb_to_recordset(%s)``, one ``INSERT INTO outbox``, one
       commit — eight statements per batch, each batch's rows passed as one JSON document;
       no SQLAlchemy, no ``executemany``.

2. **Latency.** One real ``engine.scheduler.Worker`` (tick 0.5 s, on the system clock) in a
   spawned process; ``--latency-timers`` timers are given due times spread over the next
   ``--latency-spread`` seconds of real time, the first a tick and a second after they are
   written (the worker learns of them at its next tick). A trigger in the private schema notes
   ``clock_timestamp()`` when each timer is marked fired (inside the effect's transaction,
   just before its last three statements and its commit); lateness = that minus ``due_at``.
   The engine's own ``fired_at`` (the instant its claim read the clock) is reported too.

3. **Memory.** A fresh worker process drains ``--mem-due`` due timers (run_due_timers in
   steps of 1,000) reading VmRSS after each step and after 100 idle checks, first with no
   other pending timers, then — in another fresh process, a day later on its clock, on a
   second set of ``--mem-due`` timers due then — after ``--pending`` not-due pending timers
   were added (``bench/load.py``'s ``add_timers``, all on one case). The claim
   query's time and plan are taken with and without those rows.

4. **Profile.** One process runs ``run_due_timers`` under cProfile, with the SQL
   statements, commits, pool check-outs and pings counted: where the time of one timer
   effect goes.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import multiprocessing as mp
import os
import platform
import pstats
import re
import statistics
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from baoflow.engine import SHANGHAI, Actor, ChineseOfficialCalendar, FakeClock, open_engine
from baoflow.engine import timers as engine_timers
from baoflow.engine.notices import outbox_rows
from baoflow.engine.store import CoreTx, normalise_url
from baoflow.engine.store.core import _PG_TAKE_DUE_BATCH
from baoflow.workflows.examples import POLICIES
from sqlalchemy.pool import NullPool

from bench.load import add_timers, clone, drive, pg_schema, settle

ROOT = Path(__file__).resolve().parent.parent
URL_ENV = "BAOFLOW_BENCH_PG_URL"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
SECTION = "## Timers on PostgreSQL"
END_MARKER = "<!-- end of the section written by bench/timers.py -->"

CTX = mp.get_context("spawn")  # a fresh interpreter each, as separate workers would be

OPENED = datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI)  # the source claim's materials complete
LATER = datetime(2026, 5, 20, 9, 0, tzinfo=SHANGHAI)  # after every clone's warning timer
FAR = datetime(2099, 1, 1, tzinfo=UTC)  # "not due" for the latency clones until retimed
LEASE = timedelta(minutes=10)
WAIT = 300.0  # seconds any wait on a child may take before the benchmark gives up

TARGET_RATE = 10_000  # effects/s with 4 workers
TARGET_P99 = 1.0  # seconds late, at a 0.5 s tick


def calendar() -> ChineseOfficialCalendar:
    return ChineseOfficialCalendar()


# --- helpers ------------------------------------------------------------------------
def rss_kb() -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of this process, in KiB."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    return out


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])
    return total - idle, total


def libpq(url: str) -> str:
    """The SQLAlchemy URL as a libpq connection URI (for plain psycopg)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def autocommit(sql: sa.Engine, statement: str) -> None:
    with sql.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(statement)


# --- the cases: one real claim, copied with SQL by bench/load.py ------------------------
@dataclass(frozen=True)
class Source:
    id: int
    version: int
    number: str


def make_source(url: str) -> Source:
    """Migrate the schema and bring one real claim to ``materials_complete``."""
    eng = open_engine(url, clock=FakeClock(OPENED), calendar=calendar())
    try:
        eng.policies.add(POLICIES)  # type: ignore[attr-defined]
        case = drive(eng, "claim", "materials_complete")
    finally:
        eng.close()
    return Source(case.id, case.version, case.number)


def clone_claims(sql: sa.Engine, source: Source, n: int, *, far: bool = False) -> None:
    """``n`` copies of ``source`` (``bench/load.py``'s ``clone``: its history, its running
    ``hand_over`` instance, its search keys as they are) with one pending warning timer
    each — due long before ``LATER`` (the source's own due time), or with ``far=True``
    at distinct instants in 2099 (retimed later). The source's own timers are
    cancelled, so only the copies' ``n`` timers are pending."""
    due = f"CAST('{FAR.isoformat()}' AS timestamptz) + c.id * interval '1 second'"
    clone(
        sql,
        source.id,
        n,
        units=None,
        timers="tm.rule = 'hand_over' AND tm.kind = 'warning' AND tm.level = 1",
        timer_due=due if far else None,
    )
    with sql.begin() as conn:
        run = conn.execute
        run(
            sa.text("UPDATE timers SET status = 'cancelled' WHERE case_id = :src"),
            {"src": source.id},
        )
        pending, due_now = run(
            sa.text(
                "SELECT count(*) FILTER (WHERE status = 'pending'), "
                "       count(*) FILTER (WHERE status = 'pending' AND due_at <= :later) "
                "FROM timers"
            ),
            {"later": LATER},
        ).one()
    if pending != n or due_now != (0 if far else n):
        raise RuntimeError(f"cloning made {pending} pending timers, {due_now} due; wanted {n}")
    settle(sql)


def check_effects(sql: sa.Engine, source: Source, n: int) -> None:
    """Every clone's timer fired once, with one warning row, one version more and its
    instance warned — the engine's effects, and the what-if's."""
    with sql.connect() as conn:
        fired, warnings, bumped, warned, told = conn.execute(
            sa.text(
                """
                SELECT (SELECT count(*) FROM timers WHERE status = 'fired' AND case_id <> :src),
                       (SELECT count(*) FROM history
                         WHERE event = 'deadline_warning' AND case_id <> :src),
                       (SELECT count(*) FROM cases WHERE version = :v AND id <> :src),
                       (SELECT count(*) FROM case_deadlines
                         WHERE warned = 1 AND rule = 'hand_over' AND case_id <> :src),
                       (SELECT count(DISTINCT case_id) FROM outbox
                         WHERE template = 'deadline_warning' AND recipient = 'handler'
                           AND case_id <> :src)
                """
            ),
            {"src": source.id, "v": source.version + 1},
        ).one()
    if (fired, warnings, bumped, warned, told) != (n, n, n, n, n):
        raise RuntimeError(
            f"effects wrong: {fired} fired, {warnings} warning rows, {bumped} cases bumped, "
            f"{warned} instances warned, {told} cases with an outbox row; wanted {n} each"
        )


def count_fired(sql: sa.Engine) -> int:
    with sql.connect() as conn:
        return int(
            conn.execute(sa.text("SELECT count(*) FROM timers WHERE status = 'fired'")).scalar_one()
        )


# --- the throughput workers (module level: spawned processes import them) -------------
def _engine_worker(url: str, name: str, batch: int, go: Any, out: Any) -> None:
    """Drain everything due at ``LATER`` with run_due_timers, after the start signal."""
    eng = None
    try:
        eng = open_engine(url, clock=FakeClock(LATER), calendar=calendar(), migrate=False)
        with eng.store.read() as tx:  # warm the connection so all start level
            tx.next_due()
        out.put((name, "ready"))
        if not go.wait(WAIT):
            raise TimeoutError("no start signal")
        cpu0 = time.process_time()
        fired = skipped = retried = runs = 0
        while True:
            run = eng.run_due_timers(worker=name, batch=batch, lease=LEASE)
            runs += 1
            fired += run.fired
            skipped += run.skipped
            retried += run.retried
            if run.fired == 0 and run.skipped == 0:
                break
        out.put(
            (
                name,
                {
                    "done": fired,
                    "skipped": skipped,
                    "retried": retried,
                    "runs": runs,
                    "end": time.perf_counter(),
                    "cpu": time.process_time() - cpu0,
                },
            )
        )
    except BaseException:
        out.put((name, "error: " + traceback.format_exc()))
    finally:
        if eng is not None:
            eng.close()


FLOOR_SQL = """
UPDATE timers SET status = 'fired', claimed_by = %(w)s, fired_at = %(now)s
WHERE id IN (SELECT id FROM timers
             WHERE status = 'pending' AND due_at <= %(now)s
             ORDER BY due_at LIMIT %(n)s FOR UPDATE SKIP LOCKED)
"""


def _floor_worker(url: str, name: str, batch: int, go: Any, out: Any) -> None:
    """Claim and mark in batches, one autocommit statement each, until nothing is left."""
    import psycopg

    try:
        with psycopg.connect(libpq(url), autocommit=True) as conn:
            conn.execute("SELECT count(*) FROM timers WHERE status = 'pending'").fetchone()
            out.put((name, "ready"))
            if not go.wait(WAIT):
                raise TimeoutError("no start signal")
            cpu0 = time.process_time()
            params = {"w": name, "now": LATER, "n": batch}
            done = runs = 0
            while True:
                n = conn.execute(FLOOR_SQL, params).rowcount
                runs += 1
                done += n
                if n == 0:
                    break
            out.put(
                (
                    name,
                    {
                        "done": done,
                        "runs": runs,
                        "end": time.perf_counter(),
                        "cpu": time.process_time() - cpu0,
                    },
                )
            )
    except BaseException:
        out.put((name, "error: " + traceback.format_exc()))


BATCH_CLAIM = """
UPDATE timers t
SET status = 'fired', claimed_by = %(w)s, claimed_until = %(until)s, fired_at = %(now)s,
    outcome = CASE t.kind WHEN 'warning' THEN 'deadline_warning'
                          WHEN 'breach' THEN 'deadline_breach'
                          ELSE 'deadline_escalation' END
WHERE t.id = ANY(ARRAY(SELECT id FROM timers
                       WHERE status = 'pending' AND due_at <= %(now)s
                         AND (claimed_until IS NULL OR claimed_until < %(now)s)
                       ORDER BY due_at LIMIT %(n)s FOR UPDATE SKIP LOCKED))
RETURNING t.id, t.case_id, t.rule, t.armed_seq, t.kind, t.level, t.due_at
"""
BATCH_CASES = """
SELECT id, number, workflow, workflow_version, state, version, org_unit,
       data -> 'priority' AS priority
FROM cases WHERE id = ANY(%s)
"""
# Each batch's rows travel as one JSON document (orjson-encoded once), unpacked by
# jsonb_to_recordset: no per-row parameters, no text-array quoting in the driver.
BATCH_DEADLINES = """
SELECT d.case_id, d.rule, d.armed_seq, d.due_at, d.status, d.warned, d.level
FROM case_deadlines d
JOIN jsonb_to_recordset(%s::jsonb) AS k(case_id bigint, rule text, armed_seq int)
  USING (case_id, rule, armed_seq)
"""
BATCH_UPDATE_CASES = """
UPDATE cases c
SET data = CASE WHEN v.changes = '{}'::jsonb THEN c.data ELSE c.data || v.changes END,
    version = v.new_version, updated_at = %s
FROM jsonb_to_recordset(%s::jsonb)
     AS v(id bigint, expected int, new_version int, changes jsonb)
WHERE c.id = v.id AND c.version = v.expected
"""
BATCH_OUTBOX = """
INSERT INTO outbox (key, case_id, seq, template, recipient, org_unit, context, status,
                    attempts, next_attempt_at, created_at)
SELECT key, case_id, seq, template, recipient, org_unit, context, 'pending', 0, %s, %s
FROM jsonb_to_recordset(%s::jsonb)
     AS v(key text, case_id bigint, seq int, template text, recipient text, org_unit text,
          context jsonb)
"""
BATCH_HISTORY = """
INSERT INTO history (case_id, seq, at, actor, event, from_state, to_state, data, notes, hash)
SELECT v.case_id, v.seq, %s, %s::jsonb, v.event, v.state, v.state, v.data, v.notes, v.hash
FROM jsonb_to_recordset(%s::jsonb)
     AS v(case_id bigint, seq int, event text, state text, data jsonb, notes jsonb, hash text)
"""
BATCH_DEADLINE_UPDATE = """
UPDATE case_deadlines d
SET warned = GREATEST(d.warned, v.warned), level = GREATEST(d.level, v.level),
    breached_at = COALESCE(v.breached_at, d.breached_at)
FROM jsonb_to_recordset(%s::jsonb)
     AS v(case_id bigint, rule text, armed_seq int, warned int, level int,
          breached_at timestamptz)
WHERE d.case_id = v.case_id AND d.rule = v.rule AND d.armed_seq = v.armed_seq
"""
BATCH_SKIP = "UPDATE timers SET status = 'skipped', outcome = %s WHERE id = ANY(%s)"


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class BatchFirer:
    """The what-if: one claimed batch, its effects, one transaction (plain psycopg).

    Effects are computed with the engine's own ``timers.effect()``; several timers of one
    case in a batch are applied in due order, each its own history row and version.
    Escalations that fire an event (``fire_event``) are out of its scope (counted, not
    fired): the bench's timers are warnings."""

    def __init__(self, url: str, name: str, batch: int) -> None:
        import psycopg
        from psycopg.rows import namedtuple_row

        eng = open_engine(url, clock=FakeClock(LATER), calendar=calendar(), migrate=False)
        self.definitions = {(d.name, d.version): d for d in eng.workflows()}
        eng.close()
        from psycopg.types.json import set_json_loads

        self.conn: Any = psycopg.connect(libpq(url), row_factory=namedtuple_row)
        set_json_loads(orjson.loads, self.conn)  # as the engine's store decodes JSON
        self.name = name
        self.batch = batch
        self.actor = _json(Actor.system("timer").to_json())
        self.not_fired = 0

    def run(self, now: datetime) -> int:
        """Fire one batch; how many timers it took."""
        conn = self.conn
        with conn.transaction():
            claimed: list[Any] = conn.execute(
                BATCH_CLAIM, {"w": self.name, "until": now + LEASE, "now": now, "n": self.batch}
            ).fetchall()
            if not claimed:
                return 0
            claimed.sort(key=lambda r: (r.due_at, r.id))
            cases: dict[int, Any] = {
                r.id: r
                for r in conn.execute(BATCH_CASES, ([r.case_id for r in claimed],)).fetchall()
            }
            keys = [
                {"case_id": r.case_id, "rule": r.rule, "armed_seq": r.armed_seq} for r in claimed
            ]
            instances: dict[tuple[int, str, int], Any] = {
                (d.case_id, d.rule, d.armed_seq): d
                for d in conn.execute(BATCH_DEADLINES, (_json(keys),)).fetchall()
            }
            state: dict[int, tuple[int, dict[str, Any]]] = {}  # case id -> (version, changes)
            history: list[dict[str, Any]] = []
            outbox: list[Any] = []  # the engine's OutboxRow dicts
            dl: dict[tuple[int, str, int], list[Any]] = {}
            skipped: list[int] = []
            for timer in claimed:
                case = cases.get(timer.case_id)
                if case is None:
                    skipped.append(timer.id)
                    continue
                definition = self.definitions[(case.workflow, case.workflow_version)]
                rule = engine_timers.rule_named(definition, timer.rule)
                key = (timer.case_id, timer.rule, timer.armed_seq)
                instance = instances.get(key)
                if rule is None or instance is None or instance.status != "running":
                    skipped.append(timer.id)
                    continue
                version, changed = state.get(case.id, (case.version, {}))
                eff, changes = engine_timers.effect(
                    rule,
                    timer,
                    due_at=instance.due_at,
                    warned=instance.warned,
                    level=instance.level,
                    case_number=case.number,
                    workflow=case.workflow,
                    priority=int(changed.get("priority", case.priority or 0)),
                    now=now,
                )
                if eff.fire is not None:
                    self.not_fired += 1
                state[case.id] = (version + 1, {**changed, **eff.changes})
                history.append(
                    {
                        "case_id": case.id,
                        "seq": version + 1,
                        "event": eff.event,
                        "state": case.state,
                        "data": eff.data,
                        "notes": list(eff.notes),
                        # the audit chain's share of the work (docs/audit.md)
                        "hash": hashlib.sha256(
                            f"{case.id}\n{version + 1}\n{eff.event}\n{eff.data}".encode()
                        ).hexdigest(),
                    }
                )
                outbox += outbox_rows(
                    eff.notices,
                    cause=f"timer:{timer.id}",
                    case_id=case.id,
                    seq=version + 1,
                    org_unit=case.org_unit,
                )
                row = dl.setdefault(key, [instance.warned, instance.level, None])
                row[0] = max(row[0], changes.get("warned", 0))
                row[1] = max(row[1], changes.get("level", 0))
                row[2] = changes.get("breached_at", row[2])
            if skipped:
                conn.execute(BATCH_SKIP, ("skipped by the what-if", skipped))
            if state:
                bumps = [
                    {
                        "id": i,
                        "expected": cases[i].version,
                        "new_version": version,
                        "changes": changed,
                    }
                    for i, (version, changed) in state.items()
                ]
                updated = conn.execute(BATCH_UPDATE_CASES, (now, _json(bumps))).rowcount
                if updated != len(bumps):
                    raise RuntimeError(f"version conflict: {updated} of {len(bumps)} updated")
                conn.execute(BATCH_HISTORY, (now, self.actor, _json(history)))
                instances_json = [
                    {
                        "case_id": k[0],
                        "rule": k[1],
                        "armed_seq": k[2],
                        "warned": v[0],
                        "level": v[1],
                        "breached_at": v[2].isoformat() if v[2] is not None else None,
                    }
                    for k, v in dl.items()
                ]
                conn.execute(BATCH_DEADLINE_UPDATE, (_json(instances_json),))
                if outbox:
                    conn.execute(BATCH_OUTBOX, (now, now, _json(outbox)))
        return len(claimed)

    def close(self) -> None:
        self.conn.close()


def _batch_worker(url: str, name: str, batch: int, go: Any, out: Any) -> None:
    firer = None
    try:
        firer = BatchFirer(url, name, batch)
        firer.conn.execute("SELECT count(*) FROM timers WHERE status = 'pending'").fetchone()
        firer.conn.commit()
        out.put((name, "ready"))
        if not go.wait(WAIT):
            raise TimeoutError("no start signal")
        cpu0 = time.process_time()
        done = runs = 0
        while n := firer.run(LATER):
            done += n
            runs += 1
        out.put(
            (
                name,
                {
                    "done": done,
                    "runs": runs,
                    "end": time.perf_counter(),
                    "cpu": time.process_time() - cpu0,
                },
            )
        )
    except BaseException:
        out.put((name, "error: " + traceback.format_exc()))
    finally:
        if firer is not None:
            firer.close()


VARIANTS = {"floor": _floor_worker, "engine": _engine_worker, "dbapi": _batch_worker}


def _collect(out: Any, names: Sequence[str], procs: Sequence[Any] = ()) -> dict[str, Any]:
    """One reply from each of ``names``; fails fast if a child died without replying."""
    import queue

    replies: dict[str, Any] = {}
    deadline = time.monotonic() + WAIT
    while len(replies) < len(names):
        try:
            name, reply = out.get(timeout=1.0)
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode is not None and p.exitcode != 0]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(
                    f"no reply from {sorted(set(names) - set(replies))}"
                    + (f": a child exited with {dead}" if dead else f" in {WAIT:.0f}s")
                ) from None
            continue
        if isinstance(reply, str) and reply.startswith("error"):
            raise RuntimeError(f"{name}: {reply}")
        replies[name] = reply
    return replies


def wal_lsn(url: str) -> str:
    import psycopg

    with psycopg.connect(libpq(url)) as conn:
        return str(conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])  # type: ignore[index]


def wal_bytes_since(url: str, lsn: str) -> int:
    """WAL written since ``lsn`` (by the whole server: the drain, autovacuum, anything)."""
    import psycopg

    with psycopg.connect(libpq(url)) as conn:
        row = conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::bigint", (lsn,)
        ).fetchone()
    return int(row[0]) if row else 0


def drain_with(variant: str, url: str, workers: int, batch: int) -> dict[str, Any]:
    """``workers`` spawned processes drain the table; the timings of the whole drain."""
    target = VARIANTS[variant]
    names = [f"{variant[0]}{i}" for i in range(workers)]
    out, go = CTX.Queue(), CTX.Event()
    procs = [CTX.Process(target=target, args=(url, n, batch, go, out), daemon=True) for n in names]
    for p in procs:
        p.start()
    try:
        _collect(out, names, procs)  # every worker connected and warm
        lsn0 = wal_lsn(url)
        busy0, total0 = cpu_jiffies()
        start = time.perf_counter()
        go.set()
        replies = _collect(out, names, procs)
        wall = max(r["end"] for r in replies.values()) - start
        busy1, total1 = cpu_jiffies()
        wal = wal_bytes_since(url, lsn0)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join(timeout=10)
    done = sum(r["done"] for r in replies.values())
    tck = os.sysconf("SC_CLK_TCK")
    return {
        "done": done,
        "wall": wall,
        "rate": done / wall,
        "per_worker": {n: r["done"] for n, r in replies.items()},
        "worker_cpu": sum(r["cpu"] for r in replies.values()),
        "machine_cpu": (busy1 - busy0) / tck,
        "machine_busy": (busy1 - busy0) / max(1, total1 - total0),
        "wal_bytes": wal,
        "retried": sum(r.get("retried", 0) for r in replies.values()),
        "skipped": sum(r.get("skipped", 0) for r in replies.values()),
    }


def run_throughput(args: argparse.Namespace) -> list[dict[str, dict[str, Any]]]:
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or "engine" not in names:
        raise SystemExit(
            f"--variants: {', '.join(unknown) or 'engine missing'}; "
            f"choose from {', '.join(VARIANTS)} (engine always)"
        )
    rounds = []
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        result: dict[str, dict[str, Any]] = {}
        for variant in order:
            with pg_schema(args.url, variant) as url:
                t0 = time.perf_counter()
                source = make_source(url)
                sql = sa.create_engine(url, poolclass=NullPool)
                try:
                    clone_claims(sql, source, args.timers)
                    autocommit(sql, "CHECKPOINT")
                    setup = time.perf_counter() - t0
                    gc.collect()
                    res = drain_with(variant, url, args.workers, args.batch)
                    if variant == "floor":
                        if count_fired(sql) != args.timers:
                            raise RuntimeError("the floor left timers unfired")
                    else:
                        check_effects(sql, source, args.timers)
                finally:
                    sql.dispose()
            if res["done"] != args.timers:
                raise RuntimeError(f"{variant}: {res['done']} done of {args.timers}")
            res["setup"] = setup
            result[variant] = res
            print(
                f"  round {r + 1} {variant:6}: {res['rate']:9,.0f}/s  wall {res['wall']:.2f}s  "
                f"machine busy {res['machine_busy']:.0%}  per worker {res['per_worker']}  "
                f"(setup {setup:.1f}s)",
                flush=True,
            )
        rounds.append(result)
        print(
            f"round {r + 1}/{args.rounds}: "
            + "  ".join(f"{n} {result[n]['rate']:,.0f}/s" for n in names)
            + (
                f"  engine/floor {result['engine']['rate'] / result['floor']['rate']:.1%}"
                if "floor" in result
                else ""
            ),
            flush=True,
        )
    return rounds


# --- latency -------------------------------------------------------------------------
LATENCY_TRIGGER = [
    "CREATE TABLE bench_fired (timer_id bigint PRIMARY KEY, at timestamptz NOT NULL)",
    """
    CREATE FUNCTION bench_note_fired() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO bench_fired VALUES (NEW.id, clock_timestamp()) ON CONFLICT DO NOTHING;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER bench_note_fired AFTER UPDATE OF status ON timers FOR EACH ROW
    WHEN (OLD.status = 'pending' AND NEW.status = 'fired')
    EXECUTE FUNCTION bench_note_fired()
    """,
]


def _latency_worker(url: str, tick: float, batch: int, stop: Any, out: Any) -> None:
    """A real Worker on the system clock until told to stop."""
    from baoflow.engine.scheduler import Worker

    eng = None
    try:
        eng = open_engine(url, calendar=calendar(), migrate=False)
        worker = Worker(eng, tick=tick, batch=batch, name="latency", digest=None)
        worker.start()
        out.put(("latency", "ready"))
        stop.wait(WAIT + 600)
        worker.stop()
        out.put(("latency", {"fired": worker.fired, "rss": rss_kb()}))
    except BaseException:
        out.put(("latency", "error: " + traceback.format_exc()))
    finally:
        if eng is not None:
            eng.close()


def run_latency(args: argparse.Namespace) -> dict[str, Any]:
    n, spread = args.latency_timers, args.latency_spread
    with pg_schema(args.url, "lat") as url:
        source = make_source(url)
        sql = sa.create_engine(url, poolclass=NullPool)
        out, stop = CTX.Queue(), CTX.Event()
        proc = None
        try:
            clone_claims(sql, source, n, far=True)
            with sql.begin() as conn:
                for statement in LATENCY_TRIGGER:
                    conn.exec_driver_sql(statement)
            autocommit(sql, "CHECKPOINT")
            proc = CTX.Process(
                target=_latency_worker, args=(url, args.tick, args.batch, stop, out), daemon=True
            )
            proc.start()
            _collect(out, ["latency"], [proc])
            time.sleep(2 * args.tick)  # the first checks have run
            # The first due time comes a tick and a second after the retiming, so the worker
            # has seen the new due times at a tick before any falls due: a worker learns of
            # timers written by another process at its next tick (or wake-up).
            t0 = datetime.now(UTC) + timedelta(seconds=1 + args.tick)
            with sql.begin() as conn:
                retimed = conn.execute(
                    sa.text(
                        "UPDATE timers SET due_at = :t0 + make_interval(secs => random() * :s) "
                        "WHERE status = 'pending' AND case_id <> :src"
                    ),
                    {"t0": t0, "s": float(spread), "src": source.id},
                ).rowcount
            if retimed != n:
                raise RuntimeError(f"retimed {retimed} timers, wanted {n}")
            deadline = time.monotonic() + spread + 120
            while True:
                time.sleep(0.5)
                with sql.connect() as conn:
                    left = conn.execute(
                        sa.text("SELECT count(*) FROM timers WHERE status = 'pending'")
                    ).scalar_one()
                if left == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{left} timers still pending {spread + 120:.0f}s on")
            stop.set()
            reply = _collect(out, ["latency"], [proc])["latency"]
        finally:
            stop.set()
            if proc is not None:
                proc.join(timeout=30)
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout=10)
        try:
            check_effects(sql, source, n)
            with sql.connect() as conn:
                stats = conn.execute(
                    sa.text(
                        """
                        WITH l AS (
                          SELECT extract(epoch FROM f.at - t.due_at) AS effect,
                                 extract(epoch FROM t.fired_at - t.due_at) AS stamped
                          FROM timers t JOIN bench_fired f ON f.timer_id = t.id)
                        SELECT count(*) AS n,
                               percentile_cont(0.5) WITHIN GROUP (ORDER BY effect) AS p50,
                               percentile_cont(0.9) WITHIN GROUP (ORDER BY effect) AS p90,
                               percentile_cont(0.99) WITHIN GROUP (ORDER BY effect) AS p99,
                               max(effect) AS max, min(effect) AS min,
                               count(*) FILTER (WHERE effect > :target) AS over,
                               percentile_cont(0.5) WITHIN GROUP (ORDER BY stamped) AS s50,
                               percentile_cont(0.9) WITHIN GROUP (ORDER BY stamped) AS s90,
                               count(*) FILTER (WHERE effect <= 0.05) AS b1,
                               count(*) FILTER (WHERE effect > 0.05 AND effect <= 0.1) AS b2,
                               count(*) FILTER (WHERE effect > 0.1 AND effect <= 0.25) AS b3,
                               count(*) FILTER (WHERE effect > 0.25 AND effect <= 0.5) AS b4,
                               count(*) FILTER (WHERE effect > 0.5 AND effect <= 1) AS b5,
                               count(*) FILTER (WHERE effect > 1) AS b6,
                               percentile_cont(0.99) WITHIN GROUP (ORDER BY stamped) AS s99,
                               max(stamped) AS smax, min(stamped) AS smin
                        FROM l
                        """
                    ),
                    {"target": TARGET_P99},
                ).one()
        finally:
            sql.dispose()
    result: dict[str, Any] = {
        k: (float(v) if v is not None else None) for k, v in stats._mapping.items()
    }
    labels = ["≤ 50 ms", "50–100 ms", "0.1–0.25 s", "0.25–0.5 s", "0.5–1 s", "> 1 s"]
    result["buckets"] = [
        (label, result.pop(f"b{i}") / result["n"]) for i, label in enumerate(labels, 1)
    ]
    result["fired"] = reply["fired"]
    result["worker_rss_kb"] = reply["rss"]["VmRSS"]
    print(
        f"latency: {int(result['n'])} timers over {spread:.0f}s: p50 {result['p50']:.3f}s "
        f"p99 {result['p99']:.3f}s max {result['max']:.3f}s (engine's fired_at: p99 "
        f"{result['s99']:.3f}s max {result['smax']:.3f}s)",
        flush=True,
    )
    return result


# --- memory and the claim with many pending timers ------------------------------------
def _memory_worker(url: str, due: int, step: int, at: datetime, out: Any) -> None:
    """Drain ``due`` timers at ``at`` in steps, reading RSS after startup, each step and
    idle checks (nothing due: the caller arranges exactly ``due`` due timers)."""
    eng = None
    try:
        eng = open_engine(url, clock=FakeClock(at), calendar=calendar(), migrate=False)
        with eng.store.read() as tx:
            tx.next_due()
        eng.next_timer_due()
        gc.collect()
        rows = [("after startup", 0, rss_kb())]
        fired = 0
        t0 = time.perf_counter()
        while fired < due:
            run = eng.run_due_timers(worker="mem", batch=100, lease=LEASE, limit=step)
            if run.fired == 0:
                break
            fired += run.fired
            rows.append((f"after {fired:,} fired", fired, rss_kb()))
        rate = fired / (time.perf_counter() - t0)
        for _ in range(100):  # what an idle Worker.drain() does on each tick
            eng.run_due_timers(worker="mem", batch=100, lease=LEASE)
            eng.next_timer_due()
        rows.append(("after 100 idle checks", fired, rss_kb()))
        out.put(("memory", {"rows": rows, "rate": rate, "fired": fired}))
    except BaseException:
        out.put(("memory", "error: " + traceback.format_exc()))
    finally:
        if eng is not None:
            eng.close()


def memory_child(url: str, due: int, step: int, at: datetime) -> dict[str, Any]:
    out = CTX.Queue()
    proc = CTX.Process(target=_memory_worker, args=(url, due, step, at, out), daemon=True)
    proc.start()
    try:
        reply: dict[str, Any] = _collect(out, ["memory"], [proc])["memory"]
        return reply
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=10)


CLAIM_SELECT = (
    "SELECT id FROM timers WHERE status = 'pending' AND due_at <= %(now)s "
    "AND (claimed_until IS NULL OR claimed_until < %(now)s) "
    "ORDER BY due_at LIMIT 100 FOR UPDATE SKIP LOCKED"
)


def claim_timing(url: str, at: datetime, reps: int = 30) -> dict[str, Any]:
    """The claim as the engine runs it (rolled back), the idle check, and the plan."""
    import psycopg

    store_engine = sa.create_engine(normalise_url(url))
    claims, idle, nexts, takes = [], [], [], []
    got = taken = 0
    try:
        for i in range(reps + 3):
            with store_engine.connect() as conn:
                trans = conn.begin()
                tx = CoreTx(conn)
                t0 = time.perf_counter()
                rows = tx.claim_due_timers(at, "probe", at + LEASE, 100)
                t1 = time.perf_counter()
                tx.claim_due_timers(OPENED - timedelta(days=1), "probe", OPENED, 100)  # none due
                t2 = time.perf_counter()
                tx.next_due()
                t3 = time.perf_counter()
                trans.rollback()
                trans = conn.begin()
                t4 = time.perf_counter()
                batch = tx.take_due_timer_batch(at, 100, "probe")
                t5 = time.perf_counter()
                trans.rollback()
            if i >= 3:  # warm-up
                claims.append(t1 - t0)
                idle.append(t2 - t1)
                nexts.append(t3 - t2)
                takes.append(t5 - t4)
                got = len(rows)
                taken = len(batch)
    finally:
        store_engine.dispose()
    with psycopg.connect(libpq(url)) as conn:
        plan = [
            r[0]
            for r in conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + CLAIM_SELECT, {"now": at}
            )
        ]
        conn.rollback()
        take_sql = str(_PG_TAKE_DUE_BATCH).replace(":now", "%(now)s")
        take_sql = take_sql.replace(":n", "100").replace(":by", "'probe'")
        take_plan = [
            r[0]
            for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + take_sql, {"now": at})
        ]
        conn.rollback()
        counts = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'pending'), "
            "pg_size_pretty(pg_total_relation_size('timers')), "
            "pg_size_pretty(pg_relation_size('ix_timers_pending_due')) FROM timers"
        ).fetchone()
    assert counts is not None
    return {
        "claim_ms": statistics.median(claims) * 1e3,
        "claimed": got,
        "take_ms": statistics.median(takes) * 1e3,
        "taken": taken,
        "take_plan": take_plan,
        "idle_ms": statistics.median(idle) * 1e3,
        "next_due_ms": statistics.median(nexts) * 1e3,
        "plan": plan,
        "rows": counts[0],
        "pending": counts[1],
        "table_size": counts[2],
        "index_size": counts[3],
    }


def run_memory(args: argparse.Namespace) -> dict[str, Any]:
    due = args.mem_due
    with pg_schema(args.url, "mem") as url:
        source = make_source(url)
        sql = sa.create_engine(url, poolclass=NullPool)
        try:
            clone_claims(sql, source, 2 * due)
            # The second set falls due half a day after the first: the second child (a
            # day later on its clock) drains it, the first child's idle checks leave it.
            with sql.begin() as conn:
                conn.execute(
                    sa.text(
                        "UPDATE timers SET due_at = :at WHERE id IN (SELECT id FROM timers "
                        "WHERE status = 'pending' ORDER BY id DESC LIMIT :n)"
                    ),
                    {"at": LATER + timedelta(hours=12), "n": due},
                )
            second = LATER + timedelta(days=1)
            small = claim_timing(url, LATER)
            print(
                f"memory: claim with {small['pending']:,} pending: {small['claim_ms']:.2f} ms",
                flush=True,
            )
            without = memory_child(url, due, args.mem_step, LATER)
            print(f"memory: without the not-due timers: {without['rows'][-1]}", flush=True)
            t0 = time.perf_counter()
            add_timers(
                sql, range(source.id, source.id + 1), args.pending, LATER + timedelta(days=30)
            )
            fill = time.perf_counter() - t0
            t0 = time.perf_counter()
            autocommit(sql, "VACUUM ANALYZE timers")
            vacuum = time.perf_counter() - t0
            autocommit(sql, "CHECKPOINT")
            print(f"memory: {args.pending:,} not-due timers in {fill:.1f}s", flush=True)
            big = claim_timing(url, second)
            print(
                f"memory: claim with {big['pending']:,} pending: {big['claim_ms']:.2f} ms",
                flush=True,
            )
            with_many = memory_child(url, due, args.mem_step, second)
            for label, child in (("without", without), ("with", with_many)):
                if child["fired"] != due:
                    raise RuntimeError(f"memory ({label}): fired {child['fired']} of {due}")
            print(f"memory: with the not-due timers: {with_many['rows'][-1]}", flush=True)
            big_after = claim_timing(url, second)
        finally:
            sql.dispose()
    return {
        "without": without,
        "with": with_many,
        "small": small,
        "big": big,
        "big_idle": big_after,
        "fill_s": fill,
        "vacuum_s": vacuum,
    }


# --- profile -------------------------------------------------------------------------
PHASES = [
    # (label, file suffix, function name); rows whose function is never called are left out,
    # so the table follows whichever shape run_due_timers has when the benchmark runs.
    ("run_due_timers() total", "engine/draining.py", "run"),
    (
        "claim_due_timers(): SELECT … FOR UPDATE SKIP LOCKED, UPDATE, SELECT",
        "engine/store/core.py",
        "claim_due_timers",
    ),
    (
        "store.write(): check-out with pre-ping, BEGIN, COMMIT, check-in",
        "engine/store/__init__.py",
        "write",
    ),
    (
        "  of which the pool's pre-ping (`SELECT 1`)",
        "sqlalchemy/engine/default.py",
        "_do_ping_w_event",
    ),
    ("  of which COMMIT (waits for the WAL flush)", "psycopg/connection.py", "commit"),
    ("_fire_batch(): a claimed batch in one transaction", "engine/draining.py", "_fire_batch"),
    (
        "  take_due_timer_batch(): take, mark and read timers, cases, instances",
        "engine/store/core.py",
        "take_due_timer_batch",
    ),
    (
        "  record_effects(): the batch's writes, one statement on PostgreSQL",
        "engine/store/core.py",
        "record_effects",
    ),
    ("timer_batch(): read leased timers, cases, instances", "engine/store/core.py", "timer_batch"),
    ("  take_timers(): UPDATE … RETURNING the timers", "engine/store/core.py", "take_timers"),
    ("  bump_cases(): UPDATE the cases", "engine/store/core.py", "bump_cases"),
    ("  insert_outbox(): INSERT the outbox rows", "engine/store/core.py", "insert_outbox"),
    (
        "  append_history_many(): INSERT the history rows",
        "engine/store/core.py",
        "append_history_many",
    ),
    (
        "  update_deadlines_many(): UPDATE the instances",
        "engine/store/core.py",
        "update_deadlines_many",
    ),
    ("_fire_timer(): one timer in its own transaction", "engine/draining.py", "_fire_timer"),
    ("  load_case(): SELECT the case", "engine/store/core.py", "load_case"),
    ("  deadline(): SELECT the rule instance", "engine/store/core.py", "deadline"),
    ("  finish_timer(): UPDATE the timer", "engine/store/core.py", "finish_timer"),
    ("  update_case(): UPDATE the case", "engine/store/core.py", "update_case"),
    ("  append_history(): INSERT the history row", "engine/store/core.py", "append_history"),
    ("  update_deadline(): UPDATE the instance", "engine/store/core.py", "update_deadline"),
    ("timers.effect(): notes and data in Python", "engine/timers.py", "effect"),
    ("JSON encoding (orjson, the store's serializer)", "engine/store/__init__.py", "json_dumps"),
    (
        "SQLAlchemy: compile-cache lookup and parameter processing",
        "sqlalchemy/engine/default.py",
        "_init_compiled",
    ),
    (
        "psycopg Cursor.execute (incl. the wait for the server)",
        "psycopg/cursor.py",
        "execute",
    ),
    (
        "psycopg Cursor.executemany (pipeline; incl. the wait)",
        "psycopg/cursor.py",
        "executemany",
    ),
    ("psycopg: converting %(name)s queries (per call)", "psycopg/_queries.py", "convert"),
    ("psycopg: waiting on the socket", "psycopg/connection.py", "wait"),
]


def _phase_times(stats: pstats.Stats, n: int) -> list[tuple[str, float, float]]:
    table = stats.stats  # type: ignore[attr-defined]
    out = []
    for label, suffix, func in PHASES:
        cum = 0.0
        calls = 0
        for (file, _line, name), (_cc, nc, _tt, ct, _callers) in table.items():
            if name == func and file.endswith(suffix):
                cum += ct
                calls += nc
        if calls:
            out.append((label, cum / n * 1e6, calls / max(n, 1)))
    return out


def _top(stats: pstats.Stats, n: int, k: int = 15) -> list[tuple[str, float, float]]:
    table = stats.stats  # type: ignore[attr-defined]
    rows = []
    for (file, line, name), (_cc, _nc, tt, ct, _callers) in table.items():
        short = file.replace(str(ROOT) + "/", "")
        if "site-packages/" in short:
            short = short.split("site-packages/", 1)[1]
        where = name if file == "~" else f"{short}:{line}({name})"
        rows.append((where, tt / n * 1e6, ct / n * 1e6))
    rows.sort(key=lambda r: r[1], reverse=True)
    return rows[:k]


def run_profile(args: argparse.Namespace) -> dict[str, Any]:
    n = args.profile
    with pg_schema(args.url, "prof") as url:
        source = make_source(url)
        sql = sa.create_engine(url, poolclass=NullPool)
        try:
            clone_claims(sql, source, 2 * n + 300)
            autocommit(sql, "CHECKPOINT")
        finally:
            sql.dispose()
        eng = open_engine(url, clock=FakeClock(LATER), calendar=calendar(), migrate=False)
        try:
            eng.run_due_timers(worker="prof", limit=300)  # warm-up
            t0 = time.perf_counter()
            cpu0 = time.process_time()
            plain = eng.run_due_timers(worker="prof", limit=n)
            wall = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            if plain.fired != n:
                raise RuntimeError(f"profile: fired {plain.fired} of {n}")

            counts: dict[str, int] = {}

            def on_execute(
                _conn: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool
            ) -> None:
                words = statement.split(None, 3)
                verb = words[0].upper()
                table = ""
                if verb == "SELECT":
                    found = re.search(r"\bFROM\s+(\w+)", statement, re.IGNORECASE)
                    table = found.group(1) if found else ""
                elif verb == "UPDATE" and len(words) > 1:
                    table = words[1]
                elif verb == "INSERT" and len(words) > 2:
                    table = words[2]
                if verb == "SELECT" and "for update" in statement.lower():
                    table += " FOR UPDATE SKIP LOCKED"
                if verb == "WITH":
                    table = (
                        "… FOR UPDATE SKIP LOCKED, UPDATE timers, SELECT (take a batch)"
                        if "for update" in statement.lower()
                        else "… UPDATE cases, INSERT history, UPDATE case_deadlines, "
                        "INSERT outbox (record a batch)"
                    )
                if "RETURNING" in statement.upper() and verb != "WITH":
                    table += " … RETURNING"
                key = f"{verb} {table}".strip()
                if many:
                    rows = len(params) if params is not None else 0
                    key = f"{key} (executemany: one round trip, one execution per row)"
                    counts[key + " — rows"] = counts.get(key + " — rows", 0) + rows
                counts[key] = counts.get(key, 0) + 1

            def on(kind: str) -> Any:
                def bump(*_a: Any) -> None:
                    counts[kind] = counts.get(kind, 0) + 1

                return bump

            listeners = [
                (eng.store.engine, "before_cursor_execute", on_execute),
                (eng.store.engine, "commit", on("COMMIT")),
                (eng.store.engine, "begin", on("BEGIN")),
                (eng.store.engine.pool, "checkout", on("pool check-out (+ pre-ping SELECT 1)")),
            ]
            for target, name, fn in listeners:
                sa.event.listen(target, name, fn)
            prof = cProfile.Profile()
            prof.enable()
            profiled = eng.run_due_timers(worker="prof", limit=n)
            prof.disable()
            for target, name, fn in listeners:
                sa.event.remove(target, name, fn)
            if profiled.fired != n:
                raise RuntimeError(f"profile: fired {profiled.fired} of {n}")
        finally:
            eng.close()
    stats = pstats.Stats(prof)
    result = {
        "n": n,
        "unprofiled_us": wall / n * 1e6,
        "cpu_us": cpu / n * 1e6,
        "rate": n / wall,
        "phases": _phase_times(stats, n),
        "top": _top(stats, n),
        "statements": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
    }
    print(
        f"profile: one worker {result['rate']:,.0f} effects/s ({result['unprofiled_us']:.0f} µs "
        f"each, {result['cpu_us']:.0f} µs CPU); statements per effect {result['statements']}",
        flush=True,
    )
    return result


# --- the report ------------------------------------------------------------------------
def cpu_model() -> str:
    """The processor's model name, from /proc/cpuinfo."""
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


def machine(url: str) -> dict[str, str]:
    import apscheduler
    import psycopg

    cpu = cpu_model()
    mem = "?"
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    with psycopg.connect(libpq(normalise_url(url))) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
                "('shared_buffers', 'synchronous_commit', 'fsync', 'wal_level', "
                "'max_connections', 'work_mem', 'commit_delay')"
            ).fetchall()
        )
    sb = settings.get("shared_buffers", "?")
    if sb.endswith("8kB"):
        sb = f"{int(sb[:-3]) * 8 // 1024} MB"
    return {
        "date": datetime.now(UTC).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "mem": mem,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "sqlalchemy": sa.__version__,
        "psycopg": psycopg.__version__,
        "apscheduler": apscheduler.__version__,
        "postgres": version,
        "pg_settings": (
            f"shared_buffers {sb}, synchronous_commit {settings.get('synchronous_commit')}, "
            f"fsync {settings.get('fsync')}, wal_level {settings.get('wal_level')}, "
            f"commit_delay {settings.get('commit_delay')}"
        ),
        "os": platform.platform(),
        "commit": engine_commit(),
    }


def engine_commit() -> str:
    """The commit the engine is at, and whether engine/ has changes on top (read-only git)."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "engine"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    sha, _, subject = head.partition(" ")
    return f"`{sha}` ({subject})" + (", with uncommitted changes in engine/" if dirty else "")


def _med(rounds: list[dict[str, dict[str, Any]]], variant: str, key: str) -> float:
    return float(statistics.median(r[variant][key] for r in rounds))


def _mib(kb: int) -> str:
    return f"{kb / 1024:.1f} MiB"


def render(
    args: argparse.Namespace,
    command: str,
    env: dict[str, str],
    load_after: str,
    rounds: list[dict[str, dict[str, Any]]],
    latency: dict[str, Any] | None,
    memory: dict[str, Any] | None,
    profile: dict[str, Any] | None,
    seconds: float,
) -> str:
    lines = [
        SECTION,
        "",
        "Generated by `bench/timers.py` (the issue #4 targets for the deadline timers); "
        "rerun with:",
        "",
        "```",
        command,
        "```",
        "",
        f"Machine: {env['nproc']} CPUs ({env['cpu']}), {env['mem']} RAM, shared; the benchmark, "
        f"its workers and PostgreSQL on the same machine. Load average {env['load']} before, "
        f"{load_after} after. PostgreSQL {env['postgres']} on 127.0.0.1 "
        f"({env['pg_settings']}). {env['os']}. Python {env['python']}, SQLAlchemy "
        f"{env['sqlalchemy']}, psycopg {env['psycopg']}, APScheduler {env['apscheduler']}. "
        f"Engine at {env['commit']}. Run {env['date']}, {seconds / 60:.1f} minutes in all. "
        "Each part in a private schema of its own, dropped afterwards.",
        "",
        "What a timer effect is: the timer row marked `fired`, the case's version bumped (its "
        "data untouched: a warning changes none of it), a `deadline_warning` history row, the "
        "rule instance's `warned` set, and one outbox row (template `deadline_warning`, to "
        "the handler) — all in the same commit, as the target counts them.",
        "",
    ]
    if rounds:
        floor = _med(rounds, "floor", "rate")
        engine = _med(rounds, "engine", "rate")
        dbapi = _med(rounds, "dbapi", "rate")
        ratios = [r["engine"]["rate"] / r["floor"]["rate"] for r in rounds]
        dratios = [r["dbapi"]["rate"] / r["floor"]["rate"] for r in rounds]
        lines += [
            "### Throughput: 4 workers draining due timers",
            "",
            f"{args.timers:,} claims in `materials_complete`, each with one pending `hand_over` "
            f"warning timer due; {args.workers} spawned worker processes, batches of "
            f"{args.batch}; timed from the start signal (every worker connected and warm) to "
            "the last worker finding nothing left. Each variant on an identical fresh schema "
            "(cloned the same way), the order rotated each round, a `CHECKPOINT` before each; "
            "every effect checked afterwards (each clone: its timer fired once, one warning "
            "row, one outbox row, one version more, its instance warned).",
            "",
            "- **floor**: plain psycopg, autocommit, `UPDATE timers SET status='fired', "
            "claimed_by, fired_at WHERE id IN (SELECT id FROM timers WHERE status='pending' "
            "AND due_at <= now ORDER BY due_at LIMIT 100 FOR UPDATE SKIP LOCKED)` until it "
            "updates nothing: claiming and marking, no effect.",
            "- **engine**: `Engine.run_due_timers(worker=…, batch=100)` in a loop, on a "
            "`FakeClock` after the due times. On PostgreSQL a batch is two statements and a "
            "commit: one takes the due timers (`FOR UPDATE SKIP LOCKED`), marks them fired "
            "and reads them with their case and rule instance; one records all the effects "
            "(data-modifying CTEs over four JSON documents).",
            "- **dbapi** (a what-if, not the engine): the same effects, computed by the "
            "engine's own `timers.effect()`, a claimed batch per transaction in plain "
            "psycopg — claim-and-mark `UPDATE timers … WHERE id = ANY(ARRAY(SELECT … FOR UPDATE "
            "SKIP LOCKED)) … RETURNING`, one `SELECT` of the cases (`id = ANY(%s)`), one of the instances, "
            "`UPDATE cases … FROM jsonb_to_recordset(%s)` with the version check, `INSERT "
            "INTO history … SELECT … FROM jsonb_to_recordset(%s)`, `UPDATE case_deadlines … "
            "FROM jsonb_to_recordset(%s)`, `INSERT INTO outbox …`, commit: eight statements "
            "per 100 effects, each batch's rows passed as one JSON document encoded once with "
            "orjson.",
            "",
            "| round | floor timers/s | engine effects/s | dbapi effects/s | engine / floor "
            "| dbapi / floor | machine CPU busy (engine) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for i, r in enumerate(rounds, 1):
            lines.append(
                f"| {i} | {r['floor']['rate']:,.0f} | {r['engine']['rate']:,.0f} | "
                f"{r['dbapi']['rate']:,.0f} | {r['engine']['rate'] / r['floor']['rate']:.1%} | "
                f"{r['dbapi']['rate'] / r['floor']['rate']:.1%} | "
                f"{r['engine']['machine_busy']:.0%} |"
            )
        lines.append(
            f"| **median** | **{floor:,.0f}** | **{engine:,.0f}** | **{dbapi:,.0f}** | "
            f"**{statistics.median(ratios):.1%}** | **{statistics.median(dratios):.1%}** | "
            f"{_med(rounds, 'engine', 'machine_busy'):.0%} |"
        )
        lines += [
            "",
            "CPU per timer, median over the rounds (the whole machine's busy time during the "
            'drain divided by the timers; "workers" is the worker processes\' own CPU time, '
            "the rest is mostly PostgreSQL's backends):",
            "",
            "| variant | machine CPU µs/timer | of it in the workers | of it elsewhere "
            "(PostgreSQL) | machine busy | WAL bytes/timer |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for v in VARIANTS:
            all_us = _med(rounds, v, "machine_cpu") / args.timers * 1e6
            w_us = _med(rounds, v, "worker_cpu") / args.timers * 1e6
            lines.append(
                f"| {v} | {all_us:.0f} | {w_us:.0f} | {max(0.0, all_us - w_us):.0f} | "
                f"{_med(rounds, v, 'machine_busy'):.0%} | "
                f"{_med(rounds, v, 'wal_bytes') / args.timers:,.0f} |"
            )
        lines += [
            "",
            "(WAL includes the full-page images of every page first touched after the "
            "`CHECKPOINT` that precedes each drain, the same for every variant.)",
            "",
        ]
    if latency:
        lines += [
            f"### Latency: one Worker, tick {args.tick:g} s, system clock",
            "",
            f"One `engine.scheduler.Worker(tick={args.tick}, batch={args.batch})` on the system "
            f"clock in its own process; {args.latency_timers:,} claims whose warning timers "
            f"were given due times spread at random over {args.latency_spread:.0f} s of real "
            f"time (~{args.latency_timers / args.latency_spread:,.0f} per second), the first "
            f"{1 + args.tick:g} s (a tick and a second) after they were written, so that the "
            "worker has seen them at a tick before any falls due (a worker learns of timers "
            "another process writes at its next tick). **effect** = when the timer row was marked "
            "fired inside the effect's transaction (`clock_timestamp()` from a trigger in the "
            "private schema; the commit follows within milliseconds) minus `due_at`; **engine "
            "stamp** = the timer's `fired_at` (the instant its claim read the clock) minus "
            "`due_at`.",
            "",
            "| lateness | p50 | p90 | p99 | max | min | over 1 s |",
            "|---|---:|---:|---:|---:|---:|---:|",
            f"| effect | {latency['p50']:.3f} s | {latency['p90']:.3f} s | "
            f"{latency['p99']:.3f} s | {latency['max']:.3f} s | {latency['min']:.3f} s | "
            f"{int(latency['over'])} of {int(latency['n']):,} |",
            f"| engine stamp | {latency['s50']:.3f} s | {latency['s90']:.3f} s | "
            f"{latency['s99']:.3f} s | {latency['smax']:.3f} s | {latency['smin']:.3f} s | |",
            "",
            "How late the effects were (share of the timers):",
            "",
            "| " + " | ".join(label for label, _ in latency["buckets"]) + " |",
            "|" + "---:|" * len(latency["buckets"]),
            "| " + " | ".join(f"{share:.1%}" for _, share in latency["buckets"]) + " |",
            "",
        ]
    if memory:
        w, m = memory["without"], memory["with"]
        lines += [
            f"### Memory and the claim with {args.pending:,} pending timers",
            "",
            f"A fresh worker process opens the engine, drains {args.mem_due:,} due warning "
            f"timers (`run_due_timers(batch=100, limit={args.mem_step:,})` in a loop), then "
            "does 100 idle checks (`run_due_timers` + `next_timer_due` with nothing due, what "
            "`Worker.drain` does on an idle tick), reading VmRSS after each step. First with "
            "no other pending timers; then, in another fresh process (a day later on its "
            f"clock, on a second set of {args.mem_due:,} timers due by then), after "
            f"{args.pending:,} pending timers that are not due (due from 30 days on, one a "
            "second, all on one case) were added to the same table with one `INSERT … SELECT "
            f"generate_series` ({memory['fill_s']:.1f} s, then `VACUUM ANALYZE` "
            f"{memory['vacuum_s']:.1f} s).",
            "",
            f"| step | RSS, 0 not-due pending | RSS, {args.pending:,} not-due pending |",
            "|---|---:|---:|",
        ]
        for a, b in zip(w["rows"], m["rows"], strict=False):
            lines.append(f"| {a[0]} | {_mib(a[2]['VmRSS'])} | {_mib(b[2]['VmRSS'])} |")
        lines += [
            f"| peak (VmHWM) | {_mib(w['rows'][-1][2]['VmHWM'])} | "
            f"{_mib(m['rows'][-1][2]['VmHWM'])} |",
            f"| effects/s while draining (one worker) | {w['rate']:,.0f} | {m['rate']:,.0f} |",
            "",
            "The PostgreSQL batch's take as the engine runs it (`CoreTx.take_due_timer_batch("
            "now, 100, …)`: lock, mark and read with case and instance; in a transaction rolled "
            "back afterwards, median of 30), the leased claim of SQLite and of PostgreSQL's "
            "fallback path (`CoreTx.claim_due_timers(now, …, limit=100)`, likewise), the idle "
            "claim (nothing due) and `next_due()` (the `min(due_at)` behind the wake-up):",
            "",
            "| table | rows (pending) | table + indexes | pending index | take 100 | "
            "leased claim 100 | idle claim | next_due |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for label, c in (
            (f"{args.mem_due:,} due, {args.mem_due:,} due later", memory["small"]),
            (f"{args.mem_due:,} due, {args.pending:,} not due", memory["big"]),
            (f"0 due, {args.pending:,} not due", memory["big_idle"]),
        ):
            lines.append(
                f"| {label} | {c['rows']:,} ({c['pending']:,}) | {c['table_size']} | "
                f"{c['index_size']} | {c['take_ms']:.2f} ms ({c['taken']} rows) | "
                f"{c['claim_ms']:.2f} ms ({c['claimed']} rows) | "
                f"{c['idle_ms']:.2f} ms | {c['next_due_ms']:.2f} ms |"
            )
        lines += [
            "",
            f"The claim's `SELECT` with {args.mem_due:,} due and {args.pending:,} not-due "
            "pending timers (`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)`):",
            "",
            "```",
            *memory["big"]["plan"],
            "```",
            "",
            "The batch's take statement, the same table (the `UPDATE` finds the ids through "
            "the primary key: written as `UPDATE … FROM (the SELECT)` the planner hashed a "
            "sequential scan of the whole table, 3 of 7 ms a batch at 20,000 rows):",
            "",
            "```",
            *memory["big"]["take_plan"],
            "```",
            "",
        ]
    if profile:
        n = profile["n"]
        total = next((us for label, us, _ in profile["phases"] if "total" in label), 1.0)
        lines += [
            "### Where the time of an effect goes (one worker, cProfile)",
            "",
            f"One process, `run_due_timers(batch=100, limit={n:,})` on {n:,} due timers: "
            f"**{profile['rate']:,.0f} effects/s** unprofiled ({profile['unprofiled_us']:.0f} µs "
            f"each, {profile['cpu_us']:.0f} µs of it on the worker's CPU, the rest waiting for "
            "PostgreSQL). Then the same again under cProfile (wall time; it inflates the "
            "Python parts, so read shares rather than µs), with the statements counted "
            "(SQLAlchemy's `before_cursor_execute`, `begin`, `commit` and the pool's "
            "`checkout`):",
            "",
            "| per 100 effects | count |",
            "|---|---:|",
        ]
        for k, v in profile["statements"].items():
            lines.append(f"| {k} | {v / n * 100:.1f} |")
        lines += [
            "",
            "| phase (cumulative; rows overlap) | µs per effect (profiled) | share "
            "| calls per 100 effects |",
            "|---|---:|---:|---:|",
        ]
        for label, us, calls in profile["phases"]:
            lines.append(f"| {label} | {us:.0f} | {us / total:.0%} | {calls * 100:.1f} |")
        lines += [
            "",
            "Top functions by own time:",
            "",
            "| function | own µs per effect | cumulative µs per effect |",
            "|---|---:|---:|",
        ]
        for where, tt, ct in profile["top"]:
            lines.append(f"| `{where}` | {tt:.1f} | {ct:.1f} |")
        lines.append("")
    lines += reading(args, rounds, latency, memory, profile)
    lines += ["", END_MARKER, ""]
    return "\n".join(lines)


def _phase(profile: dict[str, Any], start: str) -> float:
    return next((us for label, us, _ in profile["phases"] if label.startswith(start)), 0.0)


def reading(
    args: argparse.Namespace,
    rounds: list[dict[str, dict[str, Any]]],
    latency: dict[str, Any] | None,
    memory: dict[str, Any] | None,
    profile: dict[str, Any] | None,
) -> list[str]:
    lines = ["### Reading against the targets", ""]
    if rounds:
        engine = _med(rounds, "engine", "rate")
        floor = _med(rounds, "floor", "rate")
        dbapi = _med(rounds, "dbapi", "rate")
        ok = engine >= TARGET_RATE
        e_all = _med(rounds, "engine", "machine_cpu") / args.timers * 1e6
        e_py = _med(rounds, "engine", "worker_cpu") / args.timers * 1e6
        d_all = _med(rounds, "dbapi", "machine_cpu") / args.timers * 1e6
        d_py = _med(rounds, "dbapi", "worker_cpu") / args.timers * 1e6
        ncpu = os.cpu_count() or 1
        lines.append(
            f"- **Throughput, >= {TARGET_RATE:,} effects/s with 4 workers: "
            + ("met" if ok else "not met")
            + f"** — {engine:,.0f} effects/s (median of {len(rounds)} "
            + ("rounds), " if len(rounds) > 1 else "round), ")
            + (
                f"{engine / TARGET_RATE:.1f}x the target."
                if ok
                else f"{engine / TARGET_RATE:.0%} of the target ({TARGET_RATE / engine:.1f}x "
                "short)."
            )
            + (
                f" {len(below)} of the {len(rounds)} rounds came in under it (the lowest "
                f"{min(below):,.0f}/s): on this shared machine the margin is within the "
                "run-to-run spread."
                if (
                    below := [
                        r["engine"]["rate"] for r in rounds if r["engine"]["rate"] < TARGET_RATE
                    ]
                )
                else ""
            )
            + f" The claim-and-mark floor reaches {floor:,.0f} timers/s in the same run on "
            f"a {args.timers:,}-row table (the issue measured ~65,000/s against a million "
            f"rows), so the engine is at {engine / floor:.1%} of it. The plain-psycopg "
            f"what-if with the same effects reaches {dbapi:,.0f} effects/s "
            f"({dbapi / engine:.1f}x the engine, "
            + ("over the target" if dbapi >= TARGET_RATE else f"{dbapi / TARGET_RATE:.0%} of it")
            + "). The four workers and PostgreSQL share "
            f"{ncpu} CPUs, which are busy through the drain: the rate is CPU per effect — "
            f"{e_all:.0f} µs for the engine ({e_py:.0f} µs in the Python workers, "
            f"{max(0.0, e_all - e_py):.0f} µs in PostgreSQL), {d_all:.0f} µs for the what-if "
            f"({d_py:.0f} µs in Python). {TARGET_RATE:,} effects/s on {ncpu} CPUs needs "
            f"{ncpu * 1e6 / TARGET_RATE:.0f} µs of CPU per effect, Python and PostgreSQL "
            "together."
        )
    if latency:
        ok = latency["p99"] <= TARGET_P99
        lines.append(
            f"- **Latency, p99 <= {TARGET_P99:.0f} s at a 0.5 s tick: "
            + ("met" if ok else "not met")
            + f"** — p99 {latency['p99']:.3f} s, max {latency['max']:.3f} s "
            f"({int(latency['over'])} of {int(latency['n']):,} over 1 s), with "
            f"~{args.latency_timers / args.latency_spread:,.0f} timers falling due per second "
            "on one worker: "
            + (
                f"{(1 - TARGET_P99 / max(latency['p99'], 1e-9)):.0%} over the target."
                if not ok
                else f"{TARGET_P99 - latency['p99']:.2f} s of margin."
            )
            + (
                f" But only {latency['buckets'][0][1]:.0%} of the effects came within 50 ms "
                "and the rest spread over the whole tick (the distribution above): at this "
                "rate the next timer is usually already due when a drain ends, and "
                "`Worker._wake_for_next` arranges a wake-up only when `0 < wait < tick`, so a "
                "timer that fell due during the drain waits for the next tick. "
                + (
                    "The target is met because the tick is 0.5 s: lateness follows the tick, "
                    "not the work. "
                    if ok
                    else ""
                )
                + "Ad hoc (2026-11-25, this benchmark with `--tick 2`): 600 timers over 10 s "
                "gave p50 0.77 s, p99 1.92 s; 20 timers over 20 s (each drain ending before "
                "the next is due) gave p50 6 ms. Since then `Worker.drain()` checks again at "
                "once while its last run fired something and the next timer is already due; "
                "an ad hoc rerun with `--tick 2` did not narrow the spread yet, so the "
                "wake-up path still needs work (a follow-up)."
                if latency["buckets"][0][1] < 0.8
                else f" {latency['buckets'][0][1]:.0%} of the effects came within 50 ms: the "
                "wake-up at the next due time works at this rate."
            )
        )
    if memory:
        w, m = memory["without"], memory["with"]
        executed = next(
            (
                float(line.split(":", 1)[1].split()[0])
                for line in memory["big"]["plan"]
                if line.startswith("Execution Time:")
            ),
            None,
        )
        start_diff = (m["rows"][0][2]["VmRSS"] - w["rows"][0][2]["VmRSS"]) / 1024
        grow_w = (w["rows"][-1][2]["VmRSS"] - w["rows"][0][2]["VmRSS"]) / 1024
        grow_m = (m["rows"][-1][2]["VmRSS"] - m["rows"][0][2]["VmRSS"]) / 1024
        flat = abs(start_diff) < 5 and abs(grow_m - grow_w) < 2 and grow_m < 5
        lines.append(
            f"- **Memory flat with {args.pending:,} pending timers: "
            + ("met" if flat else "not met")
            + f"** — the worker starts {start_diff:+.1f} MiB apart with and without them and "
            f"grows {grow_m:+.1f} MiB over {args.mem_due:,} effects and 100 idle checks with "
            f"them ({grow_w:+.1f} MiB without). The claim reads at most `LIMIT 100` rows "
            "through the partial index on `due_at WHERE status = 'pending'` and stops at the "
            f"first not-due entry: the batch's take of 100 in {memory['big']['take_ms']:.2f} ms "
            f"with the {args.pending:,} against {memory['small']['take_ms']:.2f} ms without "
            f"them; the leased claim {memory['big']['claim_ms']:.2f} ms against "
            f"{memory['small']['claim_ms']:.2f} ms, "
            f"{memory['big_idle']['idle_ms']:.2f} ms when nothing is due; `next_due()` "
            f"{memory['big_idle']['next_due_ms']:.2f} ms."
            + (
                f" Of the claim's {memory['big']['claim_ms']:.1f} ms, its `SELECT … FOR UPDATE "
                f"SKIP LOCKED` executes in {executed:.2f} ms (the plan above); the rest is the "
                "lease `UPDATE` of the 100 rows and the second `SELECT` that reads them back "
                "(this is the leased claim of SQLite and of PostgreSQL's fallback path; a "
                "PostgreSQL batch takes, marks and reads in one statement)."
                if executed is not None
                else ""
            )
        )
    if profile:
        lines += ["", *where_the_time_goes(rounds, profile, args)]
    return lines


def where_the_time_goes(
    rounds: list[dict[str, dict[str, Any]]], profile: dict[str, Any], args: argparse.Namespace
) -> list[str]:
    """The profile's reading and the suggestions, from the figures of this run."""
    n = profile["n"]
    st = profile["statements"]
    per100 = {k: v / n * 100 for k, v in st.items()}
    commits = per100.get("COMMIT", 0.0)
    checkouts = next((v for k, v in per100.items() if k.startswith("pool check-out")), 0.0)
    many_calls = sum(v for k, v in per100.items() if "executemany" in k and "rows" not in k)
    many_rows = sum(v for k, v in per100.items() if k.endswith("— rows"))
    single = sum(
        v
        for k, v in per100.items()
        if k not in ("COMMIT", "BEGIN") and "executemany" not in k and "check-out" not in k
    )
    round_trips = single + many_calls + commits + per100.get("BEGIN", 0.0) + checkouts
    executions = single + many_rows + checkouts
    total = _phase(profile, "run_due_timers")
    batch_shape = _phase(profile, "_fire_batch") > 0
    lines = [
        "**Where the time goes.** "
        f"One worker alone fires {profile['rate']:,.0f} effects/s ({profile['unprofiled_us']:.0f} "
        f"µs each, {profile['cpu_us']:.0f} µs of it Python on the worker's CPU). Per 100 "
        f"effects the engine commits {commits:.0f} transactions and makes ~{round_trips:.0f} "
        f"round trips (pre-ping, BEGIN, statements, COMMIT), which PostgreSQL runs as "
        f"~{executions:.0f} statement executions"
        + (
            f" ({many_rows:.0f} of them rows of {many_calls:.0f} `executemany` calls, one "
            "execution per row)."
            if many_calls
            else "."
        ),
    ]
    if rounds:
        e_all = _med(rounds, "engine", "machine_cpu") / args.timers * 1e6
        e_py = _med(rounds, "engine", "worker_cpu") / args.timers * 1e6
        d_all = _med(rounds, "dbapi", "machine_cpu") / args.timers * 1e6
        d_py = _med(rounds, "dbapi", "worker_cpu") / args.timers * 1e6
        lines[-1] += (
            f" With four workers the machine is CPU-bound, and of the {e_all:.0f} µs of CPU "
            f"an effect costs, {e_py:.0f} µs ({e_py / e_all:.0%}) are the engine's Python and "
            f"{e_all - e_py:.0f} µs PostgreSQL. The plain-psycopg what-if does the same "
            f"effects with {d_py:.0f} µs of Python and {max(0.0, d_all - d_py):.0f} µs of "
            "PostgreSQL"
            + (
                ": the gap is mostly on the client"
                if e_py > 1.2 * d_py
                else ": the engine's client side is now as light as the hand-written one"
            )
            + f", and PostgreSQL's own share is what is left — on {os.cpu_count()} CPUs "
            "that share alone caps any client at "
            f"~{(os.cpu_count() or 1) * 1e6 / max(1.0, d_all - d_py):,.0f} effects/s."
        )
    if batch_shape:
        shares = [
            (label.strip(), us / total)
            for label, us, _ in profile["phases"]
            if label.startswith("  ") and not label.strip().startswith("of which")
        ]
        shares.sort(key=lambda x: -x[1])
        claim = _phase(profile, "claim_due_timers") / total
        convert = _phase(profile, "psycopg: converting") / total
        sa_params = _phase(profile, "SQLAlchemy: compile") / total
        lines[-1] += (
            " In the profile, by share of `run_due_timers`: "
            + ", ".join(f"{label.split(':')[0]} {share:.0%}" for label, share in shares[:6])
            + f"; the separate (leased) claim transaction {claim:.0%}; SQLAlchemy's "
            "per-execution "
            f"parameter processing {sa_params:.0%} and psycopg's query conversion "
            f"{convert:.0%} (both counted inside the rows above)."
        )
        pg_share = ""
        if rounds:
            e_all = _med(rounds, "engine", "machine_cpu") / args.timers * 1e6
            e_py = _med(rounds, "engine", "worker_cpu") / args.timers * 1e6
            pg_share = (
                f" With four workers PostgreSQL's share is now {max(0.0, e_all - e_py):.0f} of "
                f"the {e_all:.0f} µs of CPU an effect costs ({1 - e_py / e_all:.0%})."
            )
        lines += [
            "",
            "**What was done, and what is left.** Since the first run of this benchmark: a "
            "claimed batch fired in one transaction, ids as one array and rows as one JSON "
            "document per statement; then (this issue's last round) on PostgreSQL the "
            "timers taken, marked and read with their case and rule instance in one "
            "statement (no `FOR UPDATE` lock written before a separate `UPDATE`), all the "
            "writes of a batch in one statement (every waiting round trip costs the client "
            "~0.3 ms of CPU on this machine), plain named tuples instead of SQLAlchemy rows "
            "(~1 µs per attribute access), the case data neither read nor rewritten unless an "
            "escalation changes it, one connection per `run_due_timers` call, and "
            "`fillfactor = 80` on cases and rule instances so a version bump can be a HOT "
            "update (migration 0006). One worker's CPU per effect went from ~206 µs (measured "
            "ad hoc before these changes, the same clones, one worker) to "
            f"{profile['cpu_us']:.0f} µs in the profile run above." + pg_share,
            "",
            "1. What is left is mostly PostgreSQL's own work: five row writes per effect (the "
            "timer; the case's new version, which touches all eight case indexes when it is "
            "not a HOT update; the history row; the instance; the outbox row with its "
            "indexes) and their WAL. Checked ad hoc (2026-11-25, single worker, three runs "
            "each): dropping the outbox's case index and key constraint, or the history's "
            "surrogate key, moved PostgreSQL's CPU per effect by less than the run-to-run "
            "noise (±20 µs). For headroom PostgreSQL wants CPUs of its own.",
            "2. On the client, what is left is `timers.effect()` (the Chinese notes, the "
            "notice's context) and encoding the batch's JSON documents.",
        ]
    else:
        update_rows = per100.get("UPDATE timers", 0.0)
        lines += [
            "",
            "**Suggestions, biggest first:**",
            "",
            "1. **One transaction per claimed batch, with set-based statements** (the "
            "**dbapi** what-if): claim and mark with one `UPDATE … FROM (SELECT … FOR UPDATE "
            "SKIP LOCKED) … RETURNING`, read the batch's cases and rule instances with one "
            "statement each, compute the effects in Python as now, then one `UPDATE cases`, "
            "one `INSERT` of the history rows and one `UPDATE` of the instances, each "
            "unpacking the batch from one JSON document (`jsonb_to_recordset`), and one "
            f"commit — instead of {commits:.0f} commits and ~{round_trips:.0f} round trips "
            f"per 100 effects today ({update_rows:.0f} timer updates).",
            f"2. No pre-ping per check-out ({checkouts:.0f} per 100 effects): one "
            "connection for a whole `run_due_timers` call.",
        ]
    return lines


def write_doc(path: Path, section: str) -> None:
    """Append the section at the end of the file, or replace it where it already is."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if SECTION in old:
        before, rest = old.split(SECTION, 1)
        after = rest.split(END_MARKER, 1)[1] if END_MARKER in rest else ""
        text = before + section.rstrip("\n") + "\n" + after.lstrip("\n")
    else:
        text = old.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.timers", description=__doc__.split("\n")[0] if __doc__ else None
    )
    p.add_argument("--timers", type=int, default=20_000, help="due timers per drain (20000)")
    p.add_argument("--workers", type=int, default=4, help="worker processes (4)")
    p.add_argument("--batch", type=int, default=100, help="timers per claim (100)")
    p.add_argument("--rounds", type=int, default=3, help="throughput rounds (3)")
    p.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="throughput variants, comma-separated (floor,engine,dbapi); the report needs all",
    )
    p.add_argument("--latency-timers", type=int, default=2000, help="latency timers (2000)")
    p.add_argument(
        "--latency-spread", type=float, default=20.0, help="seconds they are spread over (20)"
    )
    p.add_argument("--tick", type=float, default=0.5, help="the latency worker's tick (0.5)")
    p.add_argument(
        "--pending", type=int, default=1_000_000, help="not-due pending timers (1000000)"
    )
    p.add_argument("--mem-due", type=int, default=5000, help="due timers per memory run (5000)")
    p.add_argument("--mem-step", type=int, default=1000, help="timers per RSS reading (1000)")
    p.add_argument(
        "--profile", type=int, default=2000, metavar="N", help="profiled effects; 0 skips (2000)"
    )
    p.add_argument(
        "--skip",
        default="",
        help="parts to skip, comma-separated: throughput,latency,memory,profile",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="the Markdown report the section goes into ('-' for none)",
    )
    args = p.parse_args(argv)
    args.url = os.environ.get(URL_ENV, DEFAULT_URL)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    given = list(argv) if argv is not None else sys.argv[1:]
    command = " ".join([".venv/bin/python -m bench.timers", *given])
    env = machine(args.url)
    print(
        f"{env['nproc']} CPUs ({env['cpu']}), load {env['load']}, PostgreSQL {env['postgres']} "
        f"({env['pg_settings']}), Python {env['python']}",
        flush=True,
    )
    started = time.perf_counter()
    rounds = [] if "throughput" in skip else run_throughput(args)
    latency = None if "latency" in skip else run_latency(args)
    memory = None if "memory" in skip else run_memory(args)
    profile = None if "profile" in skip or not args.profile else run_profile(args)
    seconds = time.perf_counter() - started
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    text = render(args, command, env, load_after, rounds, latency, memory, profile, seconds)
    print()
    print(text)
    print(f"(whole run {seconds:.0f}s)")
    if str(args.out) != "-":
        write_doc(args.out, text)
        print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
