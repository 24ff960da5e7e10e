"""The worker: APScheduler 3 as the local alarm clock (the only module importing it).

Timers live in our tables (DESIGN.md §3.2); APScheduler only says "check now": an
interval tick, a one-off wake-up at the next due time when that is sooner than the next
tick, and a daily SLA digest. Every check is ``Engine.run_due_timers()``, so several
workers on one PostgreSQL database share the work without firing anything twice.

It never stops the desk: a check that fails is logged and the next tick tries again. A
database that is down (``StorageUnavailable``) is logged once, as a warning without a
traceback, and its return once, however many ticks it lasts.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from .clock import SHANGHAI, SystemClock
from .display import format_duration, format_when
from .errors import StorageUnavailable, first_line

if TYPE_CHECKING:
    from .runtime import Engine

log = logging.getLogger("baoflow.worker")

_UNTOLD = object()


class Worker:
    """Drains due timers until stopped.

    Args:
        engine: the engine whose timers to fire (its clock says what is due).
        tick: seconds between checks.
        batch: timers leased per claim.
        lease: how long a claim holds before another worker may take the timers over
            (a worker killed mid-batch loses them to the others after this).
        digest: a cron expression (Beijing time) for the daily SLA digest in the log,
            or None for none.
        deliverer: a ``notifications.delivery.Deliverer``; when given, every check also
            delivers the outbox's due messages.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        tick: float = 0.5,
        batch: int = 100,
        lease: timedelta = timedelta(seconds=10),
        name: str | None = None,
        digest: str | None = "0 8 * * *",
        deliverer: Any = None,
    ) -> None:
        if tick <= 0:
            raise ValueError(f"tick must be a positive number of seconds, not {tick}")
        self.engine = engine
        self.tick = tick
        self.batch = batch
        self.lease = lease
        self.name = name or f"worker-{os.getpid()}"
        self.digest = digest
        #: a notifications.delivery.Deliverer: the outbox is delivered on every check
        self.deliverer = deliverer
        self.fired = 0
        self._stop = threading.Event()
        self._drain_lock = threading.Lock()
        self._missed = threading.Event()  # a check came while another was running
        self._scheduler = BackgroundScheduler(timezone=SHANGHAI)
        self._real = SystemClock()  # APScheduler runs on real time
        self._told: object = _UNTOLD  # the next due time last logged
        self._down = False  # the database was unavailable at the last check

    def drain(self) -> None:
        """One check: fire everything due now, then arrange a wake-up for the next."""
        if not self._drain_lock.acquire(blocking=False):
            # The check under way may already be past the point where it would see what
            # this wake-up came for: note it, and that check runs once more at its end.
            self._missed.set()
            return
        self._missed.clear()
        try:
            if self._down:  # back as soon as it answers, not once the backlog is fired:
                self.engine.next_timer_due()  # an outage during that is told again
                self._down = False
                log.info("%s: the database is back; timer checks go on", self.name)
            # Timers that fell due while this check was firing do not wait for the next
            # tick: check again at once while the next one is already due (bounded; past
            # the bound, the wake-up below comes at once).
            busy = False
            for _ in range(100):
                run = self.engine.run_due_timers(
                    worker=self.name, batch=self.batch, lease=self.lease
                )
                self.fired += run.fired
                if run.fired or run.skipped:
                    log.info(
                        "%s: fired %d, skipped %d, retried %d, worst lateness %.3fs",
                        self.name,
                        run.fired,
                        run.skipped,
                        run.retried,
                        run.max_late_seconds,
                    )
                busy = run.fired > 0
                if not busy or self._stop.is_set():
                    break
                nxt = self.engine.next_timer_due()
                if nxt is None or nxt > self.engine.clock.now():
                    break
            self._wake_for_next(busy)
            if self.deliverer is not None:
                self.deliverer.deliver_due()
        except StorageUnavailable as exc:  # the database is down: say so once, keep ticking
            if not self._down:
                self._down = True
                log.warning("%s: checking again on every tick: %s", self.name, exc)
        except Exception:  # nothing must kill the worker: log, retry next tick
            log.exception("%s: timer check failed; retrying on the next tick", self.name)
        finally:
            self._drain_lock.release()
        if self._missed.is_set() and not self._stop.is_set() and self._scheduler.running:
            self._scheduler.add_job(self.drain, "date", run_date=self._real.now())

    def _wake_for_next(self, busy: bool) -> None:
        """A one-off check when the next timer falls due before the next tick. One that
        is due already gets a check at once if the last run was firing (it fell due
        meanwhile); if that run fired nothing, what is due is held by another worker
        (leased, or locked in its batch), and the tick comes back for it."""
        nxt = self.engine.next_timer_due()
        self._tell_next(nxt)
        if nxt is None or not self._scheduler.running:
            return
        # The engine's clock says how long until it is due; APScheduler runs on real
        # time (the same clock in production, not in tests).
        wait = (nxt - self.engine.clock.now()).total_seconds()
        if wait <= 0 and not busy:
            return
        wait = max(0.0, wait)
        if wait < self.tick:
            # No fixed job id: a one-off job replaced while it runs is removed with it
            # when it finishes, and the wake-up would be lost.
            self._scheduler.add_job(
                self.drain,
                "date",
                run_date=self._real.now() + timedelta(seconds=wait),
                misfire_grace_time=30,
            )

    def _tell_next(self, nxt: datetime | None) -> None:
        """Log when the next timer is due, once each time that changes (not per tick)."""
        if nxt == self._told:
            return
        self._told = nxt
        if nxt is None:
            log.info("%s: no timer pending", self.name)
            return
        wait = (nxt - self.engine.clock.now()).total_seconds()
        log.info(
            "%s: next timer due %s (Beijing time), %s",
            self.name,
            format_when(nxt),
            f"in {format_duration(wait, locale='en')}" if wait > 0 else "now",
        )

    def log_digest(self) -> None:
        try:
            report = self.engine.sla_report()
        except Exception:  # a report must never stop the worker
            log.exception("%s: could not compute the daily SLA digest", self.name)
            return
        log.info(
            "daily SLA digest: %d deadlines running, %d breached now; on time so far: %s",
            report.running,
            report.breached_now,
            ", ".join(
                f"{r.rule} {r.on_time_rate:.0%} of {r.ended}"
                if r.on_time_rate is not None
                else f"{r.rule} none ended"
                for r in report.rules
            )
            or "(none)",
        )

    def log_calendar(self) -> None:
        """Say ahead which year is counted only provisionally: from November on for the
        next year (the State Council publishes it in November or December), and at any
        time for the current one. Logged at start and once a day."""
        today = self.engine.clock.now().astimezone(SHANGHAI)
        years = [today.year, today.year + 1] if today.month >= 11 else [today.year]
        try:
            rows = self.engine.calendar_status(years)
        except Exception:  # a report must never stop the worker
            log.exception("%s: could not read the calendar's status", self.name)
            return
        for row in rows:
            if row.provisional:
                log.warning(
                    "the %d holiday arrangement is not published or imported: %d running "
                    "deadline(s) count on it provisionally (statutory holidays and weekends "
                    "only). When the State Council publishes it: baoflow calendar import FILE",
                    row.year,
                    row.provisional_deadlines,
                )

    def seal_audit(self) -> None:
        """Seal the days that are over (their audit anchors): at start and every ten
        minutes, so a day is sealed soon after its midnight whichever worker is up."""
        try:
            sealed = self.engine.seal_audit()
        except Exception as exc:  # the audit must never stop the worker
            log.warning("%s: could not seal the audit's days: %s", self.name, first_line(exc))
            return
        if sealed:
            log.info(
                "%s: sealed %d day(s) of history; %s's anchor is %s",
                self.name,
                len(sealed),
                sealed[-1].day,
                sealed[-1].hash,
            )

    def start(self) -> None:
        """Start in the background; the first check runs at once (catch-up)."""
        self._scheduler.add_job(
            self.drain,
            "interval",
            seconds=self.tick,
            id="tick",
            max_instances=1,
            coalesce=True,
            next_run_time=self._real.now().astimezone(SHANGHAI),
        )
        if self.digest:
            self._scheduler.add_job(
                self.log_digest,
                CronTrigger.from_crontab(self.digest, timezone=SHANGHAI),
                id="digest",
            )
        self._scheduler.add_job(
            self.log_calendar,
            CronTrigger.from_crontab("0 8 * * *", timezone=SHANGHAI),
            id="calendar",
        )
        self._scheduler.add_job(
            self.seal_audit, "interval", minutes=10, id="audit", max_instances=1, coalesce=True
        )
        self._scheduler.start()
        self.log_calendar()
        self.seal_audit()
        log.info(
            "%s: started (tick %.3gs, batch %d, lease %s)",
            self.name,
            self.tick,
            self.batch,
            self.lease,
        )

    def stop(self) -> None:
        """Finish the check under way, release this worker's leases, stop."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        try:
            with self._drain_lock, self.engine.store.write() as tx:
                released = tx.release_timers(self.name)
            if self.deliverer is not None:
                released += self.deliverer.release()
        except StorageUnavailable as exc:  # its leases run out by themselves
            log.warning("%s: could not release its leases: %s", self.name, exc)
            released = 0
        self._stop.set()
        log.info(
            "%s: stopped after firing %d timer(s); released %d lease(s)",
            self.name,
            self.fired,
            released,
        )

    def run_forever(self) -> None:
        """Start, and stop gracefully on SIGTERM or SIGINT (call from the main thread)."""

        def _graceful(signum: int, _frame: FrameType | None) -> None:
            log.info(
                "%s: %s received, finishing the current batch",
                self.name,
                signal.Signals(signum).name,
            )
            self._stop.set()

        signal.signal(signal.SIGTERM, _graceful)
        signal.signal(signal.SIGINT, _graceful)
        self.start()
        self._stop.wait()
        self._stop.clear()
        self.stop()
