"""Bounded kill -9 loops (issue #15 item 7): a process firing events, a timer worker and a
deliverer are each killed with SIGKILL a few dozen times at random moments and started
again, and what they leave is exactly what one uninterrupted run would have left. On
SQLite and PostgreSQL.

- ``fire()``: a child fires a script of events with idempotency keys it derives from
  the case and the step; killed, it starts again from the last step it knows it did and
  retries it, and the step after it, with the same keys. Every case then equals its
  history (state and version those of the last row, versions 1..n without gaps), each
  key landed once, and no step is in the history twice.
- timer draining: a worker killed inside a batch (the ``timers.batch_recorded`` fault
  point: the effects written, the commit not sent) or at a random moment, its successor
  started with the clock past the dead worker's leases (SQLite keeps them until they
  run out; PostgreSQL's row locks die with the connection). Every timer fires once, and
  each effect — the history row, the notice, the raised priority — happens once.
- delivery: a deliverer killed with a message handed to its channel and not yet marked
  (the ``delivery.sent`` fault point) or at a random moment. Every message is
  delivered, the channel sees at most one duplicate per kill (one for each kill at the
  fault point), and the inbox shows each message once.

The children are forked from a fork server that has imported baoflow and nothing else
(no connection, no thread of the test process): a fresh process as a separate worker
would be, started in milliseconds rather than the second a spawned interpreter takes,
which is what lets a few dozen kills per loop fit in the suite. The moments are seeded
(``SEED``): a failure replays. ``pytest -s`` prints each loop's counts.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import time
import traceback
from collections import Counter
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from baoflow.engine import (
    SHANGHAI,
    ChineseOfficialCalendar,
    Engine,
    FakeClock,
    Hooks,
    faultpoints,
    load_workflow,
    open_engine,
)
from baoflow.engine.store import tables as t
from baoflow.notifications.config import deliverer_from_config
from baoflow.notifications.delivery import Deliverer, InboxChannel
from baoflow.notifications.message import Message
from pydantic import BaseModel

from tests.conftest import HANDLER
from tests.toy import TOY, toy_engine

# A fork server that has imported this module (and so baoflow, SQLAlchemy and both
# drivers) forks each child: see the module's docstring.
CTX = mp.get_context("forkserver")
CTX.set_forkserver_preload(
    [__name__, "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql.psycopg"]
)

SEED = 15
OPENED = datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI)
LATER = OPENED + timedelta(days=1)  # every timer of the toy rule below is due
LEASE = timedelta(seconds=5)
WAIT = 90.0  # seconds a child may take to start or to finish before the test gives up
TIMER_RULE: dict[str, Any] = {
    "period": "4 hours",
    "warnings": [0.5, 0.8],
    "escalations": [{"to": "supervisor", "actions": ["notify", "raise_priority"]}],
}
TIMERS_PER_CASE = 4  # two warnings, the breach, escalation level 1


# --- the workflows (module level: the children build the same) ----------------------
class Step(BaseModel):
    step: int


def stepping_workflow(eng: Engine) -> Engine:
    """``eng`` with "steps": TOY's states and deadline, its ``wait`` and ``resume``
    carrying the step's number (so each step is visible in the history)."""
    spec = deepcopy(TOY)
    spec["workflow"].update(name="steps", case_number_prefix="ST")
    for transition in spec["transitions"]:
        if transition["event"] in ("wait", "resume"):
            transition["schema"] = "step"
    eng.register(load_workflow(spec, Hooks(schemas={"step": Step})))
    return eng


def timer_workflow(eng: Engine) -> Engine:
    """``eng`` with TOY whose deadline is 4 hours: four timers a case, each with a notice."""
    return toy_engine(eng, **TIMER_RULE)


def life_clock(life: int) -> FakeClock:
    """The clock of a child's ``life``-th life: past every lease of the lives before it."""
    return FakeClock(LATER + life * (LEASE + timedelta(seconds=1)))


def child_engine(url: str, clock: FakeClock) -> Engine:
    eng = open_engine(url, clock=clock, calendar=ChineseOfficialCalendar(), migrate=False)
    with eng.store.read() as tx:  # connected before it says it is ready
        tx.next_due()
    return eng


# --- the children ---------------------------------------------------------------------
Progress = Any  # a shared int (multiprocessing RawValue): what the child has done so far


def _child(work: Callable[[], None], ready: Connection) -> None:
    """Run ``work``; a failure goes to the parent as text (exit status 1)."""
    try:
        work()
    except BaseException:
        ready.send("error: " + traceback.format_exc())
        raise SystemExit(1) from None
    ready.send("finished")


def step_key(case_id: int, step: int) -> str:
    return f"kill-loop:{case_id}:{step}"


def step_event(step: int) -> tuple[str, str]:
    """The event of a case's ``step``-th step and the state it leads to."""
    return ("wait", "waiting") if step % 2 == 0 else ("resume", "new")


def fire_steps(
    url: str, ready: Connection, progress: Progress, cases: list[int], steps: int
) -> None:
    """Fire every case's ``steps`` steps, round the cases; ``progress`` counts the steps
    known done, and a new life starts by retrying the last of them."""

    def work() -> None:
        eng = stepping_workflow(child_engine(url, FakeClock(OPENED)))
        ready.send("ready")
        for s in range(max(0, progress.value - 1), steps * len(cases)):
            case_id, step = cases[s % len(cases)], s // len(cases)
            event, state = step_event(step)
            got = eng.fire(
                case_id, event, HANDLER, {"step": step}, idempotency_key=step_key(case_id, step)
            )
            # a retry is answered with the first result: the case as that step left it
            assert (got.version, got.state) == (step + 2, state), (s, got.version, got.state)
            progress.value = s + 1

    _child(work, ready)


def drain(url: str, ready: Connection, progress: Progress, life: int, fault: int) -> None:
    """Drain the due timers a batch at a time; with ``fault``, die inside that batch."""

    def work() -> None:
        eng = timer_workflow(child_engine(url, life_clock(life)))
        if fault:
            faultpoints.arm("timers.batch_recorded", fault)
        ready.send("ready")
        while True:
            run = eng.run_due_timers(worker=f"life-{life}", batch=BATCH, lease=LEASE, limit=BATCH)
            progress.value += run.fired
            if not (run.fired or run.skipped or run.retried):
                return

    _child(work, ready)


class CountedInbox:
    """The in-app inbox, and a line in ``sent`` for each message it accepted: the sends
    counted across the deliverer's lives."""

    name = "inbox"

    def __init__(self, eng: Engine, sent: Path) -> None:
        self.inbox = InboxChannel(eng.store, eng.clock)
        self.sent = os.open(sent, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def send(self, message: Message) -> None:
        self.inbox.send(message)
        os.write(self.sent, f"{message.key}\n".encode())


PEOPLE = [
    {"id": "h01", "name": "王芳", "roles": ["handler"], "org_unit": "SH", "inbox": "h01"},
    {"id": "s01", "name": "陈刚", "roles": ["supervisor"], "org_unit": "SH", "inbox": "s01"},
]


def deliverer_for(eng: Engine, sent: Path) -> Deliverer:
    raw = {"people": PEOPLE, "lease_seconds": LEASE.total_seconds()}
    return deliverer_from_config(eng, raw, channels={"inbox": CountedInbox(eng, sent)})


def deliver(
    url: str, ready: Connection, progress: Progress, life: int, fault: int, sent: str
) -> None:
    """Deliver the outbox a batch at a time; with ``fault``, die after handing that
    message to the channel."""

    def work() -> None:
        eng = timer_workflow(child_engine(url, life_clock(life)))
        deliverer = deliverer_for(eng, Path(sent))
        if fault:
            faultpoints.arm("delivery.sent", fault)
        ready.send("ready")
        while True:
            run = deliverer.deliver_due(batch=BATCH, limit=BATCH)
            progress.value += run.delivered
            if not (run.resolved or run.delivered or run.retried or run.dead):
                return

    _child(work, ready)


# --- the lives, in the parent ---------------------------------------------------------
BATCH = 5


@dataclass
class Lives:
    """A child's lives: each started, then killed at a moment drawn from ``rng`` — once
    ``progress`` has moved on by a drawn number of steps, after a drawn instant more —
    or left to its fault point, or (the last) to finish."""

    rng: random.Random
    progress: Progress = field(default_factory=lambda: CTX.RawValue("q", 0))
    killed: int = 0  # by the parent, at a random moment
    faulted: int = 0  # by its fault point
    seconds: float = 0.0

    def live(
        self,
        target: Callable[..., None],
        args: tuple[Any, ...],
        *,
        kill_after: int | None = None,
        expect_fault: bool = False,
    ) -> str:
        """One life: "killed", "faulted" or "finished"."""
        started = time.perf_counter()
        mine, theirs = CTX.Pipe(duplex=False)
        proc = CTX.Process(target=target, args=(*args[:1], theirs, self.progress, *args[1:]))
        proc.start()
        theirs.close()
        try:
            assert mine.poll(WAIT), "the child did not start"
            said = mine.recv()
            assert said == "ready", said
            if kill_after is not None:
                goal, give_up = self.progress.value + kill_after, time.monotonic() + WAIT
                while self.progress.value < goal and proc.is_alive():
                    assert time.monotonic() < give_up, "the child made no progress"
                    time.sleep(0.001)
                time.sleep(self.rng.uniform(0, 0.003))  # and on into the next step
                if proc.is_alive():
                    os.kill(proc.pid, signal.SIGKILL)
            proc.join(WAIT)
            assert proc.exitcode is not None, "the child did not end"
            if proc.exitcode == -signal.SIGKILL:
                if kill_after is not None:
                    self.killed += 1
                    return "killed"
                assert expect_fault, "killed, but by nobody"
                self.faulted += 1
                return "faulted"
            said = mine.recv() if mine.poll(1) else f"exit status {proc.exitcode}"
            assert proc.exitcode == 0 and said == "finished", said
            return "finished"
        finally:
            if proc.is_alive():
                proc.kill()
                proc.join(10)
            mine.close()
            self.seconds += time.perf_counter() - started

    @property
    def kills(self) -> int:
        return self.killed + self.faulted


def histories(eng: Engine) -> dict[int, list[Any]]:
    """Every case's history rows, in order: case id -> rows."""
    with eng.store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.history).order_by(t.history.c.case_id, t.history.c.seq))
        found: dict[int, list[Any]] = {}
        for row in rows:
            found.setdefault(int(row.case_id), []).append(row)
    return found


def assert_each_case_equals_its_history(eng: Engine) -> dict[int, list[Any]]:
    """State and version those of the last history row; versions 1..n without gaps."""
    with eng.store.engine.connect() as conn:
        cases = conn.execute(sa.select(t.cases.c.id, t.cases.c.state, t.cases.c.version)).all()
    found = histories(eng)
    assert cases and len(found) == len(cases)
    for case in cases:
        rows = found[int(case.id)]
        assert [r.seq for r in rows] == list(range(1, len(rows) + 1)), case.id
        assert (case.version, case.state) == (rows[-1].seq, rows[-1].to_state), case.id
    return found


# --- 1. fire() --------------------------------------------------------------------------
CASES = 10
STEPS = 60  # per case: 600 keys
FIRE_KILLS = 24


@pytest.mark.timeout(180)
def test_fire_killed_at_random_moments_and_retried_lands_each_key_once(
    eng: Engine, db_url: str
) -> None:
    stepping_workflow(eng)
    cases = [eng.open_case("steps", {}, HANDLER).case.id for _ in range(CASES)]
    lives = Lives(random.Random(SEED))
    landed_unrecorded = rolled_back = 0
    while lives.killed < FIRE_KILLS:
        outcome = lives.live(
            fire_steps, (db_url, cases, STEPS), kill_after=lives.rng.randint(0, 2 * CASES)
        )
        assert outcome == "killed", "finished before the kills: give it more steps"
        # The step in flight when it died: committed (the retry must return its result)
        # or rolled back (the retry fires it).
        s = lives.progress.value
        case_id, step = cases[s % CASES], s // CASES
        if eng.get_case(case_id).version == step + 2:
            landed_unrecorded += 1
        else:
            rolled_back += 1
    assert lives.live(fire_steps, (db_url, cases, STEPS)) == "finished"
    print(
        f"\nfire() on {eng.backend}: {lives.kills} kills, {CASES * STEPS} keys; the step in "
        f"flight had landed {landed_unrecorded} times (the retry answered with its first "
        f"result), was rolled back {rolled_back} times; {lives.seconds:.1f}s"
    )

    found = assert_each_case_equals_its_history(eng)
    for case_id in cases:
        # each step once, in order: nothing fired twice, nothing lost
        assert [r.data.get("step") for r in found[case_id][1:]] == list(range(STEPS))
        assert eng.get_case(case_id).state == step_event(STEPS - 1)[1]
    with eng.store.engine.connect() as conn:
        keys = conn.execute(sa.select(t.idempotency_keys.c.key, t.idempotency_keys.c.case_id))
        landed = Counter((key, int(case_id)) for key, case_id in keys)
    wanted = {(step_key(c, s), c) for c in cases for s in range(STEPS)}
    assert set(landed) == wanted and set(landed.values()) == {1}


# --- 2. timer draining ------------------------------------------------------------------
TIMER_CASES = 150  # 600 timers
TIMER_KILLS = 24


def timer_cases(eng: Engine, n: int) -> list[int]:
    """``n`` toy cases opened at OPENED, each with its four timers due by LATER."""
    timer_workflow(eng)
    return [eng.open_case("toy", {}, HANDLER).case.id for _ in range(n)]


def draw_life(rng: random.Random, batches: int) -> tuple[int, int | None]:
    """(fault point pass to die at or 0, steps after which the parent kills or None)."""
    if rng.random() < 0.5:
        return rng.randint(1, 3), None
    return 0, rng.randint(0, batches * BATCH)


@pytest.mark.timeout(180)
def test_timer_workers_killed_inside_batches_and_at_random_fire_each_timer_once(
    eng: Engine, db_url: str
) -> None:
    cases = timer_cases(eng, TIMER_CASES)
    lives = Lives(random.Random(SEED))
    life = retaken = 0
    while lives.kills < TIMER_KILLS:
        fault, kill_after = draw_life(lives.rng, 2)
        outcome = lives.live(
            drain, (db_url, life, fault), kill_after=kill_after, expect_fault=bool(fault)
        )
        assert outcome != "finished", "finished before the kills: give it more timers"
        retaken += held_by(eng, f"life-{life}")  # the next life retakes them: past the lease
        life += 1
    assert lives.live(drain, (db_url, life, 0)) == "finished"
    fired = assert_each_timer_fired_once(eng, cases)
    print(
        f"\ntimers on {eng.backend}: {lives.kills} kills ({lives.faulted} inside a batch, "
        f"{lives.killed} at random), {fired} timers fired once each, {retaken} retaken "
        f"from a dead worker's lease; {lives.seconds:.1f}s"
    )


def held_by(eng: Engine, worker: str) -> int:
    """How many timers ``worker`` left leased and not fired."""
    with eng.store.engine.connect() as conn:
        q = sa.select(sa.func.count()).where(
            t.timers.c.status == "pending", t.timers.c.claimed_by == worker
        )
        return int(conn.execute(q).scalar_one())


def assert_each_timer_fired_once(eng: Engine, cases: list[int]) -> int:
    """Every timer fired; each has one history row by the timer, one notice, and its
    case's priority was raised once; the cases equal their histories. How many fired."""
    with eng.store.engine.connect() as conn:
        timers = conn.execute(
            sa.select(
                t.timers.c.id,
                t.timers.c.case_id,
                t.timers.c.kind,
                t.timers.c.level,
                t.timers.c.status,
            )
        ).all()
        notices = (
            conn.execute(sa.select(t.outbox.c.key).where(t.outbox.c.parent_id.is_(None)))
            .scalars()
            .all()
        )
    assert Counter(r.status for r in timers) == {"fired": len(cases) * TIMERS_PER_CASE}
    armed = Counter((int(r.case_id), r.kind, r.level) for r in timers)
    found = assert_each_case_equals_its_history(eng)
    effects = Counter(
        (case_id, row.event.removeprefix("deadline_"), row.data["level"])
        for case_id, rows in found.items()
        for row in rows
        if row.actor["id"] == "timer"
    )
    assert effects == armed  # one history row per timer, none twice
    told = Counter(key.split(":")[1] for key in notices if key.startswith("timer:"))
    assert told == Counter({str(r.id): 1 for r in timers})  # one notice per timer
    for case_id in cases:
        assert eng.get_case(case_id).data["priority"] == 1  # raised once, not per retry
    return len(timers)


# --- 3. delivery ------------------------------------------------------------------------
DELIVERY_CASES = 75  # 300 notices, one message each
DELIVERY_KILLS = 24


@pytest.mark.timeout(180)
def test_deliverers_killed_after_sending_and_at_random_deliver_all_once_in_the_inbox(
    eng: Engine, clock: FakeClock, db_url: str, tmp_path: Path
) -> None:
    timer_cases(eng, DELIVERY_CASES)
    clock.set(LATER)
    assert eng.run_due_timers().fired == DELIVERY_CASES * TIMERS_PER_CASE
    sent = tmp_path / "sent"
    lives = Lives(random.Random(SEED))
    life = 0
    while lives.kills < DELIVERY_KILLS:
        fault, kill_after = draw_life(lives.rng, 2)
        outcome = lives.live(
            deliver,
            (db_url, life, fault, str(sent)),
            kill_after=kill_after,
            expect_fault=bool(fault),
        )
        assert outcome != "finished", "finished before the kills: give it more messages"
        life += 1
    assert lives.live(deliver, (db_url, life, 0, str(sent))) == "finished"

    with eng.store.engine.connect() as conn:
        messages = conn.execute(
            sa.select(t.outbox.c.key, t.outbox.c.status).where(t.outbox.c.parent_id.isnot(None))
        ).all()
        notices = Counter(
            conn.execute(
                sa.select(t.outbox.c.status).where(t.outbox.c.parent_id.is_(None))
            ).scalars()
        )
        inbox = Counter(conn.execute(sa.select(t.inbox.c.key)).scalars())
    sends = Counter(sent.read_text().split())
    duplicates = sum(sends.values()) - len(sends)
    print(
        f"\ndelivery on {eng.backend}: {lives.kills} kills ({lives.faulted} after a send, "
        f"{lives.killed} at random), {len(messages)} messages, {sum(sends.values())} sends, "
        f"{duplicates} duplicates at the channel; {lives.seconds:.1f}s"
    )
    keys = {m.key for m in messages}
    assert notices == {"expanded": DELIVERY_CASES * TIMERS_PER_CASE}
    assert len(keys) == DELIVERY_CASES * TIMERS_PER_CASE
    assert Counter(m.status for m in messages) == {"delivered": len(keys)}
    assert inbox == Counter(keys)  # each once in the inbox
    assert set(sends) == keys  # each handed to the channel
    # a kill at the fault point is always one duplicate, a random one at most one
    assert lives.faulted <= duplicates <= lives.kills
