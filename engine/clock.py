"""Where "now" comes from. The only module that reads the system time.

The engine reads ``clock.now()`` once per operation and passes that instant down,
so a test can freeze or advance time and get deterministic results.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

#: Day boundaries and display follow Beijing time; storage is UTC.
SHANGHAI = ZoneInfo("Asia/Shanghai")


@runtime_checkable
class Clock(Protocol):
    """A source of the current instant."""

    def now(self) -> datetime:
        """Return the current instant, timezone-aware (any zone; the engine stores UTC)."""
        ...


def monotonic() -> float:
    """Seconds on a clock that never jumps: for the age of a cache, never for "now"."""
    return time.monotonic()


class SystemClock:
    """The real wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that stands still until told to move; safe to share between threads.

    >>> clock = FakeClock(datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI))
    >>> clock.advance(hours=2).isoformat()
    '2026-05-06T11:00:00+08:00'
    """

    def __init__(self, start: datetime) -> None:
        _require_aware(start)
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, instant: datetime) -> datetime:
        """Jump to ``instant`` (it may not move backwards: history is append-only)."""
        _require_aware(instant)
        with self._lock:
            if instant < self._now:
                raise ValueError(f"FakeClock cannot go back from {self._now} to {instant}")
            self._now = instant
            return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``, return the new now."""
        step = delta if delta is not None else timedelta(**kwargs)
        if step < timedelta(0):
            raise ValueError("FakeClock only moves forward")
        with self._lock:
            self._now = self._now + step
            return self._now


def _require_aware(instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(
            f"{instant!r} has no time zone; give an aware datetime, "
            "e.g. datetime(..., tzinfo=engine.clock.SHANGHAI)"
        )
