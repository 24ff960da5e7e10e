"""``baoflow``: a thin command line over :class:`baoflow.Engine` — a few lines a command."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sqlite3
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

import click
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.style import StyleType
from rich.table import Column, Table
from rich.text import Text

from baoflow.engine import (
    SHANGHAI,
    Actor,
    BaoflowError,
    ChineseOfficialCalendar,
    Engine,
    SqlPolicyDirectory,
    format_due,
    format_duration,
    format_when,
    open_engine,
)

# Roles that see identity and phone numbers unmasked in `cases show`: one rule, kept
# with the masking, which the dashboard's case page asks too.
from baoflow.notifications.masking import PERSONAL_DATA_ROLES

if TYPE_CHECKING:
    from baoflow.notifications.delivery import Deliverer

DEFAULT_URL = "sqlite:///baoflow.db"


class _Consoles:
    """Made on first use, so the width follows the terminal (or COLUMNS) of the call.
    Emoji codes are not replaced: ``:warning:`` in a case's data stays as typed."""

    @property
    def out(self) -> Console:
        return Console(emoji=False)

    @property
    def err(self) -> Console:
        return Console(stderr=True, emoji=False)


_c = _Consoles()

# What a terminal obeys instead of showing: the C0 and C1 controls (ESC starts the
# sequences that clear the screen, move the cursor, retitle the window or hide a link;
# CR and backspace overwrite what is shown), DEL, the bidirectional marks, overrides and
# isolates that reorder the text after them, and lone surrogates (bytes given on the
# command line that are not UTF-8), which cannot even be written out. Tab and newline
# are kept only where a text is shown as lines.
_UNSAFE = r"\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE_IN_A_LINE = re.compile(rf"[\t\n{_UNSAFE}]")
_UNSAFE_IN_LINES = re.compile(rf"[{_UNSAFE}]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _safe(text: object, *, lines: bool = False, json_text: bool = False) -> str:
    """``text`` as it may reach a terminal: every character a terminal would obey rather
    than show written as an escape (``\\x1b``, ``\\u202e``), so stored data cannot
    clear the operator's screen or disguise what it says. With ``lines``, newlines and
    tabs stay; ``json_text`` is JSON already (C0 escaped by ``json.dumps``, newlines its
    layout): what is left is written as JSON escapes, so the text still parses to the
    same data. The one place the CLI escapes what it prints."""
    if json_text:
        return _UNSAFE_IN_LINES.sub(lambda m: f"\\u{ord(m.group()):04x}", str(text))
    pattern = _UNSAFE_IN_LINES if lines else _UNSAFE_IN_A_LINE
    return pattern.sub(_escaped, str(text))


def _escaped(found: re.Match[str]) -> str:
    ch = found.group()
    n = ord(ch)
    return _SHORT.get(ch) or (f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}")


def _m(text: object) -> str:
    """Data inside a line of our markup: escaped for the terminal, then for rich."""
    return escape(_safe(text))


class _Table(Table):
    """A table whose cells are data: shown as text (never read as rich markup), with
    the characters a terminal would obey escaped. A cell given as ``Text`` is taken
    as it is (a multi-line cell escapes its own text: ``_safe(x, lines=True)``)."""

    def add_row(
        self,
        *renderables: RenderableType | None,
        style: StyleType | None = None,
        end_section: bool = False,
    ) -> None:
        super().add_row(
            *(Text(_safe(r)) if isinstance(r, str) else r for r in renderables),
            style=style,
            end_section=end_section,
        )


notifications_option = click.option(
    "--notifications",
    envvar="BAOFLOW_NOTIFICATIONS",
    type=click.Path(dir_okay=False),
    help="The notification configuration (TOML: channels, people, parties); "
    "env BAOFLOW_NOTIFICATIONS. See docs/notifications.md.",
)


def _deliverer(eng: Engine, path: str) -> Deliverer:
    from baoflow.notifications.config import load_deliverer

    return load_deliverer(eng, path)


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (one document) instead of a table."
)


def _emit_json(value: Any) -> None:
    """Print ``value`` as JSON for a program to read: dataclasses as objects, instants
    as ISO 8601 with their offset, decimals as text; nothing a terminal would obey."""
    click.echo(_safe(json.dumps(_plain(value), ensure_ascii=False, indent=2), json_text=True))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (date, Decimal, timedelta)):
        return str(value)
    return value


def _when(instant: datetime | None) -> str:
    """An instant as a person reads it: Beijing time, to the minute."""
    return format_when(instant) if instant else ""


def _left(due: datetime, now: datetime) -> str:
    """Time left to ``due`` (negative when past), in days, hours and minutes."""
    return format_duration((due - now).total_seconds(), locale="en")


def _is_id(ref: str) -> bool:
    return ref.isascii() and ref.isdigit()  # not "²" or "٣", which int() reads too


class _CaseRef(click.ParamType[str, Any]):
    """A case id (digits) or case number (``LP-20260930-000042``). What can be neither
    (an id past 19 digits, 64-bit ids' most; text past 40 characters, or holding spaces
    or control characters) is a usage error here, before any database is asked; the
    engine says whether a sane reference names a case."""

    name = "case"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        ref = str(value)
        if _is_id(ref):
            sane = len(ref) <= 19
        else:
            sane = 0 < len(ref) <= 40 and ref.isprintable() and not any(c.isspace() for c in ref)
        if sane:
            return ref
        shown = _safe(ref if len(ref) <= 60 else ref[:60] + "…")
        self.fail(
            f"'{shown}' is neither a case id (up to 19 digits) nor a case number such as "
            "LP-20260930-000042 (up to 40 characters, no spaces); `baoflow cases list` shows "
            "the cases",
            param,
            ctx,
        )


CASE = _CaseRef()

url_option = click.option(
    "--url",
    envvar="BAOFLOW_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="Database URL (env BAOFLOW_URL): sqlite:///FILE or postgresql://...",
)


@contextmanager
def _engine(url: str, *, create: bool = False) -> Iterator[Engine]:
    """The engine of ``url`` for one command. A SQLite file that does not exist is an
    error (a mistyped path must not become a new, empty database that answers "0
    cases"): only ``db upgrade`` creates one (``create``)."""
    # A year whose holiday arrangement is not published yet is counted provisionally
    # from its statutory holidays (the default), or refused: BAOFLOW_UNKNOWN_YEARS=error.
    # ("weekends", this setting's old value, now means provisional.)
    choice = os.environ.get("BAOFLOW_UNKNOWN_YEARS", "provisional")
    if choice not in ("provisional", "error", "weekends"):
        raise click.UsageError(
            f"BAOFLOW_UNKNOWN_YEARS must be provisional or error, not {choice!r}"
        )
    eng = open_engine(
        url,
        calendar=ChineseOfficialCalendar(unknown_years=choice),  # type: ignore[arg-type]
        create=create,
    )
    try:
        yield eng
    finally:
        eng.close()


class _Group(click.Group):
    """Turns every error into one clear line on standard error and exit status 2, not a
    traceback: baoflow's errors as they say, a usage error with where to read the usage,
    anything else named with its message and a pointer to ``--debug``, which prints the
    traceback too."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        words = list(args)
        try:
            ctx = super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise  # no arguments: the help, as click shows it
        except click.ClickException as exc:  # e.g. an unknown global option
            _fail(_one_line_of(exc, info_name or "baoflow"))
        ctx.meta[_WORDS] = words
        return ctx

    def invoke(self, ctx: click.Context) -> Any:
        words: list[str] = ctx.meta.get(_WORDS, [])
        try:
            _refuse_undecodable(words)
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.exceptions.NoArgsIsHelpError):
            raise  # --help, --version, Ctrl-C at a prompt, a group given no command
        except Exception as exc:
            if ctx.params.get("debug"):
                traceback.print_exc()
            _fail(_one_line_of(exc, _command_path(ctx, words)))


_WORDS = "baoflow.words"  # the command line's words, kept in the context's meta


def _fail(line: str) -> NoReturn:
    # The message is text, not markup ("baoflow[postgres]" must survive), and is not
    # wrapped at the terminal's width: a line stays one line. A database URL's password
    # (quoted back by an error that could not connect) stays off the screen.
    line = _PASSWORD_IN_URL.sub(r"\1***@", line)
    if len(line) > _LONGEST:  # a line to read, whatever an exception quoted
        line = line[:_LONGEST] + "…"
    _c.err.print(f"[bold red]error:[/] {_m(line)}", markup=True, highlight=False, soft_wrap=True)
    sys.exit(2)


_LONGEST = 4_000
_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]*:)[^@\s]+@")


def _command_path(ctx: click.Context, words: list[str]) -> str:
    """``baoflow cases show``: the command the words named, for its ``--help``."""
    path = [ctx.command_path]
    command: click.Command = ctx.command
    for word in (w for w in words if not w.startswith("-")):
        found = command.get_command(ctx, word) if isinstance(command, click.Group) else None
        if found is None:
            break
        path.append(word)
        command = found
    return " ".join(path)


def _one_line_of(exc: BaseException, command: str) -> str:
    """What went wrong, and what to do, as one line."""
    if isinstance(exc, BaoflowError):
        return f"{type(exc).__name__}: {_joined(str(exc))}"
    if isinstance(exc, click.UsageError):
        return f"{_joined(exc.format_message()).rstrip('.')} (see `{command} --help`)"
    if isinstance(exc, click.ClickException):
        return _joined(exc.format_message())
    cause = getattr(exc, "orig", None) or exc  # a driver's error SQLAlchemy wrapped
    text = next((line for line in str(cause).splitlines() if line.strip()), "")
    if len(text) > 300:
        text = text[:300] + "…"
    if isinstance(cause, sqlite3.OperationalError) and "readonly" in text:
        return (
            f"the database is read-only here ({text}): give a database file, and a folder "
            "it is in, that this user may write"
        )
    return (
        f"{type(cause).__name__}: {text} — not an error baoflow expected: run it again "
        "with --debug (or BAOFLOW_DEBUG=1) for the traceback, and report it"
    )


def _joined(message: str) -> str:
    """A message listing its problems ("... refused:\\n  - reason\\n  - reason") as one
    line: "... refused: reason; reason"."""
    head, *rest = message.splitlines() or [""]
    items = [line.strip().removeprefix("- ") for line in rest if line.strip()]
    return head + (f" {'; '.join(items)}" if items else "")


def _refuse_undecodable(words: list[str]) -> None:
    """Bytes on the command line that are not UTF-8 reach Python as lone surrogates,
    which no database or terminal takes: say which argument, not a UnicodeEncodeError."""
    for word in words:
        if _SURROGATE.search(word):
            shown = word if len(word) <= 60 else word[:60] + "…"
            raise click.UsageError(
                f"the argument '{_safe(shown)}' holds bytes that are not UTF-8 text; "
                "give it in UTF-8"
            )


@click.group(cls=_Group)
@click.version_option(package_name="baoflow")
@click.option(
    "--debug",
    is_flag=True,
    envvar="BAOFLOW_DEBUG",
    help="On an error, print the traceback too (env BAOFLOW_DEBUG=1).",
)
def main(debug: bool) -> None:
    """baoflow: insurance after-sales service workflows."""


@main.command()
@click.option(
    "--db", default="baoflow-demo.db", show_default=True, help="SQLite file to (re)create."
)
@click.option("--seed", default=20261125, show_default=True, help="Random seed of the day.")
@click.option("--reports", default=60, show_default=True, help="How many reports the day brings.")
def demo(db: str, seed: int, reports: int) -> None:
    """Play a realistic day of the service desk on a SQLite file and summarise it."""
    from baoflow.demo import run

    run(db=Path(db), seed=seed, reports=reports, console=_c.out)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@url_option
def db_upgrade(url: str) -> None:
    """Create or migrate the schema to the newest revision."""
    with _engine(url, create=True) as eng:  # opening an engine migrates
        _c.out.print(f"schema at revision {eng.schema_revision()} ({_m(url)})", highlight=False)


@db.command("rebuild-keys")
@url_option
@click.argument("workflow", required=False)
def db_rebuild_keys(url: str, workflow: str | None) -> None:
    """Write every case's search keys anew from its data (of WORKFLOW's cases, or all):
    run it after a workflow declares a new key, so older cases are found by it."""
    with _engine(url) as eng:
        done = eng.rebuild_keys(workflow)
    _c.out.print(f"search keys rewritten for {done} case(s)", highlight=False)


@db.command("backup")
@url_option
@click.argument("to_file", type=click.Path(dir_okay=False, path_type=Path))
def db_backup(url: str, to_file: Path) -> None:
    """Copy a SQLite database to TO_FILE (a new file) with SQLite's online backup, safe
    while workers write; PostgreSQL is backed up with pg_dump (docs/backups.md)."""
    with _engine(url) as eng:
        done = eng.backup_database(to_file)
    _c.out.print(
        f"backed up {_m(eng.database)} to {_m(done.path)} ({done.size:,} bytes, "
        f"integrity {_m(done.integrity)})",
        highlight=False,
        soft_wrap=True,
    )


# --- backups of cases (issue #15 item 5, docs/backups.md) -------------------------------
@main.command("export")
@url_option
@click.option(
    "--case",
    "cases",
    multiple=True,
    type=CASE,
    help="A case (id or number) to export; repeat it for more. Default: every case.",
)
@click.option(
    "--to",
    "to",
    default="-",
    show_default=True,
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="The file to write (replaced once the export is whole), or - for standard output.",
)
def export_cases(url: str, cases: tuple[str, ...], to: Path) -> None:
    """Export cases as JSON lines, with their history, deadlines, timers and outbox;
    `baoflow import` reads them back exactly, on SQLite or PostgreSQL."""
    with _engine(url) as eng:
        lines = eng.export_cases(list(cases) if cases else None)
        if str(to) == "-":
            n = _write_lines(lines, sys.stdout.buffer)
            _c.err.print(f"exported {n} case(s)", highlight=False)
            return
        partial = to.with_name(to.name + ".partial")
        try:
            with partial.open("wb") as out:
                n = _write_lines(lines, out)
            partial.replace(to)
        finally:
            partial.unlink(missing_ok=True)
    _c.out.print(f"exported {n} case(s) to {_m(to)}", highlight=False, soft_wrap=True)


def _write_lines(lines: Iterator[str], out: BinaryIO) -> int:
    """Write an export's lines as UTF-8, whatever the locale; how many cases (the lines
    after the header)."""
    n = -1
    for line in lines:
        out.write(line.encode() + b"\n")
        n += 1
    return max(n, 0)


def _utf8_lines(file: BinaryIO) -> Iterator[str]:
    for n, raw in enumerate(file, 1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise click.ClickException(
                f"line {n} of {_safe(getattr(file, 'name', '<stdin>'))} is not UTF-8 text ({exc.reason} at byte "
                f"{exc.start}): an export of `baoflow export` is UTF-8; nothing was imported"
            ) from None


@main.command("import")
@url_option
@click.argument("file", type=click.File("rb", lazy=False))
def import_cases(url: str, file: BinaryIO) -> None:
    """Import an export of `baoflow export` (FILE, or - for standard input) in one
    transaction: every case of it, or none (a case number this database has, another
    schema revision or a malformed line refuses the whole file)."""
    with _engine(url) as eng:
        done = eng.import_cases(_utf8_lines(file))
    rows = ", ".join(f"{n} {table}" for table, n in done.rows.items() if n)
    _c.out.print(
        f"imported {done.cases} case(s) from {_m(getattr(file, 'name', '<stdin>'))}"
        + (f" ({rows} rows)" if rows else ""),
        highlight=False,
        soft_wrap=True,
    )


def _search_keys(_ctx: click.Context, _param: click.Parameter, given: tuple[str, ...]) -> Any:
    keys: dict[str, str] = {}
    for item in given:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise click.BadParameter(
                f"{item!r} is not NAME=VALUE; write e.g. --key phone=13800000000",
                param_hint="--key",
            )
        keys[name] = value
    return keys or None


@main.group()
def cases() -> None:
    """List and show cases."""


@cases.command("list")
@url_option
@click.option("--workflow")
@click.option("--state")
@click.option("--policy", "policy_number")
@click.option("--insured", "insured_name")
@click.option("--id-number")
@click.option(
    "--key",
    "keys",
    multiple=True,
    callback=_search_keys,
    metavar="NAME=VALUE",
    help="A search key a workflow declares, e.g. phone=13800000000 (repeatable).",
)
@click.option("--limit", default=50, show_default=True, help="Cases per page.")
@click.option("--page", default=1, show_default=True, help="Which page (1 is the newest).")
@json_option
def cases_list(url: str, limit: int, page: int, as_json: bool, **filters: Any) -> None:
    """Cases matching the filters, newest first, a page at a time."""
    if page < 1:
        raise click.BadParameter("pages count from 1", param_hint="--page")
    with _engine(url) as eng:
        total = eng.count_cases(**filters)
        found = eng.find_cases(limit=limit, offset=(page - 1) * limit, newest_first=True, **filters)
    if as_json:
        _emit_json({"total": total, "page": page, "limit": limit, "cases": found})
        return
    table = _Table("state", "insured", "updated (Beijing)")
    table.columns.insert(0, Column("number", no_wrap=True))
    for c in found:
        policy = c.data.get("policy", {})
        major = " 重大" if (c.data.get("major") or {}).get("is_major") else ""
        table.add_row(
            c.number, c.state + major, policy.get("insured_name", ""), _when(c.updated_at)
        )
    _c.out.print(table)
    first = (page - 1) * limit + 1
    shown = f"{first}–{first + len(found) - 1} of {total}" if found else f"none of {total}"
    _c.out.print(
        f"{shown} case(s), newest first"
        + (f"; next: --page {page + 1}" if first + len(found) - 1 < total else ""),
        highlight=False,
    )


@cases.command("show")
@url_option
@click.argument("case", type=CASE)
@click.option(
    "--role",
    "roles",
    multiple=True,
    help="The viewer's role (repeatable): identity and phone numbers are masked unless "
    f"one of them may see them ({', '.join(sorted(PERSONAL_DATA_ROLES))}).",
)
@json_option
def cases_show(url: str, case: str, roles: tuple[str, ...], as_json: bool) -> None:
    """One case: its data, its history, its deadlines and what may happen next."""
    from baoflow.notifications.masking import mask_text, sees_personal_data

    unmasked = sees_personal_data(roles)

    def shown(text: str) -> str:
        return text if unmasked else mask_text(text)

    with _engine(url) as eng:
        c = eng.get_case(case)
        definition = eng.workflow(c.workflow, c.workflow_version)
        history = eng.history(c.id)
        deadlines = eng.deadlines(c.id)
        refusals = eng.refusals(c.id)
        events = eng.available_events(c.id)
    data_text = json.dumps(c.data, ensure_ascii=False, indent=2)
    if as_json:
        case_json = json.loads(shown(json.dumps(_plain(c), ensure_ascii=False)))
        history_json = json.loads(shown(json.dumps(_plain(history), ensure_ascii=False)))
        _emit_json(
            {
                "case": case_json,
                "history": history_json,
                "deadlines": deadlines,
                "refusals": refusals,
                "next": events,
            }
        )
        return
    out = _c.out
    out.print(
        f"[bold]{_m(c.number)}[/]  {_m(definition.title)} v{c.workflow_version}  "
        f"state: [bold]{_m(c.state)}[/] ({_m(definition.state(c.state).title)})  "
        f"version {c.version}"
    )
    out.print(_safe(shown(data_text), lines=True), markup=False, highlight=False)
    table = _Table("#", "at (Beijing)", "actor", "event", "from → to", "notes")
    for h in history:
        table.add_row(
            str(h.seq),
            _when(h.at),
            h.actor.name,
            h.event,
            f"{h.from_state or '—'} → {h.to_state}",
            Text(_safe(shown("\n".join(h.notes)), lines=True)),
        )
    out.print(table)
    for d in deadlines:
        pause = f", paused {_m(d.pause_reason)}" if d.pause_reason else ""
        guess = (
            f" [yellow](provisional: {', '.join(map(str, d.provisional_years))} not published)[/]"
            if d.provisional
            else ""
        )
        out.print(
            f"  deadline [bold]{_m(d.rule)}[/] {_m(d.status)}{pause}: due {format_due(d.due_at)}"
            f"{guess}, warned {d.warned}, {'breached, ' if d.breached else ''}level {d.level}  "
            f"({_m(d.article)})"
        )
    for r in refusals:
        out.print(
            f"  refused {_when(r.at)}: [bold]{_m(r.event)}[/] by {_m(r.actor.name)} "
            f"({_m(r.kind)}): " + _m("; ".join(r.reasons)),
            highlight=False,
        )
    for ev in events:
        why = (
            ""
            if ev.would_pass
            else "  [yellow](refused now: " + _m("; ".join(ev.refusals)) + ")[/]"
        )
        out.print(f"  next: [bold]{_m(ev.event)}[/] → {_m(ev.target)}  {_m(ev.title)}{why}")


@main.command()
@url_option
@click.argument("case", type=CASE)
@click.argument("event")
@click.option("--data", "data_text", default="{}", help="Event data as JSON, or @FILE.")
@click.option("--actor", "actor_id", required=True, help="Actor id, e.g. h01.")
@click.option("--name", "actor_name", help="Actor's name (defaults to the id).")
@click.option("--role", "roles", multiple=True, help="A role of the actor (repeatable).")
@click.option("--org", "org_unit", help="The actor's org unit.")
@click.option("--idempotency-key")
@click.option("--expected-version", type=int)
def fire(
    url: str,
    case: str,
    event: str,
    data_text: str,
    actor_id: str,
    actor_name: str | None,
    roles: tuple[str, ...],
    org_unit: str | None,
    idempotency_key: str | None,
    expected_version: int | None,
) -> None:
    """Fire EVENT on CASE (id or case number)."""
    data = _event_data(data_text)
    actor = Actor(actor_id, actor_name or actor_id, roles=roles, org_unit=org_unit)
    with _engine(url) as eng:
        c = eng.fire(
            case,
            event,
            actor,
            data,
            idempotency_key=idempotency_key,
            expected_version=expected_version,
        )
        _c.out.print(f"{_m(c.number)}: {_m(event)} → [bold]{_m(c.state)}[/] (version {c.version})")


def _event_data(given: str) -> Any:
    """``--data``: JSON text, or ``@FILE`` holding it in UTF-8; a usage error otherwise."""
    text = given
    if given.startswith("@"):
        name = given[1:]
        try:
            text = Path(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise click.BadParameter(
                f"there is no file {name!r}: give @FILE of a file that exists, or the JSON itself",
                param_hint="--data",
            ) from None
        except UnicodeDecodeError as exc:
            raise click.BadParameter(
                f"{name!r} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                f"{exc.start}): save it as UTF-8",
                param_hint="--data",
            ) from None
        except OSError as exc:  # a folder, no permission, a name too long
            raise click.BadParameter(
                f"cannot read {name!r}: {exc.strerror or exc}", param_hint="--data"
            ) from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise click.BadParameter(
            "not valid JSON here: it is nested too deeply to read", param_hint="--data"
        ) from None
    except ValueError as exc:  # a JSONDecodeError, a number of too many digits, NaN
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--data") from None


def _no_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which JSON has not (nor PostgreSQL's jsonb).
    raise ValueError(f"{name} is not a JSON number")


@main.command()
@url_option
@click.option("--tick", default=0.5, show_default=True, help="Seconds between checks.")
@click.option("--batch", default=100, show_default=True, help="Timers leased per claim.")
@click.option(
    "--lease",
    default=10.0,
    show_default=True,
    help="Seconds a claim holds before other workers may take it over (renewed as it works).",
)
@click.option("--name", help="This worker's name in leases and logs.")
@click.option(
    "--digest",
    default="0 8 * * *",
    show_default=True,
    help="Cron (Beijing) of the daily SLA digest; '' for none.",
)
@notifications_option
def worker(
    url: str,
    tick: float,
    batch: int,
    lease: float,
    name: str | None,
    digest: str,
    notifications: str | None,
) -> None:
    """Fire due timers until SIGTERM: warnings, breaches, escalations, exactly once;
    with --notifications, deliver the outbox too."""
    import logging
    from datetime import timedelta

    from baoflow.engine.scheduler import Worker
    from baoflow.notifications.masking import install_log_masking

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # APScheduler logs a line per tick (twice a second); the worker says what matters:
    # what it fired, and when the next timer is due.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    install_log_masking()
    with _engine(url) as eng:
        Worker(
            eng,
            tick=tick,
            batch=batch,
            lease=timedelta(seconds=lease),
            name=name,
            digest=digest or None,
            deliverer=_deliverer(eng, notifications) if notifications else None,
        ).run_forever()


@main.group()
def deadlines() -> None:
    """The desk's running deadlines, and their maintenance."""


@deadlines.command("list")
@url_option
@click.option("--workflow")
@click.option("--rule")
@click.option("--org-unit", help="Only cases of this org unit.")
@click.option("--level", "min_level", type=int, help="Only at this escalation level or above.")
@click.option("--handler", help="Only cases assigned to this person (their id).")
@click.option("--limit", default=50, show_default=True)
@click.option("--page", default=1, show_default=True)
@json_option
def deadlines_list(
    url: str,
    workflow: str | None,
    rule: str | None,
    org_unit: str | None,
    min_level: int | None,
    handler: str | None,
    limit: int,
    page: int,
    as_json: bool,
) -> None:
    """Every running or paused deadline of the desk, the soonest due first, with the
    time left (negative once breached)."""
    if page < 1:
        raise click.BadParameter("pages count from 1", param_hint="--page")
    with _engine(url) as eng:
        found = eng.running_deadlines(
            workflow=workflow,
            rule=rule,
            org_unit=org_unit,
            min_level=min_level,
            handler=handler,
            limit=limit,
            offset=(page - 1) * limit,
        )
        now = eng.clock.now()
    if as_json:
        _emit_json(found)
        return
    table = _Table("rule", Column("due", no_wrap=True), "left", "level", "state", "handler")
    table.columns.insert(0, Column("case", no_wrap=True))
    for d in found:
        marks = " paused" if d.status == "paused" else ""
        marks += " provisional" if d.provisional else ""
        table.add_row(
            d.case_number,
            d.rule + marks,
            format_due(d.due_at),
            _left(d.due_at, now) if d.status == "running" else "paused",
            str(d.level),
            d.state,
            d.handler or "-",
        )
    _c.out.print(table)
    _c.out.print(f"{len(found)} deadline(s) on page {page}; times in Beijing", highlight=False)


@main.command()
@url_option
@click.option("--workflow")
@click.option("--rule")
@click.option("--org-unit", help="Only cases of this org unit.")
@click.option("--level", "min_level", type=int, help="Only at this escalation level or above.")
@json_option
def breaches(
    url: str,
    workflow: str | None,
    rule: str | None,
    org_unit: str | None,
    min_level: int | None,
    as_json: bool,
) -> None:
    """Deadlines breached and still running, the oldest due first."""
    with _engine(url) as eng:
        found = eng.breaches(workflow=workflow, rule=rule, org_unit=org_unit, min_level=min_level)
        now = eng.clock.now()
    if as_json:
        _emit_json(found)
        return
    table = _Table("rule", Column("due", no_wrap=True), "late", "level", "state")
    table.columns.insert(0, Column("case", no_wrap=True))
    for b in found:
        table.add_row(
            b.case_number, b.rule, format_due(b.due_at), _left(now, b.due_at), str(b.level), b.state
        )
    _c.out.print(table)
    _c.out.print(f"{len(found)} breach(es); times in Beijing", highlight=False)


@main.group()
def workflows() -> None:
    """The registered workflows: states, events, deadline rules, who may do what."""


@workflows.command("list")
@url_option
@json_option
def workflows_list(url: str, as_json: bool) -> None:
    """Every registered workflow, its newest version, and its states."""
    with _engine(url) as eng:
        found = eng.workflows()
    rows: list[dict[str, Any]] = [
        {
            "name": d.name,
            "version": d.version,
            "title": d.title,
            "states": [s.name for s in d.states],
        }
        for d in found
    ]
    if as_json:
        _emit_json(rows)
        return
    for row in rows:
        _c.out.print(
            f"[bold]{row['name']}[/] v{row['version']}  {_m(row['title'])}\n  states: "
            + ", ".join(row["states"])
        )


@workflows.command("show")
@url_option
@click.argument("workflow")
@json_option
def workflows_show(url: str, workflow: str, as_json: bool) -> None:
    """One workflow: its states, events (with guards and who may fire them), deadline
    rules (period, pauses, article) and permission rows."""
    with _engine(url) as eng:
        d = eng.workflow(workflow)
    shape = _workflow_shape(d)
    if as_json:
        _emit_json(shape)
        return
    out = _c.out
    out.print(f"[bold]{d.name}[/] v{d.version}  {_m(d.title)}  (initial: {d.initial})")
    out.print("[bold]states[/]")
    for st in shape["states"]:
        out.print(f"  {st['name']}{' (final)' if st['final'] else ''}  {_m(st['title'])}")
    out.print("[bold]events[/]")
    by_event: dict[str, list[dict[str, Any]]] = {}
    for t in shape["transitions"]:
        by_event.setdefault(t["event"], []).append(t)
    for event, ts in by_event.items():
        t = ts[0]
        stays = all(x["source"] == x["target"] for x in ts)
        sources = [x["source"] for x in ts]
        where = ", ".join(sources) if len(sources) <= 3 else f"any of {len(sources)} states"
        move = f"{where} (stays)" if stays and len(ts) > 1 else f"{where} → {t['target']}"
        extra = f"  guards: {', '.join(t['guards'])}" if t["guards"] else ""
        who = f"  by: {', '.join(t['roles'])}" if t["roles"] else "  by: the system"
        out.print(f"  {event}: {move}{extra}{who}", highlight=False)
    out.print("[bold]deadline rules[/]")
    for r in shape["deadlines"]:
        pauses = f"  paused in: {', '.join(r['pauses'])}" if r["pauses"] else ""
        out.print(
            f"  {r['name']}: {r['period']} from {', '.join(r['starts_on']) or '—'}{pauses}  "
            f"({_m(r['article'])})",
            highlight=False,
        )
    out.print("[bold]permissions[/]")
    for p in shape["permissions"]:
        where = "own org unit" if p["own_org_unit"] else "any org unit"
        out.print(
            f"  {_m(p['title'])}: {', '.join(p['roles'])} may fire "
            f"{', '.join(p['events'])} ({where})",
            highlight=False,
        )


def _workflow_shape(d: Any) -> dict[str, Any]:
    """A definition as plain data: what ``workflows show`` prints."""
    roles: dict[str, set[str]] = {}
    for p in d.permissions:
        for event in p.events:
            roles.setdefault(event, set()).update(p.roles)
    return {
        "name": d.name,
        "version": d.version,
        "title": d.title,
        "initial": d.initial,
        "states": [{"name": s.name, "title": s.title, "final": s.final} for s in d.states],
        "transitions": [
            {
                "event": t.event,
                "source": t.source,
                "target": t.target,
                "title": t.title,
                "guards": list(t.guards),
                "roles": sorted(roles.get(t.event, ())),
                "article": t.article,
            }
            for t in d.transitions
        ],
        "deadlines": [
            {
                "name": r.name,
                "title": r.title,
                "period": str(r.period),
                "starts_on": list(r.starts_on),
                "stops_on": list(r.stops_on),
                "pauses": sorted({s for states in r.pauses.values() for s in states}),
                "article": r.article,
            }
            for r in d.deadlines
        ],
        "permissions": [
            {
                "title": p.title,
                "events": list(p.events),
                "roles": list(p.roles),
                "own_org_unit": p.own_org_unit,
            }
            for p in d.permissions
        ],
    }


@deadlines.command("recompute")
@url_option
def deadlines_recompute(url: str) -> None:
    """Recompute running deadlines after the calendar data changed (each winter)."""
    with _engine(url) as eng:
        _c.out.print(f"{eng.recompute_deadlines()} deadline(s) moved")


@main.group()
def calendar() -> None:
    """The working-day calendar: the desk's own holiday arrangements (docs/deadlines.md)."""


@calendar.command("import")
@url_option
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--by", "by", help="Who imports it (recorded); default: your login name.")
@click.option(
    "--override",
    is_flag=True,
    help="Import although chinesecalendar says otherwise of some days of the year.",
)
def calendar_import(url: str, file: str, by: str | None, override: bool) -> None:
    """Import a year's holiday arrangement typed from the State Council's notice, and
    recompute the running deadlines that count on it."""
    who = by or os.environ.get("USER") or "operator"
    with _engine(url) as eng:
        done = eng.import_calendar(
            Path(file), Actor(who, who, roles=("administrator",)), override=override
        )
    _c.out.print(
        f"imported {done.year}: {done.holidays} holiday(s), {done.workdays} make-up working "
        f"day(s) (import {done.import_id}); {done.recomputed} running deadline(s) recomputed"
    )
    for line in done.overridden:
        _c.out.print(f"  overridden: {_m(line)}", highlight=False)


@calendar.command("show")
@url_option
@click.argument("year", type=int)
@json_option
def calendar_show(url: str, year: int, as_json: bool) -> None:
    """A year's holidays and make-up working days, and where each comes from."""
    with _engine(url) as eng:
        shown = eng.calendar_year(year)
    if as_json:
        _emit_json(shown)
        return
    out = _c.out
    out.print(f"{year}: {_SOURCES[shown.source]}", highlight=False)
    for imp in shown.imports:
        state = "current" if imp.current else "replaced"
        out.print(
            _safe(
                f"  import {imp.id} ({state}): {imp.source}; from {imp.file_name} by "
                f"{imp.imported_by}, {format_when(imp.imported_at)}"
            )
            + (" [override]" if imp.override else ""),
            highlight=False,
            markup=False,
        )
    for d in shown.days:
        where = f"{d.source}, line {d.line}" if d.line else d.source
        kind = "work" if d.working else "rest"
        out.print(
            _safe(
                f"  {d.day} {'一二三四五六日'[d.day.weekday()]}  {kind}  {d.name or '—'}  ({where})"
            ),
            highlight=False,
            markup=False,
        )


_SOURCES = {
    "desk": "the desk's imported arrangement",
    "package": "the published arrangement in chinesecalendar",
    "provisional": "PROVISIONAL: statutory holidays and weekends only (not published yet)",
    "unknown": "unknown (a strict calendar refuses it)",
    "custom": "the app's own calendar",
}


@calendar.command("status")
@url_option
@json_option
def calendar_status(url: str, as_json: bool) -> None:
    """Whether this year's and next year's arrangements are known, and how many running
    deadlines count on a year only provisionally."""
    with _engine(url) as eng:
        rows = eng.calendar_status()
    if as_json:
        _emit_json(rows)
        return
    for row in rows:
        line = f"{row.year}: {_SOURCES[row.source]}"
        if row.provisional_deadlines:
            line += f"; {row.provisional_deadlines} running deadline(s) depend on it"
        _c.out.print(line, highlight=False)
        if row.provisional:
            _c.out.print(
                f"  when the State Council publishes {row.year}'s arrangement: "
                "baoflow calendar import FILE (docs/deadlines.md)",
                highlight=False,
            )


@main.group()
def sla() -> None:
    """Service-level figures."""


@sla.command("report")
@url_option
@click.option("--workflow")
@click.option(
    "--since", type=click.DateTime(["%Y-%m-%d"]), help="Deadlines started from (Beijing day)."
)
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="...and before (Beijing day).")
@click.option("--org-unit", help="Only cases opened in this org unit.")
@click.option(
    "--per",
    type=click.Choice(["day", "week", "month"]),
    help="One row per rule, org unit and period the deadlines started in.",
)
@json_option
def sla_report(
    url: str,
    workflow: str | None,
    since: Any,
    until: Any,
    org_unit: str | None,
    per: str | None,
    as_json: bool,
) -> None:
    """On-time rate and breaches per rule; the cases overdue now; median time in state."""
    with _engine(url) as eng:
        report = eng.sla_report(
            since=since.replace(tzinfo=SHANGHAI) if since else None,
            until=until.replace(tzinfo=SHANGHAI) if until else None,
            workflow=workflow,
            org_unit=org_unit,
            per=per,
        )
        overdue = eng.breaches(workflow=workflow, org_unit=org_unit)
    if as_json:
        _emit_json({"report": report, "overdue": overdue})
        return
    out = _c.out
    table = _Table(
        *(["period"] if per else []),
        "rule",
        "org unit",
        "started",
        "running",
        "overdue",
        "on time",
        "late",
        "on-time rate",
    )
    for r in report.rules:
        rate = f"{r.on_time_rate:.0%} of {r.ended}" if r.on_time_rate is not None else "none ended"
        table.add_row(
            *([r.period or ""] if per else []),
            f"{r.workflow}.{r.rule}",
            r.org_unit or "—",
            str(r.started),
            str(r.running),
            str(r.breached_open),
            str(r.met_on_time),
            str(r.met_late),
            rate,
        )
    out.print(table)
    out.print(
        f"{report.running} running, {report.breached_now} past due now; the rate counts only "
        "the deadlines that ended",
        highlight=False,
    )
    breaches_table = _Table("rule", "due (Beijing)", "level", "state", title="Overdue now")
    breaches_table.columns.insert(0, Column("case", no_wrap=True))
    for b in overdue:
        breaches_table.add_row(b.case_number, b.rule, format_due(b.due_at), str(b.level), b.state)
    out.print(breaches_table)
    states = _Table("workflow", "state", "median time in state", title="Time in state")
    for (wf, state), median in report.median_time_in_state.items():
        states.add_row(wf, state, str(median).split(".")[0])
    out.print(states)
    closing = _Table("workflow", "median time to close", title="Opened to closed")
    for wf, median in report.median_time_to_close.items():
        closing.add_row(wf, format_duration(median.total_seconds(), locale="en"))
    out.print(closing)


@main.group()
def policies() -> None:
    """The policy directory the review checks against."""


@policies.command("import")
@url_option
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def policies_import(url: str, csv_file: Path) -> None:
    """Import (insert or replace) policies from a CSV file."""
    with _engine(url) as eng:
        if not isinstance(eng.policies, SqlPolicyDirectory):  # pragma: no cover - our own
            raise click.ClickException("this engine's policy directory is not baoflow's table")
        n = eng.policies.import_csv(csv_file)
    _c.out.print(f"imported {n} polic{'y' if n == 1 else 'ies'} from {_m(csv_file)}")


# --- notifications (issue #5) -----------------------------------------------------------
@main.group()
def outbox() -> None:
    """The outbox: notices waiting, delivered or in dead letter."""


@outbox.command("list")
@url_option
@click.option(
    "--status", type=click.Choice(["pending", "expanded", "delivered", "dead"]), help="Only these."
)
@click.option("--case", "case_ref", type=CASE, help="Only this case (id or case number).")
@click.option("--limit", default=50, show_default=True)
@json_option
def outbox_list(
    url: str, status: str | None, case_ref: str | None, limit: int, as_json: bool
) -> None:
    """Notices and messages, oldest first, with their attempts and last error
    (identity and phone numbers masked)."""
    from baoflow.notifications.masking import mask_text

    with _engine(url) as eng:
        rows = eng.outbox(case=case_ref, status=status, limit=limit)
    if as_json:
        text = mask_text(json.dumps(_plain(rows), ensure_ascii=False, indent=2))
        click.echo(_safe(text, json_text=True))
        return
    table = _Table("id", "case", "notice", "to", "via", "status", "tries", "next / done", "error")
    for r in rows:
        when = r.delivered_at if r.status == "delivered" else r.next_attempt_at
        table.add_row(
            str(r.id),
            r.case_number or "—",
            r.template,
            mask_text(r.address or r.recipient),
            r.channel or "(to resolve)",
            r.status,
            str(r.attempts),
            _when(when),
            mask_text(r.last_error or ""),
        )
    _c.out.print(table)


@outbox.command("retry")
@url_option
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-dead", is_flag=True, help="Every message in dead letter.")
def outbox_retry(url: str, ids: tuple[int, ...], all_dead: bool) -> None:
    """Put dead-letter messages back to pending, due now, with fresh attempts."""
    if not ids and not all_dead:
        raise click.UsageError(
            "give the ids to retry (see `baoflow outbox list --status dead`) or --all-dead"
        )
    with _engine(url) as eng:
        n = eng.retry_outbox(list(ids) if ids else None)
    if ids and n < len(ids):
        _c.err.print(f"{len(ids) - n} of the ids given were not in dead letter; left as they are")
    _c.out.print(f"{n} message(s) back to pending")


@outbox.command("deliver")
@url_option
@notifications_option
def outbox_deliver(url: str, notifications: str | None) -> None:
    """Deliver what is due now, once (the worker does this on every tick)."""
    if not notifications:
        raise click.UsageError("--notifications FILE (or BAOFLOW_NOTIFICATIONS) is required")
    with _engine(url) as eng:
        run = _deliverer(eng, notifications).deliver_due()
        _c.out.print(
            f"{run.resolved} notice(s) resolved to {run.messages} message(s); "
            f"{run.delivered} delivered, {run.retried} to retry, {run.dead} dead"
        )


@main.group()
def notify() -> None:
    """Notice templates."""


@notify.command("preview")
@url_option
@notifications_option
@click.argument("notice")
@click.option("--case", "case_ref", type=CASE, required=True, help="The case whose notice to show.")
@click.option("--locale", default="zh-CN", show_default=True)
@click.option("--unmasked", is_flag=True, help="As the data subject sees it.")
def notify_preview(
    url: str,
    notifications: str | None,
    notice: str,
    case_ref: str,
    locale: str,
    unmasked: bool,
) -> None:
    """Render NOTICE as the case's outbox holds it (the newest such notice of the case)."""
    from baoflow.notifications.message import Address
    from baoflow.notifications.templates import TemplateSet

    with _engine(url) as eng:
        case = eng.get_case(case_ref)
        found = [
            r
            for r in eng.outbox(case=case.id, limit=10_000)
            if r.template == notice and r.parent_id is None
        ]
        if not found:
            raise click.ClickException(
                f"case {case.number} has no {notice!r} notice in the outbox; "
                "`baoflow outbox list --case` shows what it has"
            )
        if notifications:
            deliverer = _deliverer(eng, notifications)
        else:
            from baoflow.notifications.delivery import Deliverer
            from baoflow.notifications.directory import Directory

            deliverer = Deliverer(eng, TemplateSet(eng.notice_fields()), {}, Directory())
        address = Address("preview", "-", locale=locale, data_subject=unmasked)
        rendered = deliverer.render(notice, found[-1].context, address)
        _c.out.print(_safe(rendered.subject), markup=False, highlight=False)
        _c.out.print()
        _c.out.print(_safe(rendered.text, lines=True), markup=False, highlight=False)


@main.command()
@url_option
@click.argument("user")
@click.option("--unread", is_flag=True, help="Only what is unread.")
@click.option("--mark-read", is_flag=True, help="Then mark what was shown read.")
@json_option
def inbox(url: str, user: str, unread: bool, mark_read: bool, as_json: bool) -> None:
    """A user's in-app inbox, newest first."""
    with _engine(url) as eng:
        rows = eng.inbox(user, unread_only=unread)
        marked = eng.mark_read(user, [r.id for r in rows]) if mark_read and rows else 0
    if as_json:
        _emit_json(rows)
        return
    table = _Table("when (Beijing)", "case", "subject", "read")
    for r in rows:
        table.add_row(_when(r.created_at), r.case_number or "—", r.subject, "" if r.unread else "✓")
    _c.out.print(table)
    if mark_read:
        _c.out.print(f"{marked} marked read")


# --- inbound insurer messages (issue #12) -------------------------------------------------
@main.group()
def inbound() -> None:
    """The insurers' messages: what fired, and what waits for a person."""


@inbound.command("list")
@url_option
@click.option(
    "--status",
    type=click.Choice(["applied", "unresolved", "resolved", "dismissed"]),
    help="Only these (unresolved: waiting for a person).",
)
@click.option("--limit", default=50, show_default=True)
@json_option
def inbound_list(url: str, status: str | None, limit: int, as_json: bool) -> None:
    """Insurer messages, oldest first: the case each matched, and why one waits."""
    with _engine(url) as eng:
        rows = eng.inbound_messages(status=status, limit=limit)
    if as_json:
        _emit_json(rows)
        return
    table = _Table(
        "id", "received (Beijing)", "insurer", "message", "kind", "case", "status", "why"
    )
    for r in rows:
        why = r.reason_code or ""
        if r.status in ("resolved", "dismissed"):
            why = f"{r.resolution} ({r.resolved_by}, {_when(r.resolved_at)})"
        table.add_row(
            str(r.id),
            _when(r.received_at),
            r.insurer,
            r.message_id,
            r.kind,
            r.case or r.case_number or r.reference or "—",
            r.status,
            why,
        )
    _c.out.print(table)


@inbound.command("resolve")
@url_option
@click.argument("message_id", metavar="ID", type=int)
@click.option(
    "--case",
    "case_ref",
    type=CASE,
    help="Fire the message's event on this case (number or id).",
)
@click.option("--dismiss", "reason", help="Set the message aside, saying why.")
@click.option("--by", "by", required=True, help="Who resolves it (a user id).")
def inbound_resolve(
    url: str, message_id: int, case_ref: str | None, reason: str | None, by: str
) -> None:
    """Resolve a message that waits for a person: retry it against a case, or dismiss it."""
    if (case_ref is None) == (reason is None):
        raise click.UsageError("give either --case NUMBER or --dismiss REASON")
    with _engine(url) as eng:
        if case_ref is not None:
            result = eng.resolve_inbound(message_id, case_ref, by=by)
            _c.out.print(
                f"message {message_id}: {_m(result.event)} fired on {_m(result.case_number)}, "
                f"now {_m(result.state)}"
            )
        else:
            eng.dismiss_inbound(message_id, reason or "", by=by)
            _c.out.print(f"message {message_id} dismissed")


@main.group()
def tokens() -> None:
    """The HTTP API's tokens: each acts as one actor, or for named people."""


def _person(spec: str) -> Actor:
    """``ID:NAME:ROLE,ROLE:ORG`` (name, roles and org unit may be left empty)."""
    parts = spec.split(":")
    if len(parts) > 4 or not parts[0].strip():
        raise click.BadParameter(
            f"{spec!r} is not ID:NAME:ROLE,ROLE:ORG (e.g. h01:王芳:handler:SH)",
            param_hint="--act-for",
        )
    pid, name, roles, org = [*(p.strip() for p in parts), "", "", ""][:4]
    return Actor(pid, name or pid, tuple(r for r in roles.split(",") if r), org or None)


def _acts(token: Any) -> str:
    def one(a: Actor) -> str:
        return f"{a.id} {a.name} ({', '.join(a.roles) or 'no roles'}; {a.org_unit or 'no unit'})"

    parts = [f"as {one(token.actor)}"] if token.actor else []
    if token.act_for:
        parts.append("for " + "; ".join(one(p) for p in token.act_for))
    return "  ".join(parts)


@tokens.command("add")
@url_option
@click.argument("app")
@click.option("--actor", "actor_id", help="The id of the actor the token acts as.")
@click.option("--name", "actor_name", help="That actor's name (defaults to the id).")
@click.option("--role", "roles", multiple=True, help="A role of that actor (repeatable).")
@click.option("--org", "org_unit", help="That actor's org unit (branch).")
@click.option(
    "--act-for",
    "act_for",
    multiple=True,
    help="A person the token may act for, named by a request's X-Act-For header: "
    "ID:NAME:ROLE,ROLE:ORG (repeatable).",
)
def tokens_add(
    url: str,
    app: str,
    actor_id: str | None,
    actor_name: str | None,
    roles: tuple[str, ...],
    org_unit: str | None,
    act_for: tuple[str, ...],
) -> None:
    """Make a token for APP; its secret is printed this once (only its hash is kept)."""
    actor = Actor(actor_id, actor_name or actor_id, roles, org_unit) if actor_id else None
    with _engine(url) as eng:
        made = eng.create_api_token(app, actor=actor, act_for=[_person(p) for p in act_for])
    t = made.token
    click.echo(_safe(f"token {t.id} for {t.app}: {_acts(t)}"))
    click.echo("secret (shown this once; keep it where the app reads its secrets):")
    click.echo(made.secret)


@tokens.command("list")
@url_option
@click.option("--active", is_flag=True, help="Leave out revoked tokens.")
def tokens_list(url: str, active: bool) -> None:
    """Every token: whom it acts as or for, when made, last used and revoked."""
    with _engine(url) as eng:
        found = eng.api_tokens(include_revoked=not active)
    table = _Table(
        "id",
        "app",
        "secret starts",
        Column("acts", overflow="fold"),
        "made",
        "last used",
        "revoked",
    )
    for t in found:
        table.add_row(
            str(t.id),
            t.app,
            f"{t.prefix}…",
            _acts(t),
            _when(t.created_at),
            _when(t.last_used_at) or "never",
            _when(t.revoked_at),
        )
    _c.out.print(table)


@tokens.command("revoke")
@url_option
@click.argument("token_id", type=int)
def tokens_revoke(url: str, token_id: int) -> None:
    """Revoke token TOKEN_ID: every request with it is refused from now on (401)."""
    with _engine(url) as eng:
        t = eng.revoke_api_token(token_id)
    click.echo(_safe(f"token {t.id} ({t.app}) revoked {_when(t.revoked_at)}"))


@main.group()
def users() -> None:
    """The dashboard's accounts: who logs in, and whom they act as."""


@users.command("add")
@url_option
@click.argument("user_id")
@click.option("--name", required=True, help="The person's name, as the pages show it.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    help="A role (repeatable), as the permission table names them.",
)
@click.option("--org", "org_unit", help="The person's org unit (branch): what they see.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (its first line) instead of a prompt.",
)
def users_add(
    url: str,
    user_id: str,
    name: str,
    roles: tuple[str, ...],
    org_unit: str | None,
    password_stdin: bool,
) -> None:
    """Make a dashboard account USER_ID. The password is asked for (twice), or read
    from standard input; never an argument, which other users could see in `ps`."""
    with _engine(url) as eng:  # first: a wrong --url is said before the password is typed
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = click.prompt("password", hide_input=True, confirmation_prompt=True)
        user = eng.add_user(user_id, name, password, roles=roles, org_unit=org_unit)
    click.echo(
        _safe(
            f"user {user.id} ({user.name}; {', '.join(user.roles) or 'no roles'}; "
            f"{user.org_unit or 'no unit'}) added"
        )
    )


@users.command("list")
@url_option
def users_list(url: str) -> None:
    """Every account: name, roles, org unit, made, disabled."""
    with _engine(url) as eng:
        found = eng.users()
    table = _Table("id", "name", "roles", "org unit", "made", "disabled")
    for u in found:
        table.add_row(
            u.id,
            u.name,
            ", ".join(u.roles),
            u.org_unit or "",
            _when(u.created_at),
            _when(u.disabled_at),
        )
    _c.out.print(table)


@users.command("disable")
@url_option
@click.argument("user_id")
def users_disable(url: str, user_id: str) -> None:
    """Disable USER_ID: log-ins refused, open sessions ended at their next page."""
    with _engine(url) as eng:
        u = eng.disable_user(user_id)
    click.echo(_safe(f"user {u.id} ({u.name}) disabled {_when(u.disabled_at)}"))


@main.command()
@url_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
@click.option(
    "--no-worker",
    is_flag=True,
    help="Serve the API alone; run `baoflow worker` apart (PostgreSQL, several processes).",
)
@click.option("--tick", default=0.5, show_default=True, help="Seconds between timer checks.")
@click.option("--access-log", is_flag=True, help="Log every request.")
@click.option(
    "--insurers",
    type=click.Path(exists=True, dir_okay=False),
    envvar="BAOFLOW_INSURERS",
    help="TOML naming each insurer's webhook secret variable (docs/inbound.md): "
    "take their signed messages at /webhooks/insurers/NAME.",
)
@click.option("--no-metrics", is_flag=True, help="Do not serve /metrics.")
@click.option("--no-dashboard", is_flag=True, help="Serve the API alone, without the dashboard.")
@click.option(
    "--trust-header",
    metavar="HEADER",
    help="Log in the dashboard user named by this request header (e.g. X-Remote-User), "
    "set by an app in front that authenticated them; only behind a proxy that strips it.",
)
@notifications_option
def serve(
    url: str,
    host: str,
    port: int,
    no_worker: bool,
    tick: float,
    access_log: bool,
    insurers: str | None,
    no_metrics: bool,
    no_dashboard: bool,
    trust_header: str | None,
    notifications: str | None,
) -> None:
    """Serve the HTTP API (docs/http-api.md) and the supervisors' dashboard
    (docs/dashboard.md) until SIGTERM, with the timer worker in the same process unless
    --no-worker; with --notifications, deliver the outbox too."""
    import logging

    from baoflow.api.server import serve as run
    from baoflow.api.webhooks import load_insurer_secrets
    from baoflow.notifications.masking import install_log_masking

    secrets = load_insurer_secrets(insurers) if insurers else None
    if no_worker and notifications:
        raise click.UsageError("--notifications is delivered by the worker: drop --no-worker")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    install_log_masking()
    with _engine(url) as eng:
        run(
            eng,
            host=host,
            port=port,
            worker=not no_worker,
            deliverer=_deliverer(eng, notifications) if notifications else None,
            tick=tick,
            access_log=access_log,
            insurers=secrets,
            metrics=not no_metrics,
            dashboard=not no_dashboard,
            trust_header=trust_header,
        )


@main.command()
@url_option
@click.argument("workflow")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot", "svg"]),
    default="mermaid",
    show_default=True,
    help="Mermaid and DOT are text; SVG is drawn here (no Graphviz to install).",
)
@click.option("--live", is_flag=True, help="Each state with its cases, warned and breached.")
@click.option("--org-unit", help="With --live: only the cases of this org unit.")
@click.option("--case", "case", type=CASE, help="Draw this case's path (case number or id).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write it to FILE instead of standard output.",
)
def diagram(
    url: str,
    workflow: str,
    fmt: str,
    live: bool,
    org_unit: str | None,
    case: str | None,
    output: str | None,
) -> None:
    """A workflow's state diagram: static, with live counts, or one case's path."""
    from baoflow import diagrams

    if org_unit is not None and not live:
        raise click.UsageError("--org-unit needs --live (it narrows the live counts)")
    with _engine(url) as eng:
        ref: int | str | None = int(case) if case is not None and _is_id(case) else case
        drawn = diagrams.render(eng, workflow, fmt, live=live, case=ref, org_unit=org_unit)
    # Labels carry stored data (who fired each step of a case's path): escaped, for the
    # terminal and for the SVG, which an XML reader refuses with a control character in it.
    text = drawn if isinstance(drawn, str) else drawn.decode("utf-8")
    data = _safe(text, lines=True).encode()
    if output is not None:
        Path(output).write_bytes(data)
        return
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


@main.group()
def audit() -> None:
    """The tamper-evident history: verify its hash chains, seal the days."""


def _noted(_ctx: click.Context, _param: click.Parameter, given: tuple[str, ...]) -> Any:
    noted: dict[date, str] = {}
    for text in given:
        day, sep, hash_ = text.partition("=")
        try:
            noted[date.fromisoformat(day.strip())] = hash_.strip()
        except ValueError:
            sep = ""
        if not sep or not hash_.strip():
            raise click.BadParameter(f"{text!r} is not DAY=ANCHOR, e.g. 2026-12-03=9f2c…")
    return noted


@audit.command("verify")
@url_option
@click.option("--case", "cases", multiple=True, type=CASE, help="Only this case (repeatable).")
@click.option(
    "--anchor",
    "noted",
    multiple=True,
    callback=_noted,
    help="DAY=ANCHOR as an auditor noted it down (repeatable): it must be the one sealed.",
)
def audit_verify(url: str, cases: tuple[str, ...], noted: dict[date, str]) -> None:
    """Check every history row's hash against its content and the row before it, and
    every sealed day's anchor against its rows: exit status 1 if anything was altered,
    removed or reordered."""
    if cases and noted:
        raise click.UsageError("--anchor checks the whole database: leave out --case")
    with _engine(url) as eng:
        refs = [int(c) if _is_id(c) else c for c in cases] or None
        report = eng.verify_audit(refs, noted=noted)
    for problem in (*report.breaks, *report.anchor_breaks):
        _c.out.print(f"broken: {_m(_safe(problem))}", highlight=False, soft_wrap=True)
    anchors = "" if cases else f", {report.anchors} sealed day(s)"
    verdict = "verified" if report.verified else "BROKEN"
    _c.out.print(
        f"{verdict}: {report.cases} case(s), {report.rows} history row(s){anchors}",
        highlight=False,
        soft_wrap=True,
    )
    if not report.verified:
        sys.exit(1)


@audit.command("seal")
@url_option
def audit_seal(url: str) -> None:
    """Seal each day that is over and not sealed yet (the worker does it on its own)."""
    with _engine(url) as eng:
        sealed = eng.seal_audit()
    for anchor in sealed:
        _c.out.print(
            f"{anchor.day}  {anchor.hash}  {anchor.rows} row(s)", highlight=False, soft_wrap=True
        )
    _c.out.print(f"{len(sealed)} day(s) sealed", highlight=False)


@audit.command("anchors")
@url_option
@click.option("--last", default=7, show_default=True, help="How many of the newest days.")
def audit_anchors(url: str, last: int) -> None:
    """The sealed days' anchors, the newest last: note them down to check against later."""
    with _engine(url) as eng:
        anchors = eng.audit_anchors()
    for anchor in anchors[-last:] if last > 0 else anchors:
        _c.out.print(
            f"{anchor.day}  {anchor.hash}  {anchor.rows} row(s)", highlight=False, soft_wrap=True
        )
    if not anchors:
        _c.out.print("no day sealed yet: baoflow audit seal", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    main()
