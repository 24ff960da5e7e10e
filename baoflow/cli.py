"""``baoflow``: a thin command line over :class:`baoflow.Engine` — a few lines a command."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from baoflow.engine import (
    Actor,
    BaoflowError,
    ChineseOfficialCalendar,
    Engine,
    SqlPolicyDirectory,
    open_engine,
)
from baoflow.engine.clock import SHANGHAI
from baoflow.engine.store import Store

DEFAULT_URL = "sqlite:///baoflow.db"


class _Consoles:
    """Made on first use, so the width follows the terminal (or COLUMNS) of the call."""

    @property
    def out(self) -> Console:
        return Console()

    @property
    def err(self) -> Console:
        return Console(stderr=True)


_c = _Consoles()

notifications_option = click.option(
    "--notifications",
    envvar="BAOFLOW_NOTIFICATIONS",
    type=click.Path(dir_okay=False),
    help="The notification configuration (TOML: channels, people, parties); "
    "env BAOFLOW_NOTIFICATIONS. See docs/notifications.md.",
)


def _deliverer(eng: Engine, path: str) -> Any:
    from baoflow.notifications.config import load_deliverer

    return load_deliverer(eng, path)


url_option = click.option(
    "--url",
    envvar="BAOFLOW_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="Database URL (env BAOFLOW_URL): sqlite:///FILE or postgresql://...",
)


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    # A year whose holiday arrangement is not published yet is counted provisionally
    # from its statutory holidays (the default), or refused: BAOFLOW_UNKNOWN_YEARS=error.
    # ("weekends", this setting's old value, now means provisional.)
    choice = os.environ.get("BAOFLOW_UNKNOWN_YEARS", "provisional")
    if choice not in ("provisional", "error", "weekends"):
        raise click.UsageError(
            f"BAOFLOW_UNKNOWN_YEARS must be provisional or error, not {choice!r}"
        )
    eng = open_engine(url, calendar=ChineseOfficialCalendar(unknown_years=choice))  # type: ignore[arg-type]
    try:
        yield eng
    finally:
        eng.close()


class _Group(click.Group):
    """Turns baoflow's errors into one clear line and exit status 2, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BaoflowError as exc:
            # The message is text, not markup ("baoflow[postgres]" must survive), and is
            # not wrapped at the terminal's width: a line stays one line.
            _c.err.print(
                f"[bold red]error:[/] {type(exc).__name__}: {escape(str(exc))}",
                markup=True,
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="baoflow")
def main() -> None:
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
    store = Store(url)
    try:
        store.upgrade()
        _c.out.print(
            f"schema at revision {store.current_revision()} ({store.engine.url.render_as_string()})"
        )
    finally:
        store.dispose()


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
@click.option("--limit", default=50, show_default=True)
def cases_list(url: str, limit: int, **filters: Any) -> None:
    """Cases matching the filters, oldest first."""
    with _engine(url) as eng:
        found = eng.find_cases(limit=limit, **filters)
        out = _c.out
        table = Table("workflow", "state", "insured", "policy", "major", "updated (Beijing)")
        table.columns.insert(0, Column("number", no_wrap=True))
        for c in found:
            policy = c.data.get("policy", {})
            table.add_row(
                c.number,
                f"{c.workflow} v{c.workflow_version}",
                c.state,
                policy.get("insured_name", ""),
                policy.get("number") or "",
                "yes" if (c.data.get("major") or {}).get("is_major") else "",
                c.updated_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
            )
        out.print(table)
        out.print(f"{len(found)} case(s)")


@cases.command("show")
@url_option
@click.argument("case")
def cases_show(url: str, case: str) -> None:
    """One case: its data, its history and what may happen next."""
    with _engine(url) as eng:
        out = _c.out
        c = eng.get_case(case)
        definition = eng.workflow(c.workflow, c.workflow_version)
        out.print(
            f"[bold]{c.number}[/]  {definition.title} v{c.workflow_version}  "
            f"state: [bold]{c.state}[/] ({definition.state(c.state).title})  version {c.version}"
        )
        out.print_json(json.dumps(c.data, ensure_ascii=False))
        table = Table("#", "at (Beijing)", "actor", "event", "from → to", "notes")
        for h in eng.history(c.id):
            table.add_row(
                str(h.seq),
                h.at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
                h.actor.name,
                h.event,
                f"{h.from_state or '—'} → {h.to_state}",
                "\n".join(h.notes),
            )
        out.print(table)
        for d in eng.deadlines(c.id):
            pause = f", paused {d.pause_reason}" if d.pause_reason else ""
            guess = (
                f" [yellow](provisional: {', '.join(map(str, d.provisional_years))} not "
                "published)[/]"
                if d.provisional
                else ""
            )
            out.print(
                f"  deadline [bold]{d.rule}[/] {d.status}{pause}: due "
                f"{d.due_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}{guess}, warned {d.warned}, "
                f"{'breached, ' if d.breached else ''}level {d.level}  ({d.article})"
            )
        for r in eng.refusals(c.id):
            out.print(
                f"  refused {r.at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}: [bold]{r.event}[/] by "
                f"{r.actor.name} ({r.kind}): " + "; ".join(r.reasons),
                markup=True,
                highlight=False,
            )
        for ev in eng.available_events(c.id):
            why = (
                ""
                if ev.would_pass
                else "  [yellow](refused now: " + "; ".join(ev.refusals) + ")[/]"
            )
            out.print(f"  next: [bold]{ev.event}[/] → {ev.target}  {ev.title}{why}")


@main.command()
@url_option
@click.argument("case")
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
    raw = (
        Path(data_text[1:]).read_text(encoding="utf-8") if data_text.startswith("@") else data_text
    )
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--data") from exc
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
        _c.out.print(f"{c.number}: {event} → [bold]{c.state}[/] (version {c.version})")


@main.command()
@url_option
@click.option("--tick", default=0.5, show_default=True, help="Seconds between checks.")
@click.option("--batch", default=100, show_default=True, help="Timers leased per claim.")
@click.option("--lease", default=60.0, show_default=True, help="Seconds a claim holds.")
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
    """Deadline maintenance."""


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
        _c.out.print(f"  overridden: {line}", highlight=False)


@calendar.command("show")
@url_option
@click.argument("year", type=int)
def calendar_show(url: str, year: int) -> None:
    """A year's holidays and make-up working days, and where each comes from."""
    with _engine(url) as eng:
        shown = eng.calendar_year(year)
    out = _c.out
    out.print(f"{year}: {_SOURCES[shown.source]}", highlight=False)
    for imp in shown.imports:
        state = "current" if imp.current else "replaced"
        out.print(
            f"  import {imp.id} ({state}): {imp.source}; from {imp.file_name} by "
            f"{imp.imported_by}, {imp.imported_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}"
            + (" [override]" if imp.override else ""),
            highlight=False,
            markup=False,
        )
    for d in shown.days:
        where = f"{d.source}, line {d.line}" if d.line else d.source
        kind = "work" if d.working else "rest"
        out.print(
            f"  {d.day} {'一二三四五六日'[d.day.weekday()]}  {kind}  {d.name or '—'}  ({where})",
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
def calendar_status(url: str) -> None:
    """Whether this year's and next year's arrangements are known, and how many running
    deadlines count on a year only provisionally."""
    with _engine(url) as eng:
        rows = eng.calendar_status()
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
def sla_report(
    url: str,
    workflow: str | None,
    since: Any,
    until: Any,
    org_unit: str | None,
    per: str | None,
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
        out = _c.out
        table = Table(
            *(["period"] if per else []),
            "workflow",
            "org unit",
            "rule",
            "started",
            "on time",
            "late",
            "overdue now",
            "on-time rate",
        )
        for r in report.rules:
            table.add_row(
                *([r.period or ""] if per else []),
                r.workflow,
                r.org_unit or "—",
                r.rule,
                str(r.started),
                str(r.met_on_time),
                str(r.met_late),
                str(r.breached_open),
                f"{r.on_time_rate:.0%}",
            )
        out.print(table)
        breaches = Table("case", "rule", "due (Beijing)", "level", "state", title="Overdue now")
        for b in eng.breaches(workflow=workflow, org_unit=org_unit):
            breaches.add_row(
                b.case_number,
                b.rule,
                b.due_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
                str(b.level),
                b.state,
            )
        out.print(breaches)
        states = Table("workflow", "state", "median time in state", title="Time in state")
        for (wf, state), median in report.median_time_in_state.items():
            states.add_row(wf, state, str(median).split(".")[0])
        out.print(states)


@main.group()
def policies() -> None:
    """The policy directory the review checks against."""


@policies.command("import")
@url_option
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def policies_import(url: str, csv_file: Path) -> None:
    """Import (insert or replace) policies from a CSV file."""
    store = Store(url)
    try:
        store.upgrade()
        n = SqlPolicyDirectory(store).import_csv(csv_file)
        _c.out.print(f"imported {n} polic{'y' if n == 1 else 'ies'} from {csv_file}")
    finally:
        store.dispose()


if __name__ == "__main__":  # pragma: no cover
    main()


# --- notifications (issue #5) -----------------------------------------------------------
@main.group()
def outbox() -> None:
    """The outbox: notices waiting, delivered or in dead letter."""


@outbox.command("list")
@url_option
@click.option(
    "--status", type=click.Choice(["pending", "expanded", "delivered", "dead"]), help="Only these."
)
@click.option("--case", "case_ref", help="Only this case (id or case number).")
@click.option("--limit", default=50, show_default=True)
def outbox_list(url: str, status: str | None, case_ref: str | None, limit: int) -> None:
    """Notices and messages, oldest first, with their attempts and last error."""
    from baoflow.notifications.masking import mask_text

    with _engine(url) as eng:
        case_id = eng.get_case(case_ref).id if case_ref else None
        with eng.store.read() as tx:
            rows = tx.list_outbox(status=status, case_id=case_id, limit=limit)
        table = Table(
            "id", "case", "notice", "to", "via", "status", "tries", "next / done", "error"
        )
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
                when.astimezone(SHANGHAI).strftime("%m-%d %H:%M:%S") if when else "",
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
        with eng.store.write() as tx:
            chosen = list(ids) or [r.id for r in tx.list_outbox(status="dead")]
            n = tx.retry_outbox(chosen, eng.clock.now())
        if ids and n < len(ids):
            _c.err.print(
                f"{len(ids) - n} of the ids given were not in dead letter; left as they are"
            )
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
@click.option("--case", "case_ref", required=True, help="The case whose notice to show.")
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
        with eng.store.read() as tx:
            found = [
                r
                for r in tx.list_outbox(case_id=case.id)
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
        _c.out.print(rendered.subject, markup=False, highlight=False)
        _c.out.print()
        _c.out.print(rendered.text, markup=False, highlight=False)


@main.command()
@url_option
@click.argument("user")
@click.option("--unread", is_flag=True, help="Only what is unread.")
def inbox(url: str, user: str, unread: bool) -> None:
    """A user's in-app inbox, newest first."""
    with _engine(url) as eng:
        with eng.store.read() as tx:
            rows = tx.inbox(user, unread_only=unread)
        table = Table("when (Beijing)", "case", "subject")
        for r in rows:
            table.add_row(
                r.created_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
                r.case_number or "—",
                r.subject,
            )
        _c.out.print(table)
