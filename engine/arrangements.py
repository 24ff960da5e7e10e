"""A year's holiday arrangement as the desk types it from the State Council's notice.

The notice is a handful of paragraphs, one per holiday: "春节：2月5日至12日放假调休，共8天。
2月14日（星期日）、2月20日（星期六）上班。" The file has one ``[[holidays]]`` table per
paragraph, in TOML, so it reads like the notice::

    year = 2027
    source = "国务院办公厅关于2027年部分节假日安排的通知"

    [[holidays]]
    name = "春节"
    from = 2027-02-05
    to = 2027-02-12
    workdays = [2027-02-14, 2027-02-20]   # 调休上班

:func:`parse` checks it whole and reports every problem with its line at once
(:class:`CalendarDataInvalid`); :func:`disagreements` compares it with the published
arrangement of ``chinesecalendar``. Nothing here touches the database.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from .calendar import PACKAGE, STATUTE, DeskDay, package_day, statutory_holidays
from .errors import CalendarDataInvalid, Problem

__all__ = ["Arrangement", "disagreements", "parse", "read"]

_TOP = ("year", "source", "holidays")
_HOLIDAY = ("name", "from", "to", "workdays")
_WEEKDAYS = "一二三四五六日"


@dataclass(frozen=True)
class Arrangement:
    """A checked arrangement: the year, the notice it came from, and its days."""

    year: int
    source: str
    days: tuple[DeskDay, ...]


def read(path: Path) -> str:
    """The text of an arrangement file.

    Raises:
        CalendarDataInvalid: it cannot be read, or is not UTF-8 text.
    """
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problem = f"is not UTF-8 text (byte {exc.start}): save it as UTF-8 and import it again"
    except OSError as exc:
        problem = f"cannot be read: {exc.strerror or exc}"
    raise CalendarDataInvalid(str(path), [Problem("", problem)])


def parse(text: str, name: str = "the arrangement file") -> Arrangement:
    """Read and check an arrangement file's text.

    Raises:
        CalendarDataInvalid: with every problem and the line it is on.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"at line (\d+)", str(exc))
        at = f"line {line.group(1)}" if line else ""
        raise CalendarDataInvalid(name, [Problem(at, f"this is not valid TOML ({exc})")]) from None
    lines = text.splitlines()
    headers = [i + 1 for i, ln in enumerate(lines) if re.match(r"\s*\[\[\s*holidays\s*\]\]", ln)]
    problems: list[Problem] = []

    def line_of(key: str, within: int | None = None, text_: str | None = None) -> str:
        """The line where ``key`` (or the literal ``text_``) is written: inside the
        ``within``-th holiday table, or among the top-level keys."""
        start, end = (1, headers[0] - 1 if headers else len(lines))
        if within is not None and within < len(headers):
            start = headers[within]
            end = headers[within + 1] - 1 if within + 1 < len(headers) else len(lines)
        for n in range(start, end + 1):
            content = lines[n - 1].split("#", 1)[0]
            if text_ is not None and text_ in content:
                return f"line {n}"
            if text_ is None and re.match(rf"\s*{re.escape(key)}\s*=", content):
                return f"line {n}"
        return f"line {start}"

    for key in doc:
        if key not in _TOP:
            problems.append(Problem(line_of(key), _unknown(key, _TOP)))
    year = doc.get("year")
    if not isinstance(year, int) or isinstance(year, bool) or not 1949 < year < 2200:
        problems.append(
            Problem(
                line_of("year"),
                f"year must be the year the notice is for, e.g. year = 2027, not {year!r}",
            )
        )
        year = None
    source = doc.get("source")
    if not isinstance(source, str) or not source.strip():
        problems.append(
            Problem(
                line_of("source"),
                "source must name the notice, e.g. source = "
                '"国务院办公厅关于2027年部分节假日安排的通知"',
            )
        )
    tables = doc.get("holidays")
    if not isinstance(tables, list) or not tables:
        problems.append(
            Problem("", "the file has no [[holidays]] tables: one per holiday of the notice")
        )
        tables = []

    days: dict[date, DeskDay] = {}
    placed: dict[date, str] = {}
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            problems.append(
                Problem(
                    f"line {headers[i] if i < len(headers) else 1}",
                    "each [[holidays]] entry must be a table",
                )
            )
            continue
        for key in table:
            if key not in _HOLIDAY:
                problems.append(Problem(line_of(key, i), _unknown(key, _HOLIDAY)))
        title = table.get("name")
        if not isinstance(title, str) or not title.strip():
            problems.append(
                Problem(line_of("name", i), 'each holiday needs a name, e.g. name = "春节"')
            )
            title = "?"
        first = _date(table.get("from"), "from", line_of("from", i), problems, required=True)
        last = _date(table.get("to", table.get("from")), "to", line_of("to", i), problems)
        if first is not None and last is not None:
            if last < first:
                problems.append(Problem(line_of("to", i), f"to = {last} is before from = {first}"))
            day = first
            while day <= last:
                at = line_of("from", i)
                _add(days, placed, DeskDay(day, False, title, _num(at)), at, year, problems)
                day += timedelta(days=1)
        workdays = table.get("workdays", [])
        if not isinstance(workdays, list):
            problems.append(
                Problem(
                    line_of("workdays", i),
                    "workdays must be a list of dates, e.g. workdays = [2027-02-14, 2027-02-20]",
                )
            )
            workdays = []
        for value in workdays:
            at = (
                line_of("workdays", i, str(value))
                if isinstance(value, date)
                else line_of("workdays", i)
            )
            makeup = _date(value, "a make-up day", at, problems, required=True)
            if makeup is None:
                continue
            if makeup.weekday() < 5:
                problems.append(
                    Problem(
                        at,
                        f"{_show(makeup)} is a weekday, already a working day: "
                        "a make-up working day (调休上班) is a Saturday or Sunday",
                    )
                )
                continue
            _add(
                days,
                placed,
                DeskDay(makeup, True, f"{title}调休上班", _num(at)),
                at,
                year,
                problems,
            )

    if year is not None:
        law = statutory_holidays(year)
        for day, holiday in law.items():
            found = days.get(day)
            if found is None:
                problems.append(
                    Problem(
                        "",
                        f"{_show(day)} is {holiday}, a statutory holiday "
                        f"({STATUTE}), but no [[holidays]] range covers it",
                    )
                )
            elif found.working:
                problems.append(
                    Problem(
                        placed[day],
                        f"{_show(day)} is {holiday}, a statutory "
                        f"holiday ({STATUTE}): it cannot be a working day",
                    )
                )
    if problems:
        raise CalendarDataInvalid(name, problems)
    assert year is not None and isinstance(source, str)
    return Arrangement(year, source.strip(), tuple(sorted(days.values(), key=lambda d: d.day)))


def disagreements(arrangement: Arrangement) -> list[str]:
    """Where the file and ``chinesecalendar`` say different things of a day of the year
    (empty when the package does not know the year, or agrees)."""
    stated = {d.day: d.working for d in arrangement.days}
    out = []
    day = date(arrangement.year, 1, 1)
    while day.year == arrangement.year:
        published = package_day(day)
        if published is None:
            return []
        ours = stated.get(day, day.weekday() < 5)
        if ours != published:
            out.append(
                f"{_show(day)}: the file makes it a {_kind(ours)}, {PACKAGE} a {_kind(published)}"
            )
        day += timedelta(days=1)
    return out


def _add(
    days: dict[date, DeskDay],
    where: dict[date, str],
    entry: DeskDay,
    at: str,
    year: int | None,
    problems: list[Problem],
) -> None:
    if year is not None and entry.day.year != year:
        problems.append(
            Problem(
                at,
                f"{_show(entry.day)} is outside {year}: a file holds one "
                f"year; put it in the {entry.day.year} file",
            )
        )
        return
    before = days.get(entry.day)
    if before is not None:
        what = "make-up working day" if before.working else f"holiday ({before.name})"
        problems.append(
            Problem(
                at,
                f"{_show(entry.day)} is already a {what} on "
                f"{where[entry.day]}: ranges must not overlap",
            )
        )
        return
    days[entry.day] = entry
    where[entry.day] = at


def _date(
    value: Any, key: str, at: str, problems: list[Problem], *, required: bool = False
) -> date | None:
    if value is None:
        if required:
            problems.append(Problem(at, f"{key} is missing: write a date, e.g. {key} = 2027-02-05"))
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    problems.append(Problem(at, f"{key} = {value!r} is not a date; write it as 2027-02-05"))
    return None


def _unknown(key: str, known: tuple[str, ...]) -> str:
    near = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    return f"unknown key {key!r}: {hint}the keys here are {', '.join(known)}"


def _num(at: str) -> int | None:
    return int(at.split()[1]) if at.startswith("line ") else None


def _show(day: date) -> str:
    return f"{day.isoformat()} (星期{_WEEKDAYS[day.weekday()]})"


def _kind(working: bool) -> str:
    return "working day" if working else "rest day"
