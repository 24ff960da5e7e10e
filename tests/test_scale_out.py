"""Scale-out of the deadline timers on PostgreSQL (issue #4): several worker processes
drain one timers table, each effect happens exactly once, and a worker killed with
SIGKILL while it holds a lease loses its timers to the others once the lease runs out,
not before.

The due timers are made in bulk: one real claim is brought to ``materials_complete``
through the engine, then cloned with SQL (its case row, its history, its ``hand_over``
rule instance and one due warning timer per clone), so the workers fire real effects on
real cases without 20,000 trips through ``open_case`` and ``fire``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
import traceback
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from baoflow.engine import SHANGHAI, ChineseOfficialCalendar, FakeClock, open_engine
from baoflow.engine.draining import Drainer
from baoflow.engine.store import normalise_url

from tests.conftest import POLICIES
from tests.test_timers import to_materials_complete

pytestmark = pytest.mark.postgres

CTX = mp.get_context("spawn")  # a fresh interpreter each, as separate workers would be

OPENED = datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI)  # materials complete
LATER = datetime(2026, 5, 20, 9, 0, tzinfo=SHANGHAI)  # well after every clone's timer
LEASE = timedelta(minutes=10)
WAIT = 240.0  # seconds a queue read may block before the test gives up


def _calendar() -> ChineseOfficialCalendar:
    return ChineseOfficialCalendar()


# --- the workers (module level: spawned processes import them) -----------------------
def _worker(url: str, name: str, inbox: Any, out: Any) -> None:
    """A timer worker with its own engine and clock. Commands from ``inbox``:
    ``(instant, batch)`` drains everything due at ``instant`` (run_due_timers until a
    run fires and skips nothing) and reports the totals; ``None`` stops."""
    eng = None
    try:
        clock = FakeClock(OPENED)
        eng = open_engine(url, clock=clock, calendar=_calendar(), migrate=False)
        with eng.store.read() as tx:  # warm the connection so all start level
            tx.next_due()
        out.put((name, "ready"))
        while (command := inbox.get(timeout=WAIT)) is not None:
            instant, batch = command
            clock.set(instant)
            fired = skipped = retried = runs = 0
            started = time.perf_counter()
            while True:
                run = eng.run_due_timers(worker=name, batch=batch, lease=LEASE)
                runs += 1
                fired += run.fired
                skipped += run.skipped
                retried += run.retried
                if run.fired == 0 and run.skipped == 0:
                    break
            elapsed = time.perf_counter() - started
            totals = {"fired": fired, "skipped": skipped, "retried": retried, "runs": runs}
            out.put((name, {**totals, "seconds": elapsed}))
    except BaseException:
        out.put((name, "error: " + traceback.format_exc()))
    finally:
        if eng is not None:
            eng.close()


def _claim_and_hang(url: str, at: datetime, batch: int, out: Any) -> None:
    """Lease a batch as worker "doomed", say which, and hang until killed."""
    try:
        eng = open_engine(url, clock=FakeClock(at), calendar=_calendar(), migrate=False)
        now = eng.clock.now()
        with eng.store.write() as tx:
            claimed = tx.claim_due_timers(now, "doomed", now + LEASE, batch)
        out.put(("claimed", [int(r.id) for r in claimed]))
    except BaseException:
        out.put(("error", traceback.format_exc()))
        return
    time.sleep(3600)  # killed long before this


def _fire_until_killed(url: str, at: datetime, batch: int, out: Any) -> None:
    """Fire timers as worker "doomed", in big batches, until killed mid-batch."""
    try:
        eng = open_engine(url, clock=FakeClock(at), calendar=_calendar(), migrate=False)
        with eng.store.read() as tx:
            tx.next_due()
        out.put(("ready", None))
        while eng.run_due_timers(worker="doomed", batch=batch, lease=LEASE).fired:
            pass
        out.put(("finished before the kill", None))
    except BaseException:
        out.put(("error", traceback.format_exc()))
    time.sleep(3600)


# --- helpers in the test process ------------------------------------------------------
class Workers:
    """Spawned :func:`_worker` processes, driven by command."""

    def __init__(self, url: str, names: list[str]) -> None:
        self.out = CTX.Queue()
        self.inboxes = {n: CTX.Queue() for n in names}
        self.procs = {
            n: CTX.Process(target=_worker, args=(url, n, self.inboxes[n], self.out), daemon=True)
            for n in names
        }
        for p in self.procs.values():
            p.start()

    def _collect(self) -> dict[str, Any]:
        replies = dict(self.out.get(timeout=WAIT) for _ in self.procs)
        errors = {n: r for n, r in replies.items() if isinstance(r, str) and r != "ready"}
        assert not errors, errors
        return replies

    def ready(self) -> None:
        self._collect()

    def drain(self, at: datetime, batch: int = 100) -> dict[str, dict[str, Any]]:
        """All workers drain at ``at`` at once; each one's totals."""
        for inbox in self.inboxes.values():
            inbox.put((at, batch))
        return self._collect()

    def stop(self) -> None:
        for inbox in self.inboxes.values():
            inbox.put(None)
        for p in self.procs.values():
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join(timeout=10)


@pytest.fixture
def sql(pg_only_url: str) -> Iterator[sa.Engine]:
    admin = sa.create_engine(normalise_url(pg_only_url))
    yield admin
    admin.dispose()


def _clone_claims(url: str, sql: sa.Engine, n: int) -> tuple[int, int]:
    """``n`` claims at ``materials_complete``, each with one pending warning timer due
    long before ``LATER``; returns the source case's id and version.

    The source is a real claim; the clones copy its row, history and ``hand_over``
    instance in one transaction. The source's own timers are cancelled so only the
    clones' ``n`` timers are due."""
    eng = open_engine(url, clock=FakeClock(OPENED), calendar=_calendar())
    try:
        eng.policies.add(POLICIES)  # type: ignore[attr-defined]
        source = to_materials_complete(eng)
    finally:
        eng.close()
    assert source.state == "materials_complete"
    params = {"src": source.id, "n": n, "pattern": source.number + "-%"}
    with sql.begin() as conn:
        run = conn.execute
        run(
            sa.text(
                """
                INSERT INTO cases (number, workflow, workflow_version, state, data, version,
                                   created_at, updated_at, policy_number, insured_name, id_number)
                SELECT s.number || '-' || lpad(g::text, 5, '0'), s.workflow, s.workflow_version,
                       s.state, s.data, s.version, s.created_at, s.updated_at,
                       s.policy_number, s.insured_name, s.id_number
                FROM cases s CROSS JOIN generate_series(1, :n) AS g
                WHERE s.id = :src
                """
            ),
            params,
        )
        run(
            sa.text(
                """
                INSERT INTO history (case_id, seq, at, actor, event, from_state, to_state,
                                     data, notes, hash)
                SELECT c.id, h.seq, h.at, h.actor, h.event, h.from_state, h.to_state,
                       h.data, h.notes, h.hash
                FROM cases c JOIN history h ON h.case_id = :src
                WHERE c.number LIKE :pattern
                """
            ),
            params,
        )
        run(
            sa.text(
                """
                INSERT INTO case_deadlines (case_id, rule, armed_seq, started_at, due_at,
                                            status, pause_reason, paused_since, paused_seconds,
                                            warned, breached_at, level, stopped_at)
                SELECT c.id, d.rule, d.armed_seq, d.started_at, d.due_at, 'running', NULL,
                       NULL, 0, 0, NULL, 0, NULL
                FROM cases c JOIN case_deadlines d ON d.case_id = :src AND d.rule = 'hand_over'
                WHERE c.number LIKE :pattern
                """
            ),
            params,
        )
        run(
            sa.text(
                """
                INSERT INTO timers (case_id, rule, armed_seq, kind, level, due_at, status)
                SELECT c.id, tm.rule, tm.armed_seq, tm.kind, tm.level, tm.due_at, 'pending'
                FROM cases c JOIN timers tm
                  ON tm.case_id = :src AND tm.rule = 'hand_over'
                 AND tm.kind = 'warning' AND tm.level = 1
                WHERE c.number LIKE :pattern
                """
            ),
            params,
        )
        run(sa.text("UPDATE timers SET status = 'cancelled' WHERE case_id = :src"), params)
        counts = run(
            sa.text(
                "SELECT count(*) FILTER (WHERE status = 'pending'), "
                "       count(*) FILTER (WHERE status = 'pending' AND due_at < :later) "
                "FROM timers"
            ),
            {"later": LATER - timedelta(days=7)},
        ).one()
        assert tuple(counts) == (n, n), counts
    with sql.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE cases, history, case_deadlines, timers")
    return source.id, source.version


def _assert_each_clone_warned_exactly_once(sql: sa.Engine, source_id: int, version: int) -> None:
    """Every timer fired; every clone has one warning row, one outbox row, one version
    more, and a history numbered 1..version without gaps or repeats."""
    with sql.connect() as conn:
        statuses = dict(
            conn.execute(
                sa.text(
                    "SELECT status, count(*) FROM timers WHERE case_id <> :src GROUP BY status"
                ),
                {"src": source_id},
            ).all()
        )
        clones = conn.execute(
            sa.text("SELECT count(*) FROM cases WHERE id <> :src"), {"src": source_id}
        ).scalar_one()
        assert statuses == {"fired": clones}, statuses
        warnings = dict(
            conn.execute(
                sa.text(
                    """
                    SELECT n, count(*) FROM (
                        SELECT c.id, count(h.id) AS n
                        FROM cases c LEFT JOIN history h
                          ON h.case_id = c.id AND h.event = 'deadline_warning'
                        WHERE c.id <> :src GROUP BY c.id) per_case
                    GROUP BY n
                    """
                ),
                {"src": source_id},
            ).all()
        )
        assert warnings == {1: clones}, f"{{warning rows per case: cases}} = {warnings}"
        versions = dict(
            conn.execute(
                sa.text("SELECT version, count(*) FROM cases WHERE id <> :src GROUP BY version"),
                {"src": source_id},
            ).all()
        )
        assert versions == {version + 1: clones}, versions
        gaps = conn.execute(
            sa.text(
                """
                SELECT count(*) FROM (
                    SELECT c.id FROM cases c JOIN history h ON h.case_id = c.id
                    GROUP BY c.id, c.version
                    HAVING count(*) <> c.version OR min(h.seq) <> 1
                        OR max(h.seq) <> c.version) bad
                """
            )
        ).scalar_one()
        assert gaps == 0, f"{gaps} case(s) skipped or repeated a version"
        warned = dict(
            conn.execute(
                sa.text(
                    "SELECT warned, count(*) FROM case_deadlines "
                    "WHERE case_id <> :src AND rule = 'hand_over' GROUP BY warned"
                ),
                {"src": source_id},
            ).all()
        )
        assert warned == {1: clones}, warned
        told = dict(
            conn.execute(
                sa.text(
                    """
                    SELECT n, count(*) FROM (
                        SELECT c.id, count(o.id) AS n
                        FROM cases c LEFT JOIN outbox o
                          ON o.case_id = c.id AND o.template = 'deadline_warning'
                        WHERE c.id <> :src GROUP BY c.id) per_case
                    GROUP BY n
                    """
                ),
                {"src": source_id},
            ).all()
        )
        assert told == {1: clones}, f"{{outbox rows per case: cases}} = {told}"


def _fired_by(sql: sa.Engine) -> dict[str, int]:
    with sql.connect() as conn:
        return dict(
            conn.execute(
                sa.text(
                    "SELECT claimed_by, count(*) FROM timers WHERE status = 'fired' "
                    "GROUP BY claimed_by"
                )
            ).all()
        )


def _leased_to(sql: sa.Engine, worker: str) -> dict[int, datetime]:
    """The pending timers leased to ``worker``: id -> claimed_until."""
    with sql.connect() as conn:
        return dict(
            conn.execute(
                sa.text(
                    "SELECT id, claimed_until FROM timers "
                    "WHERE status = 'pending' AND claimed_by = :w"
                ),
                {"w": worker},
            ).all()
        )


def _statuses(sql: sa.Engine, ids: list[int]) -> dict[int, tuple[str, str | None]]:
    with sql.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, status, claimed_by FROM timers WHERE id = ANY(:ids)"),
            {"ids": ids},
        ).all()
    return {r.id: (r.status, r.claimed_by) for r in rows}


# --- 1. four workers, 20,000 timers ---------------------------------------------------
N_TIMERS = 20_000


@pytest.mark.timeout(300)
def test_four_workers_drain_20000_due_timers_each_effect_exactly_once(
    pg_only_url: str, sql: sa.Engine
) -> None:
    t0 = time.perf_counter()
    source_id, version = _clone_claims(pg_only_url, sql, N_TIMERS)
    setup = time.perf_counter() - t0
    names = [f"w{i}" for i in range(4)]
    workers = Workers(pg_only_url, names)
    try:
        workers.ready()
        t1 = time.perf_counter()
        totals = workers.drain(LATER, batch=100)
        drain = time.perf_counter() - t1
    finally:
        workers.stop()
    print(f"\nsetup {setup:.1f}s, drain {drain:.1f}s ({N_TIMERS / drain:.0f} timers/s): {totals}")

    assert sum(t["fired"] for t in totals.values()) == N_TIMERS, totals
    assert sum(t["skipped"] + t["retried"] for t in totals.values()) == 0, totals
    assert all(t["fired"] > 0 for t in totals.values()), f"a worker fired nothing: {totals}"
    # What each worker says it fired is what the table says it fired.
    assert _fired_by(sql) == {n: t["fired"] for n, t in totals.items()}
    _assert_each_clone_warned_exactly_once(sql, source_id, version)


# --- 2. a worker killed with its lease ------------------------------------------------
N_SMALL = 2_000


def _kill(proc: Any) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL


@pytest.mark.timeout(180)
def test_a_worker_killed_holding_a_lease_has_its_timers_fired_by_the_others_after_it(
    pg_only_url: str, sql: sa.Engine
) -> None:
    """The doomed worker leases a batch and is killed before it fires any of it (killed
    inside a batch, its effects written and not committed: tests/test_faultpoints.py)."""
    source_id, version = _clone_claims(pg_only_url, sql, N_SMALL)
    survivors = Workers(pg_only_url, ["s0", "s1"])
    out = CTX.Queue()
    doomed = CTX.Process(target=_claim_and_hang, args=(pg_only_url, LATER, 500, out), daemon=True)
    doomed.start()
    try:
        what, ids = out.get(timeout=WAIT)
        assert what == "claimed", ids
        _kill(doomed)  # it leased 500 timers and fired none of them
        assert len(ids) == 500
        leased = _leased_to(sql, "doomed")
        assert set(leased) == set(ids)
        assert set(leased.values()) <= {LATER + LEASE}

        survivors.ready()
        before = survivors.drain(LATER + LEASE - timedelta(seconds=1))
        assert sum(t["fired"] for t in before.values()) == N_SMALL - 500, before
        assert set(_statuses(sql, ids).values()) == {("pending", "doomed")}

        after = survivors.drain(LATER + LEASE + timedelta(seconds=1))
        assert sum(t["fired"] for t in after.values()) == 500, after
        taken_over = _statuses(sql, ids)
        assert {s for s, _ in taken_over.values()} == {"fired"}
        assert {w for _, w in taken_over.values()} <= {"s0", "s1"}
        again = survivors.drain(LATER + timedelta(days=30))  # nothing is left, or fires twice
        assert sum(t["fired"] + t["skipped"] for t in again.values()) == 0, again
    finally:
        survivors.stop()
        if doomed.is_alive():
            doomed.kill()
    _assert_each_clone_warned_exactly_once(sql, source_id, version)


@pytest.mark.timeout(180)
def test_a_worker_killed_while_firing_leaves_nothing_half_done_and_nothing_twice(
    pg_only_url: str, sql: sa.Engine
) -> None:
    """On PostgreSQL a batch is claimed and fired in one transaction, holding row locks
    instead of a lease: the doomed worker is SIGKILLed once it has committed at least one
    batch. What it committed stays fired (once); the batch it was firing dies with its
    connection — effects and locks together — and the others fire the rest at once,
    without waiting for any lease."""
    source_id, version = _clone_claims(pg_only_url, sql, N_SMALL)
    survivors = Workers(pg_only_url, ["s0", "s1"])
    out = CTX.Queue()
    doomed = CTX.Process(
        target=_fire_until_killed, args=(pg_only_url, LATER, 100, out), daemon=True
    )
    doomed.start()
    try:
        what, detail = out.get(timeout=WAIT)
        assert what == "ready", detail
        deadline = time.monotonic() + 60
        while _fired_by(sql).get("doomed", 0) < 100:
            assert time.monotonic() < deadline, "the doomed worker fired nothing"
            time.sleep(0.001)
        _kill(doomed)
        assert out.empty(), out.get()  # it did not finish before the kill
        fired_by_doomed = _fired_by(sql).get("doomed", 0)
        print(f"\nkilled after firing {fired_by_doomed}")
        assert fired_by_doomed >= 100

        survivors.ready()
        total = 0
        deadline = time.monotonic() + 60
        while total < N_SMALL - fired_by_doomed:  # a dead backend may hold locks a moment
            assert time.monotonic() < deadline, f"only {total} fired by the survivors"
            drained = survivors.drain(LATER)
            total += sum(t["fired"] for t in drained.values())
        assert total == N_SMALL - fired_by_doomed
        assert _fired_by(sql)["doomed"] == fired_by_doomed  # nobody re-fired those
        again = survivors.drain(LATER + timedelta(days=30))
        assert sum(t["fired"] + t["skipped"] for t in again.values()) == 0, again
    finally:
        survivors.stop()
        if doomed.is_alive():
            doomed.kill()
    _assert_each_clone_warned_exactly_once(sql, source_id, version)


# --- what run_due_timers promises one caller ------------------------------------------
def _engine_at(url: str, at: datetime) -> tuple[Any, FakeClock]:
    clock = FakeClock(at)
    return open_engine(url, clock=clock, calendar=_calendar(), migrate=False), clock


def test_run_due_timers_limit_caps_what_one_call_fires(pg_only_url: str, sql: sa.Engine) -> None:
    _clone_claims(pg_only_url, sql, 30)
    eng, _clock = _engine_at(pg_only_url, LATER)
    try:
        run = eng.run_due_timers(worker="capped", batch=25, limit=10)
        assert run.fired == 10
        assert _leased_to(sql, "capped") == {}  # nothing left leased and unfired either
    finally:
        eng.close()


def test_every_batch_is_leased_for_the_full_lease_from_when_it_is_claimed(
    pg_only_url: str, sql: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leased path (SQLite; PostgreSQL after a batch met a concurrent change): a run
    drains 30 timers in batches of 10 while the clock moves 61 s per batch (as it does
    when each batch takes a minute to fire): with a 60 s lease the second batch would be
    free for another worker to take the moment it is claimed."""
    from baoflow.engine.store import CoreTx

    monkeypatch.setattr(Drainer, "_fire_locked_batch", lambda *_a, **_k: None)

    _clone_claims(pg_only_url, sql, 30)
    eng, clock = _engine_at(pg_only_url, LATER)
    claims: list[tuple[datetime, datetime, int]] = []
    claim = CoreTx.claim_due_timers

    def timed_claim(
        self: CoreTx, now: datetime, worker: str, lease_until: datetime, limit: int
    ) -> list[Any]:
        at = clock.now()
        rows = claim(self, now, worker, lease_until, limit)
        if rows:
            claims.append((at, lease_until, len(rows)))
            clock.advance(seconds=61)  # the time this batch takes to fire
        return rows

    monkeypatch.setattr(CoreTx, "claim_due_timers", timed_claim)
    try:
        assert eng.run_due_timers(worker="slow", batch=10, lease=timedelta(seconds=60)).fired == 30
    finally:
        eng.close()
    assert len(claims) == 3
    held_for = [(until - at).total_seconds() for at, until, _ in claims]
    assert held_for == [60.0, 60.0, 60.0], f"seconds each batch was leased for: {held_for}"
