"""The one loader of the benchmarks: a desk of N cases as the engine would have written
them, loaded set-based in seconds, not one ``fire()`` at a time.

Run from the project root (prints what it loaded and how fast)::

    .venv/bin/python -m bench.load --cases 100000                     # SQLite, a temp file
    .venv/bin/python -m bench.load --cases 1000000 --url postgresql://postgres@127.0.0.1:5432/test

How: every (workflow, state) of the four workflows is reached by a real case driven
through the engine — opened, assigned and fired event by event, as a desk would — at
each of a few ages (opened today, 1, 3, 8, 20 and 45 days ago; the timer worker run as
the clock moves on, so the older ones are warned, breached and escalated by the engine
itself, with their history rows). Those real cases are the sources. Each source is then
copied with one ``INSERT … SELECT`` per table (``generate_series`` on PostgreSQL, a
recursive CTE on SQLite): its case row, every history row, every deadline row and every
timer, its own search keys (``case_keys``) and its policy. So the data is the engine's:
the same JSON documents, the same rows per state, the same pending timers. Each copy
gets ids after the last case, a unique number (the source's, ``-`` and its id), its own
policy number, identity number (valid GB 11643 check digit), phone and insurer
reference, written into its data document and the search-key columns alike, one of
four org units (``id % 4``) and one of 20 handlers (``h0`` … ``h19``, ``id % 20``).

The mix: claims 700 per mille, complaints, surrenders and endorsements 100 each; within
each workflow the states as a desk's year has them (``MIX``: mostly closed, the rest
spread over the open states), and within each state 88% opened today and the rest over
the older ages (``AGES``). Not copied: the outbox (the notices a desk has delivered;
no benchmark reads them). Then ``settle``: ``ANALYZE`` (``VACUUM ANALYZE`` on
PostgreSQL), what autovacuum would have done by the time anyone looks.

``load(engine, n)`` is what ``bench/scale.py``, ``bench/diagram.py`` and
``bench/dashboard.py`` call; ``clone(sql, source, n, …)`` copies one case (as
``bench/timers.py`` copies its claims), ``add_timers`` adds not-due pending timers.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from baoflow.engine import (
    SHANGHAI,
    Actor,
    Case,
    ChineseOfficialCalendar,
    Engine,
    FakeClock,
    open_engine,
)
from baoflow.engine.store import normalise_url
from baoflow.engine.store import tables as t
from baoflow.workflows.examples import ID_ZHANG, POLICIES, report
from sqlalchemy.pool import NullPool

#: The loaded desk's now: the newest sources are driven up to it, the worker has run.
OPENED = datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI)
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
UNITS = ("SH", "BJ", "GZ", "SZ")
HANDLERS = 20

AGENT = Actor("a01", "李静", roles=("service_agent",), org_unit="SH")
HANDLER = Actor("h01", "王芳", roles=("handler",), org_unit="SH")
SUPERVISOR = Actor("s01", "陈刚", roles=("supervisor",), org_unit="SH")

#: Workflows per mille of the cases.
WORKFLOWS = (("claim", 700), ("complaint", 100), ("surrender", 100), ("endorsement", 100))
#: Per workflow, its states per mille of its cases.
MIX: dict[str, tuple[tuple[str, int], ...]] = {
    "claim": (
        ("closed", 700),
        ("withdrawn", 100),
        ("handed_over", 40),
        ("materials_complete", 30),
        ("applied", 30),
        ("reported", 30),
        ("verified", 20),
        ("awaiting_materials", 15),
        ("rejected", 15),
        ("decided", 10),
        ("unmatched", 5),
        ("identity_pending", 5),
    ),
    "complaint": (
        ("closed", 700),
        ("withdrawn", 80),
        ("investigating", 60),
        ("accepted", 40),
        ("proposed", 30),
        ("replied", 30),
        ("in_mediation", 20),
        ("approved", 20),
        ("in_review", 20),
    ),
    "surrender": (("refunded", 750), ("referred", 100), ("withdrawn", 100), ("requested", 50)),
    "endorsement": (
        ("endorsed", 700),
        ("requested", 100),
        ("declined", 50),
        ("withdrawn", 50),
        ("application_received", 50),
        ("submitted", 50),
    ),
}
#: How long before OPENED a source was opened, per mille of its state's cases.
AGES: tuple[tuple[timedelta, int], ...] = (
    (timedelta(days=45), 15),
    (timedelta(days=20), 15),
    (timedelta(days=8), 20),
    (timedelta(days=3), 30),
    (timedelta(days=1), 40),
    (timedelta(0), 880),
)
STEP = timedelta(minutes=1)  # the clock between two events of one source


# --- the real cases ---------------------------------------------------------------------
Payload = Callable[[Engine, Case], dict[str, Any] | None]


def _now(eng: Engine) -> str:
    return eng.clock.now().isoformat()


#: (workflow, event) -> who fires it and with what.
EVENTS: dict[tuple[str, str], tuple[Actor, Payload]] = {
    **{
        (w, "assign"): (SUPERVISOR, lambda e, c: {"handler_id": "h01", "handler_name": "王芳"})
        for w in ("claim", "surrender", "endorsement")
    },
    **{
        (w, "withdraw"): (HANDLER, lambda e, c: {"reason": "客户撤回"})
        for w in ("claim", "complaint", "surrender", "endorsement")
    },
    ("claim", "verify"): (HANDLER, lambda e, c: {}),
    ("claim", "apply"): (
        HANDLER,
        lambda e, c: {
            "applicant_name": "张伟",
            "applicant_id_number": ID_ZHANG,
            "relationship": "self",
        },
    ),
    ("claim", "receive_materials"): (
        HANDLER,
        lambda e, c: {"items": c.data["materials"]["required"]},
    ),
    ("claim", "complete_materials"): (HANDLER, lambda e, c: {}),
    ("claim", "hand_over"): (
        HANDLER,
        lambda e, c: {"insurer": "中国平安财产保险", "insurer_code": "pingan"},
    ),
    ("claim", "insurer_requests_materials"): (
        HANDLER,
        lambda e, c: {"items": ["medical_records"]},
    ),
    ("claim", "insurer_decides"): (
        HANDLER,
        lambda e, c: {"outcome": "approved", "amount": "8000.00", "decided_at": _now(e)},
    ),
    ("claim", "insurer_pays"): (
        HANDLER,
        lambda e, c: {"amount": "8000.00", "paid_at": _now(e)},
    ),
    ("claim", "reject"): (
        HANDLER,
        lambda e, c: {
            "reasons": ["outside_policy_period"],
            "notice": "您的保单已于2024年12月31日满期，出险日期不在保险期间内，不予受理。",
        },
    ),
    ("complaint", "assign"): (
        SUPERVISOR,
        lambda e, c: {"handler_id": "h01", "handler_name": "王芳"},
    ),
    ("complaint", "mediate"): (
        HANDLER,
        lambda e, c: {"kind": "mediation", "note": "申请调解委员会调解"},
    ),
    ("complaint", "propose"): (
        HANDLER,
        lambda e, c: {"text": "核实后补正并致歉", "compensation": "0"},
    ),
    ("complaint", "approve"): (SUPERVISOR, lambda e, c: None),
    ("complaint", "reply"): (HANDLER, lambda e, c: {"text": "经核实已处理，谨致歉意"}),
    ("complaint", "request_review"): (AGENT, lambda e, c: {"reason": "对处理结果不满意"}),
    ("complaint", "record_improvement"): (
        HANDLER,
        lambda e, c: {
            "root_cause": "流程衔接不畅",
            "corrective_action": "纳入周例会跟踪",
            "done": True,
        },
    ),
    ("complaint", "close"): (SUPERVISOR, lambda e, c: {"satisfaction": "satisfied"}),
    ("surrender", "refer"): (HANDLER, lambda e, c: {"insurer": "中国人寿上海分公司"}),
    ("surrender", "confirm_refund"): (
        HANDLER,
        lambda e, c: {"amount": "12345.60", "confirmed_at": _now(e)},
    ),
    ("endorsement", "receive_application"): (
        HANDLER,
        lambda e, c: {"form_number": f"PG-F-{c.id:06d}", "signed_by_policyholder": True},
    ),
    ("endorsement", "submit"): (HANDLER, lambda e, c: {"insurer": "中国人寿上海分公司"}),
    ("endorsement", "confirm"): (
        HANDLER,
        lambda e, c: {"endorsement_number": f"PD-{c.id:06d}"},
    ),
    ("endorsement", "decline"): (HANDLER, lambda e, c: {"reason": "受益人变更需被保险人书面同意"}),
}

_CLAIM = ["assign", "verify", "apply", "receive_materials", "complete_materials"]
_COMPLAINT = ["assign", "propose", "approve", "reply"]
#: Per workflow and state: how the source is opened (a variant of the opening data)
#: and the events that bring it there.
ROUTES: dict[str, dict[str, tuple[str, list[str]]]] = {
    "claim": {
        "reported": ("report", ["assign"]),
        "unmatched": ("unknown policy", ["assign"]),
        "identity_pending": ("shared name", ["assign"]),
        "verified": ("report", _CLAIM[:2]),
        "applied": ("report", _CLAIM[:4]),
        "materials_complete": ("report", _CLAIM),
        "handed_over": ("report", [*_CLAIM, "hand_over"]),
        "awaiting_materials": ("report", [*_CLAIM, "hand_over", "insurer_requests_materials"]),
        "decided": ("report", [*_CLAIM, "hand_over", "insurer_decides"]),
        "closed": ("report", [*_CLAIM, "hand_over", "insurer_decides", "insurer_pays"]),
        "rejected": ("expired policy", ["assign", "reject"]),
        "withdrawn": ("report", [*_CLAIM[:4], "withdraw"]),
    },
    "complaint": {
        "accepted": ("registration", []),
        "investigating": ("registration", ["assign"]),
        "in_mediation": ("registration", ["assign", "mediate"]),
        "proposed": ("registration", _COMPLAINT[:2]),
        "approved": ("registration", _COMPLAINT[:3]),
        "replied": ("registration", _COMPLAINT),
        "in_review": ("registration", [*_COMPLAINT, "request_review"]),
        "closed": ("registration", [*_COMPLAINT, "record_improvement", "close"]),
        "withdrawn": ("registration", ["assign", "withdraw"]),
    },
    "surrender": {
        "requested": ("request", ["assign"]),
        "referred": ("request", ["assign", "refer"]),
        "refunded": ("request", ["assign", "refer", "confirm_refund"]),
        "withdrawn": ("request", ["assign", "withdraw"]),
    },
    "endorsement": {
        "requested": ("request", ["assign"]),
        "application_received": ("request", ["assign", "receive_application"]),
        "submitted": ("request", ["assign", "receive_application", "submit"]),
        "endorsed": ("request", ["assign", "receive_application", "submit", "confirm"]),
        "declined": ("request", ["assign", "receive_application", "submit", "decline"]),
        "withdrawn": ("request", ["assign", "withdraw"]),
    },
}


def opening(workflow: str, variant: str, serial: int, now: datetime) -> dict[str, Any]:
    """The data a case of ``workflow`` is opened with; ``serial`` (0, 1, … per source)
    puts each claim's incident on a day of its own before the oldest source: the intake
    returns an earlier report of the same policy and incident day instead of opening a
    case."""
    oldest = OPENED - AGES[0][0]
    incident = min(now, oldest - timedelta(days=serial, hours=2)).isoformat()
    if workflow == "claim":
        policy: dict[str, Any] = {"number": "P-ACC-001", "insured_name": "张伟"}
        extra: dict[str, Any] = {}
        if variant == "unknown policy":
            policy = {"number": "P-NOBODY-9", "product_name": "某某险", "insured_name": "孙丽"}
        elif variant == "shared name":
            policy = {"number": None, "product_name": "综合意外险", "insured_name": "张伟"}
        elif variant == "expired policy":
            policy = {"number": "P-OLD-001", "product_name": "家庭财产险", "insured_name": "赵强"}
            extra = {"cause": "fire", "injury": "none", "hospital": None, "property_damage": True}
        return report(policy=policy, incident={"time": incident, "cause": "accident", **extra})
    if workflow == "complaint":
        return {
            "channel": "phone",
            "complainant": {"name": "赵强", "phone": "13700001111"},
            "concerns": {"policy_number": "P-OLD-001"},
            "category": "claim",
            "request": "理赔款迟迟未到账，要求尽快支付并说明原因",
            "about_staff": ["h02"],
        }
    life = {"number": "P-LIFE-001", "product_name": "终身寿险", "insured_name": "李娜"}
    if workflow == "surrender":
        return {
            "channel": "phone",
            "policy": life,
            "customer": {"name": "李娜", "phone": "13912345678"},
            "reason": {"code": "financial", "detail": "家庭开支紧张，无力继续缴费"},
        }
    return {
        "channel": "in_person",
        "policy": life,
        "requester": {"name": "李娜", "phone": "13912345678", "relationship": "本人"},
        "changes": [{"kind": "contact", "address": "上海市徐汇区漕溪北路88号"}],
    }


def drive(eng: Engine, workflow: str, state: str, serial: int = 0) -> Case:
    """One real case of ``workflow`` brought to ``state`` through the engine, an event
    every ``STEP`` on the clock (which must be a ``FakeClock``)."""
    clock = eng.clock
    assert isinstance(clock, FakeClock)
    variant, events = ROUTES[workflow][state]
    case = eng.open_case(workflow, opening(workflow, variant, serial, clock.now()), AGENT).case
    for event in events:
        clock.advance(STEP)
        actor, payload = EVENTS[(workflow, event)]
        case = eng.fire(case.id, event, actor, payload(eng, case))
    if case.state != state:
        raise RuntimeError(f"{workflow} source reached {case.state}, not {state}")
    return case


# --- set-based copies -------------------------------------------------------------------
@dataclass(frozen=True)
class Dialect:
    """The few SQL spellings that differ between PostgreSQL and SQLite."""

    pg: bool

    def ids(self) -> str:
        """Rows ``g.k`` = :base + 1 … :base + :n (the copies' case ids)."""
        if self.pg:
            return "(SELECT CAST(:base AS BIGINT) + x AS k FROM generate_series(1, :n) AS r(x))"
        return (
            "(WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < :n) "
            "SELECT :base + x AS k FROM r)"
        )

    def pad(self, expr: str, width: int) -> str:
        if self.pg:
            return f"lpad(CAST({expr} AS TEXT), {width}, '0')"
        return f"substr('{'0' * width}' || ({expr}), -{width}, {width})"

    def set_json(self, doc: str, values: Mapping[str, str]) -> str:
        """``doc`` with each dotted path set to the (text) SQL expression given."""
        for path, expr in values.items():
            if self.pg:
                doc = f"jsonb_set({doc}, '{{{path.replace('.', ',')}}}', to_jsonb({expr}))"
        if not self.pg and values:
            pairs = ", ".join(f"'$.{path}', {expr}" for path, expr in values.items())
            doc = f"json_set({doc}, {pairs})"
        return doc

    def get_json(self, doc: str, path: str) -> str:
        if self.pg:
            return f"{doc} #>> '{{{path.replace('.', ',')}}}'"
        return f"json_extract({doc}, '$.{path}')"


def _id_number(d: Dialect, k: str) -> str:
    """A valid resident identity number (GB 11643) of its own for each ``k`` < 16.8
    million: region 310104, born 19YY-MM-DD (YY 50-99, DD 1-28), sequence ``k % 1000``,
    and the check character the first 17 digits give."""
    seq, r = f"({k}) % 1000", f"(({k}) / 1000)"
    dd, mm, yy = f"({r} % 28 + 1)", f"(({r} / 28) % 12 + 1)", f"(50 + ({r} / 336) % 50)"
    digits = [
        (f"{yy} / 10", 6),
        (f"{yy} % 10", 3),
        (f"{mm} / 10", 7),
        (f"{mm} % 10", 9),
        (f"{dd} / 10", 10),
        (f"{dd} % 10", 5),
        (f"{seq} / 100", 8),
        (f"({seq} / 10) % 10", 4),
        (f"{seq} % 10", 2),
    ]
    # 3,1,0,1,0,4,1,9 weighted 7,9,10,5,8,4,2,1 = 62
    total = " + ".join(["62", *(f"({e}) * {w}" for e, w in digits)])
    check = f"substr('10X98765432', CAST(({total}) % 11 + 1 AS INTEGER), 1)"
    return (
        f"'31010419' || {d.pad(yy, 2)} || {d.pad(mm, 2)} || {d.pad(dd, 2)} || "
        f"{d.pad(seq, 3)} || {check}"
    )


def _key_values(d: Dialect, k: str) -> dict[str, str]:
    """Each search key's value for the copy with case id ``k``: its own policy, person,
    phone and insurer reference; one of ``HANDLERS`` handlers."""
    return {
        "policy_number": f"s.policy_number || '-' || {k}",
        "id_number": _id_number(d, k),
        "insurer_reference": f"s.insurer_reference || '-' || {k}",
        "handler": f"'h' || ({k} % {HANDLERS})",
        "phone": f"'1' || {d.pad(f'{k} % 10000000000', 10)}",
    }


_CASE_COLUMNS = ("policy_number", "insured_name", "id_number", "insurer_reference", "handler")


def _copy_rows(
    table: sa.Table, alias: str, values: Mapping[str, str] | None = None, where: str | None = None
) -> sa.TextClause:
    """Copy every row of ``table`` of the source case (``:src``) to each copy (ids
    ``:lo`` … ``:hi``): every column as it is (a surrogate ``id`` left to the database)
    but those given in ``values`` (SQL over ``c.``, the copy, and ``alias``); ``where``:
    only the source's rows it holds for."""
    columns = [c.name for c in table.columns if c.name not in ("id", "case_id")]
    picked = [(values or {}).get(c, f"{alias}.{c}") for c in columns]
    return sa.text(
        f"INSERT INTO {table.name} (case_id, {', '.join(columns)}) "
        f"SELECT c.id, {', '.join(picked)} FROM cases c JOIN {table.name} {alias} "
        f"ON {alias}.case_id = :src WHERE c.id BETWEEN :lo AND :hi"
        + (f" AND {where}" if where else "")
    )


@dataclass
class Copied:
    """What ``clone`` wrote: the copies' case ids and the rows per table."""

    ids: range
    rows: dict[str, int] = field(default_factory=dict)


def clone(
    sql: sa.Engine,
    source: int,
    n: int,
    *,
    index: Mapping[str, str] | None = None,
    units: Sequence[str] | None = UNITS,
    timers: str | None = None,
    timer_due: str | None = None,
) -> Copied:
    """``n`` copies of case ``source`` with its history, deadline rows, timers and own
    search keys, in one transaction, each table one ``INSERT … SELECT``; ids after the
    last case.

    Args:
        index: the workflow's search keys (``definition.index``): each copy gets keys of
            its own (``_key_values``), in its data document, its columns, its
            ``case_keys`` rows and a copy of its policy. None: the source's keys as
            they are, and no policy copied.
        units: the org units the copies are spread over (by id); None: the source's.
        timers: an SQL condition on the source's timers (``tm.``): only those copied.
        timer_due: an SQL expression for the copied timers' ``due_at`` (``c.``, ``tm.``).
    """
    d = Dialect(sql.dialect.name == "postgresql")
    with sql.begin() as conn:
        run = conn.execute
        src = run(sa.text("SELECT * FROM cases WHERE id = :src"), {"src": source}).mappings().one()
        keys = run(
            sa.text("SELECT key, value FROM case_keys WHERE case_id = :src"), {"src": source}
        )
        own: dict[str, str] = {key: value for key, value in keys}
        base = int(run(sa.text("SELECT max(id) FROM cases")).scalar_one())
        ids = range(base + 1, base + n + 1)
        params = {"src": source, "n": n, "base": base, "lo": ids.start, "hi": ids.stop - 1}
        values = _key_values(d, "g.k")
        columns = {c: f"s.{c}" for c in _CASE_COLUMNS}
        in_data: dict[str, str] = {}
        for key, path in (index or {}).items():
            present = src[key] if key in columns else own.get(key)
            if present is None or key not in values:
                continue
            in_data[path] = values[key]
            if key in columns:
                columns[key] = values[key]
        unit = (
            "CASE g.k % {} {} END".format(
                len(units), " ".join(f"WHEN {i} THEN '{u}'" for i, u in enumerate(units))
            )
            if units
            else "s.org_unit"
        )
        rows = {}
        rows["cases"] = run(
            sa.text(
                f"""
                INSERT INTO cases (id, number, workflow, workflow_version, state, data, version,
                                   created_at, updated_at, org_unit, {", ".join(columns)})
                SELECT g.k, s.number || '-' || {d.pad("g.k", 7)}, s.workflow,
                       s.workflow_version, s.state, {d.set_json("s.data", in_data)}, s.version,
                       s.created_at, s.updated_at, {unit}, {", ".join(columns.values())}
                FROM cases s CROSS JOIN {d.ids()} AS g
                WHERE s.id = :src
                """
            ),
            params,
        ).rowcount
        rows["history"] = run(_copy_rows(t.history, "h"), params).rowcount
        rows["case_deadlines"] = run(_copy_rows(t.case_deadlines, "dl"), params).rowcount
        due = {"due_at": timer_due} if timer_due else {}
        rows["timers"] = run(_copy_rows(t.timers, "tm", due, timers), params).rowcount
        # an own key's value is read back from the copy's data, where it was just set
        value = {}
        if own and index:
            whens = " ".join(f"WHEN '{key}' THEN {d.get_json('c.data', index[key])}" for key in own)
            value = {"value": f"CASE k.key {whens} ELSE k.value END"}
        rows["case_keys"] = run(_copy_rows(t.case_keys, "k", value), params).rowcount
        rows["policies"] = 0
        if columns["policy_number"] != "s.policy_number":  # a policy of its own each
            insured = (
                "c.id_number" if columns["id_number"] != "s.id_number" else "p.insured_id_number"
            )
            rows["policies"] = run(
                sa.text(
                    f"""
                    INSERT INTO policies (number, product_name, product_line, insured_name,
                                          insured_id_number, start_date, end_date, coverages,
                                          sum_insured, beneficiaries)
                    SELECT c.policy_number, p.product_name, p.product_line, p.insured_name,
                           {insured}, p.start_date, p.end_date, p.coverages, p.sum_insured,
                           p.beneficiaries
                    FROM cases c JOIN policies p ON p.number = :policy
                    WHERE c.id BETWEEN :lo AND :hi
                    """
                ),
                {**params, "policy": src["policy_number"]},
            ).rowcount
        if d.pg:
            run(sa.text("SELECT setval(pg_get_serial_sequence('cases', 'id'), :hi)"), params)
    return Copied(ids, rows)


def add_timers(sql: sa.Engine, cases: range, n: int, start: datetime) -> None:
    """``n`` pending timers that are not due, one a second from ``start``, spread over
    ``cases`` (``hand_over`` warnings of instances the cases do not have: a worker that
    reached them would skip them) — the timer table of a desk with far more pending
    work than its cases' own deadlines."""
    d = Dialect(sql.dialect.name == "postgresql")
    due = (
        "CAST(:start AS timestamptz) + g.k * interval '1 second'"
        if d.pg
        else "strftime('%Y-%m-%d %H:%M:%S', :start, '+' || g.k || ' seconds') || '.000000'"
    )
    at = start if d.pg else start.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    with sql.begin() as conn:
        conn.execute(
            sa.text(
                f"""
                INSERT INTO timers (case_id, rule, armed_seq, kind, level, due_at, status)
                SELECT :first + g.k % :cases, 'hand_over', 1000000 + g.k, 'warning', 1, {due},
                       'pending'
                FROM {d.ids()} AS g
                """
            ),
            {"first": cases.start, "cases": len(cases), "n": n, "base": 0, "start": at},
        )


def settle(sql: sa.Engine) -> None:
    """What a live database has after a bulk write: statistics (``ANALYZE``) and, on
    PostgreSQL, the visibility map (``VACUUM``) that lets a count read only its index —
    autovacuum's work, done at once so that no measurement depends on when it runs."""
    pg = sql.dialect.name == "postgresql"
    with sql.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if pg else "ANALYZE")


@contextmanager
def pg_schema(base: str, tag: str = "load") -> Iterator[str]:
    """A private schema on the PostgreSQL at ``base``: its URL (``search_path`` in the
    ``options``), the schema dropped afterwards."""
    base = normalise_url(base)
    schema = f"bench_{tag}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, poolclass=NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


# --- the whole desk ---------------------------------------------------------------------
@dataclass
class Loaded:
    """A loaded desk: how many cases, the rows written per table, and how long it took."""

    cases: int
    sources: int
    rows: dict[str, int]
    drive_s: float
    copy_s: float
    settle_s: float
    pending_timers: int
    ids: range

    @property
    def rows_per_s(self) -> float:
        return sum(self.rows.values()) / self.copy_s if self.copy_s else 0.0


def shares(n: int) -> dict[tuple[timedelta, str, str], int]:
    """How many of ``n`` cases each (age, workflow, state) gets: the product of the
    three mixes, rounded by largest remainder so they add up to ``n``."""
    exact = {
        (age, workflow, state): n * w / 1000 * s / 1000 * a / 1000
        for workflow, w in WORKFLOWS
        for state, s in MIX[workflow]
        for age, a in AGES
    }
    counts = {key: int(v) for key, v in exact.items()}
    left = n - sum(counts.values())
    for key in sorted(exact, key=lambda k: counts[k] - exact[k])[:left]:
        counts[key] += 1
    return {key: c for key, c in counts.items() if c}


def open_desk(url: str) -> tuple[Engine, FakeClock]:
    """An engine on ``url`` whose clock stands before the oldest source, for ``load``."""
    clock = FakeClock(OPENED - AGES[0][0] - timedelta(days=1))
    return open_engine(url, clock=clock, calendar=ChineseOfficialCalendar()), clock


def load(eng: Engine, n: int, *, timers: int = 0) -> Loaded:
    """``n`` cases on ``eng``'s database (``eng.clock`` a ``FakeClock`` not after the
    oldest age's start; it ends at ``OPENED``), and pending timers topped up to
    ``timers`` with ``add_timers`` when the cases' own are fewer."""
    clock = eng.clock
    assert isinstance(clock, FakeClock)
    sql = eng.store.engine
    eng.policies.add(POLICIES)  # type: ignore[attr-defined]
    plan = shares(n)
    t0 = time.perf_counter()
    sources: dict[tuple[timedelta, str, str], Case] = {}
    serial = 0
    for age, _ in AGES:  # the oldest first: the clock only moves on
        group = [(w, s) for (a, w, s) in plan if a == age]
        span = STEP * sum(len(ROUTES[w][s][1]) + 1 for w, s in group)
        clock.set(max(clock.now(), OPENED - age - span))
        _run_timers(eng)
        for workflow, state in group:
            serial += workflow == "claim"
            sources[(age, workflow, state)] = drive(eng, workflow, state, serial)
    clock.set(max(clock.now(), OPENED))
    _run_timers(eng)
    drive_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows: dict[str, int] = {}
    last = range(0)
    for key, case in sources.items():
        if plan[key] > 1:
            index = eng.workflow(case.workflow, case.workflow_version).index
            copied = clone(sql, case.id, plan[key] - 1, index=index)
            last = copied.ids
            for table, k in copied.rows.items():
                rows[table] = rows.get(table, 0) + k
    with sql.connect() as conn:
        pending = int(
            conn.execute(
                sa.text("SELECT count(*) FROM timers WHERE status = 'pending'")
            ).scalar_one()
        )
        first = int(conn.execute(sa.text("SELECT min(id) FROM cases")).scalar_one())
    ids = range(first, last.stop or first + len(sources))
    if timers > pending:
        add_timers(sql, ids, timers - pending, OPENED + timedelta(days=90))
        rows["timers (added, not due)"] = timers - pending
        pending = timers
    copy_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    settle(sql)
    return Loaded(
        cases=sum(plan.values()),
        sources=len(sources),
        rows=rows,
        drive_s=drive_s,
        copy_s=copy_s,
        settle_s=time.perf_counter() - t0,
        pending_timers=pending,
        ids=ids,
    )


def _run_timers(eng: Engine) -> None:
    """Every timer due at the clock's now fired, as the worker would have."""
    while eng.run_due_timers().fired:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--timers", type=int, default=0, help="pending timers at least")
    parser.add_argument("--url", default=None, help="PostgreSQL (a private schema); default SQLite")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        pg_schema(args.url) if args.url else _nothing(f"sqlite:///{Path(tmp) / 'load.db'}") as url,
    ):
        eng, _ = open_desk(url)
        try:
            loaded = load(eng, args.cases, timers=args.timers)
        finally:
            eng.close()
    report_loaded(loaded)


def report_loaded(loaded: Loaded) -> None:
    total = sum(loaded.rows.values())
    print(
        f"loaded {loaded.cases:,} cases from {loaded.sources} real ones "
        f"(driven in {loaded.drive_s:.1f} s): {total:,} rows in {loaded.copy_s:.1f} s "
        f"({loaded.rows_per_s:,.0f} rows/s), settled in {loaded.settle_s:.1f} s; "
        f"{loaded.pending_timers:,} pending timers"
    )
    for table, k in loaded.rows.items():
        print(f"  {table}: {k:,}")


@contextmanager
def _nothing(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    main()
