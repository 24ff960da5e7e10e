"""Backups that round-trip (issue #15 item 5, docs/backups.md): cases exported as JSON
lines import back exactly — into SQLite or PostgreSQL, whichever wrote them — and an
import is all of the file or nothing of it; a SQLite database is copied online while
workers write."""

from __future__ import annotations

import json
import shlex
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import asdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from baoflow.engine import (
    SHANGHAI,
    BackupRefused,
    ChineseOfficialCalendar,
    Engine,
    FakeClock,
    GuardRefused,
    Hooks,
    ImportRefused,
    SqlPolicyDirectory,
    load_workflow,
    open_engine,
)
from baoflow.engine.store import export, normalise_url
from baoflow.engine.store import tables as t
from pydantic import BaseModel

from tests.conftest import AGENT, HANDLER, POLICIES, _pg_schema, pg_url, report
from tests.toy import TOY


class Opening(BaseModel):
    phone: str | None = None


# A toy with a search key of its own, so a case has case_keys rows.
KEYED = deepcopy(TOY)
KEYED["workflow"].update(open_schema="opening", index={"caller_phone": "phone"})


def engine_on(url: str, clock: FakeClock) -> Engine:
    eng = open_engine(url, clock=clock, calendar=ChineseOfficialCalendar())
    eng.register(load_workflow(KEYED, Hooks(schemas={"opening": Opening})))
    assert isinstance(eng.policies, SqlPolicyDirectory)
    eng.policies.add(POLICIES)
    return eng


@pytest.fixture
def source(db_url: str, clock: FakeClock) -> Iterator[Engine]:
    eng = engine_on(db_url, clock)
    yield eng
    eng.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def target_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A second fresh database, of either kind: with ``db_url`` every pair is tried."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'target.db'}"
        return
    yield from _pg_schema()


def a_busy_desk(eng: Engine, clock: FakeClock) -> list[str]:
    """Cases with something in every table a case has: search keys, history, deadlines
    warned and paused, timers fired and pending, notices and a message resolved from
    one, a refusal, idempotency keys of an opening and of a fire. Their numbers."""
    claim = eng.open_case("claim", report(), AGENT, idempotency_key="open-claim").case
    eng.fire(claim.id, "verify", HANDLER, idempotency_key="verify-claim")
    eng.fire(claim.id, "apply", HANDLER, {
        "applicant_name": "李娜", "applicant_id_number": "440304198001010041",
        "relationship": "self",
    })  # fmt: skip
    with pytest.raises(GuardRefused):
        eng.fire(claim.id, "complete_materials", HANDLER)  # kept as a refusal
    toy = eng.open_case("toy", {"phone": "13800000001"}, AGENT, idempotency_key="open-toy").case
    other = eng.open_case("toy", {"phone": "13800000002"}, AGENT).case
    clock.advance(timedelta(days=9))
    assert eng.run_due_timers().fired >= 2  # the 50% warnings
    eng.fire(toy.id, "wait", HANDLER, idempotency_key="wait-toy")
    eng.fire(other.id, "finish", HANDLER)
    # A notice resolved to an address, as notifications.delivery does it.
    with eng.store.write() as tx:
        notice = tx.outbox(toy.id)[0]
        tx.set_outbox([notice.id], status="expanded")
        row = {k: v for k, v in notice._asdict().items() if k not in ("id", "case_number")}
        tx.insert_outbox_rows([{
            **row, "key": f"{notice.key}>email:wang@example.com", "parent_id": notice.id,
            "channel": "email", "address": "wang@example.com", "address_name": "王芳",
            "locale": "zh-CN", "data_subject": False,
        }])  # fmt: skip
    return [claim.number, toy.number, other.number]


def without_header(lines: list[str]) -> list[str]:
    return lines[1:]


def what_it_reads(eng: Engine) -> dict[str, Any]:
    """Every case as the engine reads it back, by number, its id left out."""
    seen: dict[str, Any] = {}
    for case in eng.find_cases(limit=1000):
        seen[case.number] = {
            "case": {k: v for k, v in asdict(case).items() if k != "id"},
            "history": eng.history(case.number),
            "deadlines": eng.deadlines(case.number),
            "refusals": eng.refusals(case.number),
        }
    return seen


# --- the round trip --------------------------------------------------------------------
def test_an_export_imported_into_an_empty_database_exports_again_as_the_same_lines(
    source: Engine, clock: FakeClock, target_url: str
) -> None:
    numbers = a_busy_desk(source, clock)
    lines = list(source.export_cases())
    assert len(lines) == 1 + len(numbers)
    target = engine_on(target_url, clock)
    try:
        clock.advance(timedelta(seconds=1))  # so only the header's time differs
        done = target.import_cases(lines)
        assert done.cases == 3
        assert done.rows["history"] == sum(len(source.history(n)) for n in numbers)
        again = list(target.export_cases())
        assert without_header(again) == without_header(lines)
        assert json.loads(again[0])["exported_at"] != json.loads(lines[0])["exported_at"]
        assert what_it_reads(target) == what_it_reads(source)
        checked = target.verify_audit()  # the same hashes, chained by case number
        assert checked.verified and checked.rows == done.rows["history"]
    finally:
        target.close()


def test_a_line_carries_every_row_of_the_case_with_its_values_written_one_way(
    source: Engine, clock: FakeClock
) -> None:
    claim, toy, _ = a_busy_desk(source, clock)
    header, *cases = (json.loads(line) for line in source.export_cases())
    assert header == {
        "format": "baoflow-cases",
        "version": 1,
        "schema_revision": source.schema_revision(),
        "exported_at": "2026-05-15T01:00:00.000000+00:00",
    }
    doc = next(d for d in cases if d["case"]["number"] == toy)
    assert doc["case_keys"] == [{"key": "caller_phone", "value": "13800000001"}]
    assert [h["event"] for h in doc["history"]] == ["open", "deadline_warning", "wait"]
    assert doc["history"][0]["at"] == "2026-05-06T01:00:00.000000+00:00"  # UTC, microseconds
    assert doc["case_deadlines"][0]["status"] == "paused"
    assert {r["status"] for r in doc["timers"]} == {"fired", "paused"}
    # The ids the engine writes into text, as the number and the timer's place.
    notice, message = doc["outbox"]
    assert notice["key"] == f"timer:{toy}#0:deadline_warning:handler"
    assert message["parent"] == notice["key"] and message["channel"] == "email"
    results = {k["key"]: k["result"] for k in doc["idempotency_keys"]}
    assert results["open-toy"]["case"]["id"] is None and results["wait-toy"]["id"] is None
    claimed = next(d for d in cases if d["case"]["number"] == claim)
    assert claimed["refusals"][0]["event"] == "complete_materials"
    assert claimed["outbox"][0]["key"].startswith(f"case:{claim}:")


def test_some_cases_are_exported_by_number_or_id(source: Engine, clock: FakeClock) -> None:
    claim, _, other = a_busy_desk(source, clock)
    lines = list(source.export_cases([other, source.get_case(claim).id, other]))
    assert [json.loads(line)["case"]["number"] for line in lines[1:]] == [claim, other]


def test_an_imported_case_goes_on_under_its_new_ids(
    source: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    """A notice's key and an idempotent result name the case by its id: the import gives
    them the new ids, so a retried request answers with the case as it is here, and a
    case opened here later cannot collide with an imported notice."""
    _, toy, _ = a_busy_desk(source, clock)
    lines = list(source.export_cases([toy]))
    target = engine_on(f"sqlite:///{tmp_path / 'target.db'}", clock)
    try:
        first = [target.open_case("toy", {}, AGENT).case for _ in range(3)]  # ids 1-3 here
        target.import_cases(lines)
        moved = target.get_case(toy)
        assert moved.id != source.get_case(toy).id
        again = target.fire(moved.id, "wait", HANDLER, idempotency_key="wait-toy")
        assert again.id == moved.id and again.version == moved.version  # the first result
        resumed = target.fire(toy, "resume", HANDLER)
        assert resumed.state == "new"
        with target.store.engine.connect() as db:  # the notices' keys name its own timers
            timers = db.execute(sa.select(t.timers.c.id).where(t.timers.c.case_id == moved.id))
            keys = db.execute(sa.select(t.outbox.c.key).where(t.outbox.c.case_id == moved.id))
            warning = min(timers.scalars())  # the one that fired: the case's first timer
            assert {k.split(":deadline_warning")[0] for k in keys.scalars()} == {f"timer:{warning}"}
        assert toy not in [case.number for case in first]
    finally:
        target.close()


def test_a_case_opened_after_an_import_is_not_given_an_imported_number(
    source: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    for _ in range(3):
        source.open_case("toy", {}, AGENT)
    lines = list(source.export_cases())
    target = engine_on(f"sqlite:///{tmp_path / 'target.db'}", clock)
    try:
        target.import_cases(lines)
        assert target.open_case("toy", {}, AGENT).case.number == "TY-20260506-000004"
    finally:
        target.close()


# --- what a line carries: every column decided ----------------------------------------
#: The columns a line carries of each table. A column added to one of these tables
#: travels with no change to the code; add it here to say it should.
EXPORTED = {
    "cases": [
        "number", "workflow", "workflow_version", "state", "data", "version", "created_at",
        "updated_at", "policy_number", "insured_name", "id_number", "insurer_reference",
        "handler", "org_unit",
    ],
    "case_keys": ["key", "value"],
    "history": [
        "seq", "at", "actor", "event", "from_state", "to_state", "data", "notes", "hash",
    ],
    "case_deadlines": [
        "rule", "armed_seq", "started_at", "due_at", "status", "pause_reason",
        "paused_since", "paused_seconds", "warned", "breached_at", "level", "stopped_at",
        "calendar", "period", "provisional",
    ],
    "timers": [
        "rule", "armed_seq", "kind", "level", "due_at", "status", "claimed_by",
        "claimed_until", "fired_at", "outcome",
    ],
    "outbox": [
        "key", "seq", "template", "recipient", "org_unit", "context", "status", "attempts",
        "next_attempt_at", "last_error", "created_at", "delivered_at", "channel",
        "address", "address_name", "locale", "data_subject", "claimed_by",
        "claimed_until", "parent",
    ],
    "refusals": ["at", "actor", "event", "kind", "reasons"],
    "idempotency_keys": ["key", "event", "fingerprint", "result", "created_at"],
}  # fmt: skip


def test_every_column_of_a_case_table_is_carried_or_left_out_on_purpose(
    source: Engine, clock: FakeClock
) -> None:
    a_busy_desk(source, clock)
    docs = [json.loads(line) for line in list(source.export_cases())[1:]]
    for table in (t.cases, *export.CASE_TABLES):
        name = table.name
        carried = set(EXPORTED[name])
        left_out = set(export.LEFT_OUT[name])
        columns = {c.name for c in table.columns}
        undecided = columns - left_out - carried
        assert not undecided, f"{name}: say whether a line carries {sorted(undecided)}"
        assert not carried & left_out, f"{name}: {sorted(carried & left_out)} both ways"
        rows = [d["case"] for d in docs] if name == "cases" else [r for d in docs for r in d[name]]
        assert rows, f"the desk has no {name} row to check"
        assert all(set(r) == carried for r in rows), f"{name}: a row carries other columns"


def test_every_table_that_names_a_case_is_carried_or_left_out_on_purpose() -> None:
    naming = {
        table.name
        for table in t.metadata.sorted_tables
        if "case_id" in table.columns
        or any(fk.column.table is t.cases for fk in table.foreign_keys)
    }
    carried = {table.name for table in export.CASE_TABLES}
    assert naming - carried - set(export.NOT_CARRIED) == set()


# --- refused: nothing written -----------------------------------------------------------
@pytest.fixture
def an_export(source: Engine, clock: FakeClock) -> list[str]:
    a_busy_desk(source, clock)
    return list(source.export_cases())


@pytest.fixture
def empty(target_url: str, clock: FakeClock) -> Iterator[Engine]:
    """The database an import is refused into: each refusal on SQLite and PostgreSQL."""
    eng = engine_on(target_url, clock)
    yield eng
    eng.close()


def refused(eng: Engine, lines: list[str]) -> ImportRefused:
    with pytest.raises(ImportRefused) as caught:
        eng.import_cases(lines)
    assert eng.count_cases() == 0, "a refused import wrote something"
    return caught.value


def edited(lines: list[str], n: int, change: Any) -> list[str]:
    """``lines`` with line ``n`` (1: the header) parsed, changed and written back."""
    doc = json.loads(lines[n - 1])
    change(doc)
    return [*lines[: n - 1], json.dumps(doc, ensure_ascii=False), *lines[n:]]


def test_a_file_that_is_no_export_is_refused(empty: Engine) -> None:
    error = refused(empty, ['{"number": 1}'])
    assert error.reason == "format" and error.line == 1
    assert "not a baoflow case export" in str(error)
    assert refused(empty, []).reason == "format"


def test_another_version_of_the_format_is_refused(empty: Engine, an_export: list[str]) -> None:
    error = refused(empty, edited(an_export, 1, lambda h: h.update(version=2)))
    assert error.reason == "format" and "reads version 1" in str(error)


def test_an_export_of_another_schema_revision_is_refused(
    empty: Engine, an_export: list[str]
) -> None:
    error = refused(empty, edited(an_export, 1, lambda h: h.update(schema_revision="0019")))
    assert error.reason == "schema"
    assert str(error).startswith(
        f"line 1: the file was exported at schema revision '0019' and this database is at "
        f"'{empty.schema_revision()}'"
    )


def test_a_line_that_is_not_json_is_refused_with_its_number(
    empty: Engine, an_export: list[str]
) -> None:
    error = refused(empty, [*an_export[:2], "{not json", *an_export[2:]])
    assert error.reason == "malformed" and error.line == 3 and "not JSON" in str(error)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda d: d["history"][1].update(at="yesterday"), "history[1].at is 'yesterday'"),
        (lambda d: d["history"][0].update(at="2026-05-06T01:00:00"), "has no UTC offset"),
        (lambda d: d["history"][0].pop("event"), "history[0] has no event"),
        (lambda d: d["history"][0].update(colour="red"), "has colour, which history has no"),
        (lambda d: d["timers"][0].update(level="1"), "timers[0].level is '1': it is not an"),
        (lambda d: d["case"].update(state=None), "state None"),
        (lambda d: d.update(history={}), "history is not a list of rows"),
        (lambda d: d["outbox"][1].update(parent="nope"), "outbox[1].parent is 'nope'"),
    ],
)
def test_a_malformed_line_is_refused_saying_which_line_and_what_is_wrong(
    empty: Engine, an_export: list[str], change: Any, says: str
) -> None:
    toy_line = next(
        n
        for n, line in enumerate(an_export, 1)
        if json.loads(line).get("case", {}).get("workflow") == "toy"
    )
    error = refused(empty, edited(an_export, toy_line, change))
    assert error.line == toy_line and error.reason in ("malformed", "workflow")
    assert says in str(error)


def test_a_case_twice_in_the_file_is_refused(empty: Engine, an_export: list[str]) -> None:
    error = refused(empty, [*an_export, an_export[1]])
    assert error.line == len(an_export) + 1
    assert str(error).endswith("is on line 2 too")


def test_case_numbers_the_database_has_are_refused_every_one_and_nothing_imported(
    source: Engine, an_export: list[str], empty: Engine
) -> None:
    mine = [an_export[0], an_export[2]]
    empty.import_cases(mine)
    before = empty.count_cases()
    with pytest.raises(ImportRefused) as caught:
        empty.import_cases(an_export)
    error = caught.value
    taken = json.loads(an_export[2])["case"]["number"]
    assert error.reason == "exists" and error.numbers == (taken,)
    assert str(error) == (
        f"1 case(s) of the file are in this database already: {taken}; nothing was "
        "imported. Import only the others (export them with `baoflow export --case N` for "
        "each), or import into an empty database"
    )
    assert empty.count_cases() == before


def test_a_workflow_or_version_not_registered_here_is_refused(
    empty: Engine, an_export: list[str]
) -> None:
    unknown = refused(empty, edited(an_export, 2, lambda d: d["case"].update(workflow="pets")))
    assert unknown.reason == "workflow" and unknown.line == 2
    assert "no workflow 'pets'" in str(unknown)
    later = refused(empty, edited(an_export, 2, lambda d: d["case"].update(workflow_version=9)))
    assert later.reason == "workflow" and "version 9" in str(later)


def test_a_case_whose_history_was_changed_in_the_file_is_refused(
    empty: Engine, an_export: list[str]
) -> None:
    """The history's hashes travel with it (docs/audit.md): an edit does not verify."""

    def edit(doc: Any) -> None:
        doc["history"][1]["actor"]["name"] = "某人"

    error = refused(empty, edited(an_export, 2, edit))
    assert error.reason == "chain" and error.line == 2
    assert "row 2: its hash does not match" in str(error)
    assert "the file was changed after it was exported" in str(error)


def test_history_on_a_day_the_database_has_sealed_is_refused(
    an_export: list[str], tmp_path: Path, clock: FakeClock
) -> None:
    """Its rows would change that day's anchor: a database that sealed its days since
    takes no case with history on them."""
    eng = engine_on(f"sqlite:///{tmp_path / 'sealed.db'}", clock)
    try:
        eng.open_case("claim", report(), AGENT)
        clock.advance(timedelta(days=2))
        assert eng.seal_audit()
        with pytest.raises(ImportRefused) as caught:
            eng.import_cases(an_export)
        assert caught.value.reason == "sealed" and caught.value.line == 2
        assert "this database has sealed its days through" in str(caught.value)
        assert eng.count_cases() == 1 and eng.verify_audit().verified
    finally:
        eng.close()


# --- the SQLite file, copied online --------------------------------------------------------
def test_a_sqlite_backup_taken_while_events_are_fired_is_whole_and_consistent(
    tmp_path: Path,
) -> None:
    clock = FakeClock(datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI))
    eng = engine_on(f"sqlite:///{tmp_path / 'live.db'}", clock)
    cases = [eng.open_case("toy", {}, AGENT).case.id for _ in range(20)]
    stop = threading.Event()
    fired: list[int] = []
    errors: list[BaseException] = []

    def fire_away() -> None:
        try:
            while not stop.is_set():
                for case_id in cases:
                    state = eng.get_case(case_id).state
                    eng.fire(case_id, "wait" if state == "new" else "resume", HANDLER)
                    fired.append(case_id)
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    firer = threading.Thread(target=fire_away)
    firer.start()
    try:
        copies = []
        for i in range(5):
            while len(fired) < 40 * (i + 1) and not stop.is_set():
                stop.wait(0.01)
            copies.append(eng.backup_database(tmp_path / f"copy-{i}.db"))
    finally:
        stop.set()
        firer.join()
        eng.close()
    assert errors == []
    for done in copies:
        assert done.integrity == "ok" and done.size == Path(done.path).stat().st_size
        with sqlite3.connect(done.path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        copy = engine_on(f"sqlite:///{done.path}", clock)
        try:
            for case_id in cases:  # every case equals its history
                case, history = copy.get_case(case_id), copy.history(case_id)
                assert case.version == len(history) == history[-1].seq
                assert case.state == history[-1].to_state
        finally:
            copy.close()
    versions = [versions_in(c.path) for c in copies]
    assert versions == sorted(versions) and versions[0] < versions[-1]  # it went on meanwhile


def versions_in(path: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT sum(version) FROM cases").fetchone()[0])


def test_a_backup_never_overwrites_a_file(tmp_path: Path, clock: FakeClock) -> None:
    eng = engine_on(f"sqlite:///{tmp_path / 'live.db'}", clock)
    try:
        (tmp_path / "taken.db").write_text("keep me")
        with pytest.raises(BackupRefused) as caught:
            eng.backup_database(tmp_path / "taken.db")
        assert caught.value.reason == "exists"
        assert (tmp_path / "taken.db").read_text() == "keep me"
        with pytest.raises(BackupRefused) as caught:
            eng.backup_database(tmp_path / "no" / "such" / "folder.db")
        assert caught.value.reason == "folder"
    finally:
        eng.close()


@pytest.mark.postgres
def test_a_postgresql_database_is_backed_up_with_pg_dump(
    pg_only_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    eng = engine_on(pg_only_url, clock)
    try:
        with pytest.raises(BackupRefused) as caught:
            eng.backup_database(tmp_path / "copy.db")
        assert caught.value.reason == "postgresql"
        assert "pg_dump -Fc" in str(caught.value) and "+psycopg" not in str(caught.value)
        assert not (tmp_path / "copy.db").exists()
    finally:
        eng.close()


# --- PostgreSQL: pg_dump and pg_restore, as docs/backups.md says them -------------------
DOC = Path(__file__).parent.parent / "docs" / "backups.md"
PG_DUMP, PG_RESTORE = Path("/usr/bin/pg_dump"), Path("/usr/bin/pg_restore")


def the_page_says(program: str) -> list[list[str]]:
    """Each command line of docs/backups.md that runs ``program``, as words."""
    return [
        shlex.split(line)
        for line in DOC.read_text(encoding="utf-8").splitlines()
        if line.startswith(f"{program} ")
    ]


@contextmanager
def scratch_databases(n: int) -> Iterator[list[str]]:
    """``n`` new, empty databases on the test server (libpq URLs), dropped after: never
    the shared ``test`` database."""
    base = sa.engine.make_url(pg_url() or "")
    admin = sa.create_engine(normalise_url(str(base)), isolation_level="AUTOCOMMIT")
    names = [f"bk_{uuid.uuid4().hex[:12]}" for _ in range(n)]
    try:
        with admin.connect() as db:
            for name in names:
                db.exec_driver_sql(f"CREATE DATABASE {name}")
        yield [base.set(database=name).render_as_string(hide_password=False) for name in names]
    finally:
        with admin.connect() as db:
            for name in names:
                db.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def run(words: list[str], **fill: str) -> None:
    """Run a command of the page with its placeholders filled in."""
    given = [fill.get(w, w) for w in words]
    given[0] = str({"pg_dump": PG_DUMP, "pg_restore": PG_RESTORE}[given[0]])
    done = subprocess.run(given, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (given, done.stderr)


@pytest.mark.postgres
def test_pg_dump_and_pg_restore_as_the_page_says_give_back_the_same_cases(
    clock: FakeClock, tmp_path: Path
) -> None:
    if not (PG_DUMP.exists() and PG_RESTORE.exists()):
        pytest.skip("/usr/bin/pg_dump or /usr/bin/pg_restore is not installed")
    (dump,) = the_page_says("pg_dump")
    fresh, clean = the_page_says("pg_restore")
    assert "-Fc" in dump and "--clean" not in fresh and {"--clean", "--if-exists"} <= set(clean)
    backup = str(tmp_path / "baoflow.dump")
    with scratch_databases(2) as (live, spare):
        eng = engine_on(live, clock)
        a_busy_desk(eng, clock)
        before, lines = what_it_reads(eng), list(eng.export_cases())
        run(dump, **{"$BAOFLOW_URL": live, "baoflow.dump": backup})  # with the engine open
        eng.open_case("toy", {}, AGENT)  # written after the dump
        eng.close()

        run(fresh, **{"$FRESH_URL": spare, "baoflow.dump": backup})
        restored = engine_on(spare, clock)
        try:
            assert what_it_reads(restored) == before
            assert without_header(list(restored.export_cases())) == without_header(lines)
        finally:
            restored.close()

        run(clean, **{"$BAOFLOW_URL": live, "baoflow.dump": backup})  # workers stopped
        again = engine_on(live, clock)
        try:
            assert what_it_reads(again) == before  # the case opened since is gone
            assert again.open_case("toy", {}, AGENT).case.number == "TY-20260515-000001"
        finally:
            again.close()


# --- values: one text for every column type -----------------------------------------------
@pytest.mark.parametrize(
    ("column", "value", "text"),
    [
        (t.history.c.at, datetime(2026, 5, 6, 9, 0, 0, 5, tzinfo=SHANGHAI),
         "2026-05-06T01:00:00.000005+00:00"),
        (t.policies.c.start_date, date(2026, 5, 6), "2026-05-06"),
        (t.policies.c.sum_insured, Decimal("800000.00"), "800000.00"),
        (t.case_deadlines.c.paused_seconds, 1.5, 1.5),
        (t.calendar_imports.c.override, True, True),
        (t.history.c.seq, 7, 7),
        (t.history.c.data, {"b": [1, None], "a": "李"}, {"b": [1, None], "a": "李"}),
        (t.history.c.event, "verify", "verify"),
    ],
)  # fmt: skip
def test_a_value_of_any_column_type_is_written_one_way_and_read_back(
    column: Any, value: Any, text: Any
) -> None:
    """Columns a case table may gain later (a date, a decimal) travel as well."""
    assert export._encode(column, value) == text
    assert export._decode(column, text, "x") == value


def test_a_text_too_long_for_its_column_is_refused_on_sqlite_as_on_postgresql() -> None:
    with pytest.raises(ImportRefused, match="it is 65 characters long, the column holds 64"):
        export._decode(t.timers.c.rule, "r" * 65, "timers[0].rule")
