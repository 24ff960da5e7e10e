"""Fault-injection points for the fault tests: off unless armed, and then the process
kills itself (SIGKILL) where a crash is hardest to survive.

A point is a name the engine passes at one place (``point("timers.batch_recorded")``).
It is armed by the environment — ``BAOFLOW_FAULT=timers.batch_recorded`` kills the
process the first time it passes there, ``BAOFLOW_FAULT=timers.batch_recorded:3`` the
third time — or by :func:`arm` in the process itself. Unarmed, a point costs one
comparison. The points:

- ``timers.batch_recorded``: a batch of timer effects written (the timers marked, the
  cases bumped, their history, deadlines and notices), its commit not yet sent;
- ``delivery.sent``: a message handed to its channel, its delivery not yet recorded.
"""

from __future__ import annotations

import os
import signal

POINTS = ("timers.batch_recorded", "delivery.sent")

_armed: str | None = None
_left = 0


def arm(name: str, times: int = 1) -> None:
    """Kill this process the ``times``-th time it passes ``name``."""
    global _armed, _left
    if name not in POINTS:
        raise ValueError(f"no fault point {name!r}; the points are {', '.join(POINTS)}")
    if times < 1:
        raise ValueError(f"times must be at least 1, not {times}")
    _armed, _left = name, times


def point(name: str) -> None:
    """Pass the point ``name``: nothing, unless it is armed and this is the time."""
    global _left
    if _armed is None or name != _armed:
        return
    _left -= 1
    if _left == 0:
        os.kill(os.getpid(), signal.SIGKILL)


def _from_environment() -> None:
    given = os.environ.get("BAOFLOW_FAULT", "").strip()
    if not given:
        return
    name, _, times = given.partition(":")
    try:
        count = int(times) if times else 1
    except ValueError:
        raise ValueError(f"BAOFLOW_FAULT={given!r}: the count after ':' must be a number") from None
    arm(name, count)


_from_environment()
