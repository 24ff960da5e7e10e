"""Leases renewed while their work goes on (engine/leases.py, issue #15 item 6): a slow
send or a slow timer keeps what it holds, so a lease can be short and a dead worker's
work is retaken within one. On SQLite and PostgreSQL."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from baoflow.engine import Engine, FakeClock
from baoflow.engine.draining import Drainer
from baoflow.engine.errors import ConflictError
from baoflow.engine.leases import Renewal
from baoflow.engine.scheduler import Worker
from baoflow.notifications.message import Message

from tests.test_delivery import deliverer, reported, rows
from tests.test_timers import to_materials_complete

LEASE = timedelta(seconds=0.6)  # renewed every 0.2 s
WAIT = 20.0  # seconds a test waits for a thread before it gives up


def test_a_renewal_renews_what_it_holds_until_its_block_ends(clock: FakeClock) -> None:
    calls: list[tuple[list[int], datetime]] = []

    def renew(ids: Sequence[int], until: datetime) -> int:
        calls.append((list(ids), until))
        return len(ids)

    with Renewal(renew, [1, 2, 3], LEASE, clock) as held:
        time.sleep(0.5)
        assert calls and calls[-1] == ([1, 2, 3], clock.now() + LEASE)
        held.done(2)
        clock.advance(seconds=5)
        time.sleep(0.5)
        assert calls[-1] == ([1, 3], clock.now() + LEASE)
    after = len(calls)
    time.sleep(0.5)
    assert len(calls) == after  # nothing renewed once the block has ended


def test_a_renewal_that_fails_is_logged_and_the_work_goes_on(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def renew(ids: Sequence[int], until: datetime) -> int:
        raise RuntimeError("the database hiccuped")

    with Renewal(renew, [1], LEASE, clock):
        time.sleep(0.5)
    assert "could not renew 1 lease(s)" in caplog.text


def test_a_lease_of_nothing_is_refused(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="longer than nothing"):
        Renewal(lambda ids, until: 0, [1], timedelta(0), clock)


# --- a slow send --------------------------------------------------------------------------
class Slow:
    """A channel that holds each message until the test lets it go."""

    name = "rec"

    def __init__(self) -> None:
        self.started = threading.Event()
        self.go = threading.Event()
        self.sent: list[Message] = []

    def send(self, message: Message) -> None:
        self.started.set()
        assert self.go.wait(WAIT)
        self.sent.append(message)


def test_a_slow_send_keeps_its_lease_and_nobody_sends_it_twice(
    eng: Engine, clock: FakeClock
) -> None:
    reported(eng)
    slow = Slow()
    first = deliverer(eng, slow, lease_seconds=LEASE.total_seconds())
    runs: list[Any] = []
    worker = threading.Thread(target=lambda: runs.append(first.deliver_due()))
    worker.start()
    try:
        assert slow.started.wait(WAIT)
        clock.advance(seconds=5)  # far past the lease it was claimed with
        time.sleep(0.6)  # ... which was renewed meanwhile
        (message,) = rows(eng, status="pending")
        assert message.claimed_by == first.worker and message.claimed_until > clock.now()
        other = deliverer(eng, Slow(), lease_seconds=LEASE.total_seconds())
        assert other.deliver_due().delivered == 0  # still held by the slow one
    finally:
        slow.go.set()
        worker.join(WAIT)
    assert runs[0].delivered == 1 and len(slow.sent) == 1


def test_leases_are_short_by_default(eng: Engine) -> None:
    """Renewed while they work, a deliverer holds what it sends for 30 s and a timer
    worker what it fires for 10 s: a dead one's work waits that long, no longer."""
    assert deliverer(eng).lease == timedelta(seconds=30)
    defaults = inspect.signature(eng.run_due_timers).parameters
    assert defaults["lease"].default == timedelta(seconds=10)
    assert inspect.signature(Worker).parameters["lease"].default == timedelta(seconds=10)


# --- a slow timer -------------------------------------------------------------------------
LATER = datetime.fromisoformat("2026-05-20T09:00:00+08:00")


def test_a_slow_timer_keeps_the_lease_of_those_after_it(
    eng: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timers taken one by one (here: every batch meets a conflict) keep their leases
    while the one before them takes its time; another worker takes none of them."""
    for _ in range(2):
        to_materials_complete(eng)
        clock.advance(days=1)
    clock.set(LATER)

    def conflicted(*_: Any) -> Any:
        raise ConflictError("(a batch of timers)", 0, None)

    started, go = threading.Event(), threading.Event()
    real_fire_one = Drainer._fire_one

    def slow_first(self: Drainer, timer: Any, me: str, now: datetime) -> str:
        if me == "slow" and not started.is_set():
            started.set()
            assert go.wait(WAIT)
        return real_fire_one(self, timer, me, now)

    monkeypatch.setattr(Drainer, "_fire_batch", conflicted)
    monkeypatch.setattr(Drainer, "_fire_locked_batch", lambda *_: None)
    monkeypatch.setattr(Drainer, "_fire_one", slow_first)
    runs: list[Any] = []
    worker = threading.Thread(
        target=lambda: runs.append(eng.run_due_timers(worker="slow", batch=100, lease=LEASE))
    )
    worker.start()
    try:
        assert started.wait(WAIT)
        clock.advance(seconds=5)  # past the lease they were taken with
        time.sleep(0.6)  # renewed meanwhile
        assert eng.run_due_timers(worker="other", lease=LEASE).fired == 0
    finally:
        go.set()
        worker.join(WAIT)
    assert runs[0].fired > 1 and runs[0].retried == 0
    assert eng.run_due_timers(worker="other", lease=LEASE).fired == 0  # each fired once
