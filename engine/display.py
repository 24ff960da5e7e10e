"""How times read to a person: Beijing time, a 24:00 deadline as that day's 24:00, and a
length of time in days, hours and minutes rather than seconds.

Every face (the CLI, notes in a case's history, the notices, the HTTP API's text fields
and the dashboard) formats through these three functions, so they never disagree.

    >>> from datetime import datetime, timezone
    >>> format_when(datetime(2026, 5, 6, 1, 0, tzinfo=timezone.utc))
    '2026-05-06 09:00'
    >>> format_due(datetime(2026, 12, 8, 16, 0, tzinfo=timezone.utc))
    '2026-12-08 24:00'
    >>> format_duration(318600)
    '3天16小时30分钟'
    >>> format_duration(318600, locale="en")
    '3 d 16 h 30 min'
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .clock import SHANGHAI

__all__ = ["format_due", "format_duration", "format_when"]

_UNITS = {"zh-CN": ("天", "小时", "分钟"), "en": (" d", " h", " min")}


def format_when(instant: datetime) -> str:
    """``YYYY-MM-DD HH:MM`` in Beijing time, whatever zone ``instant`` is in.

    Formatted by hand: strftime is several times slower, and every timer effect and
    every listed deadline formats a time."""
    d = instant.astimezone(SHANGHAI)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d} {d.hour:02d}:{d.minute:02d}"


def format_due(instant: datetime) -> str:
    """A due time as a person reads it: like :func:`format_when`, except that a period
    ending at midnight reads as the last day's ``24:00`` ("by the end of 12-08"), not as
    the next day's ``00:00``, which reads as a day too late.

    >>> from datetime import datetime
    >>> format_due(datetime(2026, 12, 9, 0, 0, tzinfo=SHANGHAI))
    '2026-12-08 24:00'
    >>> format_due(datetime(2026, 12, 9, 17, 30, tzinfo=SHANGHAI))
    '2026-12-09 17:30'
    """
    d = instant.astimezone(SHANGHAI)
    if d.hour == d.minute == d.second == d.microsecond == 0:
        d -= timedelta(days=1)
        return f"{d.year:04d}-{d.month:02d}-{d.day:02d} 24:00"
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d} {d.hour:02d}:{d.minute:02d}"


def format_duration(length: float | timedelta, *, locale: str = "zh-CN") -> str:
    """A length of time (seconds, or a ``timedelta``) in days, hours and minutes (those
    that are not zero), rounded to the minute; a negative length keeps its sign (time
    left when already late). ``locale`` is ``zh-CN`` (the default) or ``en``.

    >>> format_duration(59)
    '1分钟'
    >>> format_duration(7200, locale="en")
    '2 h'
    >>> format_duration(-90061)
    '-1天1小时1分钟'
    >>> format_duration(20)
    '0分钟'
    """
    try:
        day_unit, hour_unit, minute_unit = _UNITS[locale]
    except KeyError:
        raise ValueError(
            f"format_duration: no locale {locale!r}; the locales are: {', '.join(_UNITS)}"
        ) from None
    seconds = length.total_seconds() if isinstance(length, timedelta) else length
    sign = "-" if seconds < 0 else ""
    minutes = round(abs(seconds) / 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [
        f"{n}{unit}"
        for n, unit in ((days, day_unit), (hours, hour_unit), (minutes, minute_unit))
        if n
    ]
    if not parts:
        return f"0{minute_unit}"
    joiner = "" if locale == "zh-CN" else " "
    return sign + joiner.join(parts)
