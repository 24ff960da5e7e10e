"""Leases kept alive while their work goes on (issue #15 item 6).

A timer worker and a deliverer lease what they take (``claimed_by``, ``claimed_until``)
so that a worker that dies loses its work to the others when the lease runs out. A
lease therefore has to outlast the work — or be renewed while the work goes on, which
lets it be short: a dead worker's timers and messages are then retaken within a few
seconds, not minutes.

:class:`Renewal` renews the leases it holds from a thread of its own, every third of the
lease, in a transaction of its own, for as long as the block runs; what the block has
finished with it lets go of (``done``). The renewals are timed in real seconds; the
leases' ends are the engine clock's now plus the lease, as when they were taken.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from types import TracebackType

from .clock import Clock
from .errors import StorageUnavailable

log = logging.getLogger("baoflow.engine")

#: Renew the leases ``ids`` until the instant given; how many were still held.
Renew = Callable[[Sequence[int], datetime], int]


class Renewal:
    """``with Renewal(renew, ids, lease, clock) as held:`` — the leases of ``ids`` are
    renewed until the block ends; ``held.done(id)`` stops renewing one."""

    def __init__(self, renew: Renew, ids: Iterable[int], lease: timedelta, clock: Clock) -> None:
        if lease <= timedelta(0):
            raise ValueError(f"a lease must be longer than nothing, not {lease}")
        self._renew = renew
        self._held = set(ids)
        self._lease = lease
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def done(self, item: int) -> None:
        """Stop renewing ``item``'s lease (finished, or given back)."""
        with self._lock:
            self._held.discard(item)

    def __enter__(self) -> Renewal:
        if self._held:
            self._thread = threading.Thread(
                target=self._run, name="baoflow-lease-renewal", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        every = self._lease.total_seconds() / 3
        while not self._stop.wait(every):
            with self._lock:
                ids = sorted(self._held)
            if not ids:
                return
            try:
                self._renew(ids, self._clock.now() + self._lease)
            except StorageUnavailable as exc:  # the work will meet it too, and say so
                log.info("could not renew %d lease(s): %s", len(ids), exc)
            except Exception:  # a renewal must never take its work down
                log.exception("could not renew %d lease(s)", len(ids))
