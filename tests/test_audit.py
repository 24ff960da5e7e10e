"""The tamper-evident history (issue #15 item 4): each history row's hash chains to the
row before it in its case, each sealed day's anchor to the day before; a row changed,
removed or put in another's place directly in the database is reported, on SQLite and
PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from baoflow.engine import CaseNotFound, Engine, FakeClock, open_engine
from baoflow.engine.audit import StoredRow, row_hash, verify_case, written_row_hash
from baoflow.engine.auditor import GRACE
from baoflow.engine.clock import SHANGHAI
from baoflow.engine.store import Store
from baoflow.engine.store.hot import json_dumps, json_sorted
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from baoflow.cli import main
from tests.conftest import AGENT, HANDLER, report
from tests.test_complaint import register
from tests.test_timers import to_materials_complete


def _sql(eng: Engine, statement: str, **params: Any) -> Any:
    """What someone with the database's password does behind the engine's back."""
    with eng.store.engine.begin() as conn:
        return conn.execute(sa.text(statement), params)


def _stored(eng: Engine, case_id: int) -> list[Any]:
    return list(
        _sql(eng, "SELECT seq, hash FROM history WHERE case_id = :c ORDER BY seq", c=case_id)
    )


def _claim(eng: Engine) -> Any:
    """A claim with five rows of history, two of them written by the timer batch."""
    case = to_materials_complete(eng)  # opened, verified, applied, materials received
    eng.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
    assert eng.run_due_timers().fired > 0  # its deadline's warning
    return eng.get_case(case.id)


# --- the hash itself --------------------------------------------------------------------
def test_a_rows_hash_is_sha256_over_the_row_before_and_its_content_as_documented(
    eng: Engine,
) -> None:
    """Computed here independently of the engine, from the form docs/audit.md gives:
    the previous hash, a newline, and the row as compact JSON with sorted keys."""
    case = eng.open_case("claim", report(), AGENT).case
    verified = eng.fire(case.id, "verify", HANDLER)
    (first, h1), (second, h2) = _stored(eng, case.id)[:2]
    entries = eng.history(case.id)

    def by_hand(prev: str, e: Any) -> str:
        content = [
            case.number,
            e.seq,
            e.at.astimezone(UTC).isoformat(timespec="microseconds"),
            e.actor.to_json(),
            e.event,
            e.from_state,
            e.to_state,
            e.data,
            list(e.notes),
        ]
        text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(f"{prev}\n{text}".encode()).hexdigest()

    assert (first, second) == (1, 2) and verified.version >= 2
    assert h1 == by_hand("", entries[0])
    assert h2 == by_hand(h1, entries[1])


def test_numbers_hash_alike_however_the_database_writes_them_back() -> None:
    """PostgreSQL's JSONB gives 1e20 back as 100000000000000000000 and keeps 1.0 as 1.0:
    the row's hash is the same."""
    at = datetime(2026, 5, 6, 1, 0, tzinfo=UTC)

    def hashed(data: Any) -> str:
        return row_hash(
            "",
            number="LP-1",
            seq=1,
            at=at,
            actor={"id": "a"},
            event="open",
            from_state=None,
            to_state="reported",
            data=data,
            notes=[],
        )

    assert hashed({"a": 1e20, "b": 1.0, "c": -0.0}) == hashed(
        {"c": 0, "b": 1, "a": 100000000000000000000}
    )
    assert hashed({"a": 1.5}) != hashed({"a": 1.25})
    assert hashed({"a": "1"}) != hashed({"a": 1})


# --- an untouched history verifies -------------------------------------------------------
def test_every_path_that_writes_history_writes_a_chain_that_verifies(eng: Engine) -> None:
    """Opening and firing (the hot path), the timers' batch and a single timer, a
    calendar recompute: every case verifies, with every row counted."""
    cases = [_claim(eng) for _ in range(3)]
    cases.append(register(eng))
    eng.clock.advance(timedelta(days=40))  # type: ignore[attr-defined]
    eng.run_due_timers()  # breaches and escalations: several rows per case in one batch
    eng.recompute_deadlines()
    found = eng.verify_audit()
    rows = sum(len(eng.history(c.id)) for c in cases)
    assert (found.verified, found.cases, found.rows) == (True, 4, rows)
    assert rows > 4 * 5


# --- tampering -----------------------------------------------------------------------------
def test_a_row_changed_in_the_database_is_reported_as_altered(eng: Engine) -> None:
    case = _claim(eng)
    _sql(eng, "UPDATE history SET event = 'close' WHERE case_id = :c AND seq = 2", c=case.id)
    found = eng.verify_audit()
    assert not found.verified
    assert [(b.case, b.seq, b.kind) for b in found.breaks] == [(case.number, 2, "altered")]


def test_a_row_changed_and_its_hash_recomputed_breaks_the_row_after_it(eng: Engine) -> None:
    """Whoever rewrites a row's hash to match its new content cannot rewrite the next
    row's, which chains to the old one, without rewriting every row up to the head."""
    case = _claim(eng)
    rows = _stored(eng, case.id)
    _sql(eng, "UPDATE history SET hash = :h WHERE case_id = :c AND seq = 2", h="0" * 64, c=case.id)
    found = eng.verify_audit([case.number])
    assert [(b.seq, b.kind) for b in found.breaks] == [(2, "altered"), (3, "altered")]
    assert len(rows) >= 3


def test_a_removed_row_is_reported_missing(eng: Engine) -> None:
    case = _claim(eng)
    _sql(eng, "DELETE FROM history WHERE case_id = :c AND seq = 3", c=case.id)
    found = eng.verify_audit([case.id])
    assert [(b.seq, b.kind) for b in found.breaks] == [(3, "missing")]
    assert "row(s) 3 removed" in str(found.breaks[0])


def test_the_last_row_removed_is_reported_against_the_cases_version(eng: Engine) -> None:
    case = _claim(eng)
    _sql(eng, "DELETE FROM history WHERE case_id = :c AND seq = :v", c=case.id, v=case.version)
    found = eng.verify_audit([case.number])
    assert [(b.seq, b.kind) for b in found.breaks] == [(case.version, "missing")]


def test_two_rows_swapped_are_both_reported_and_the_row_after_them(eng: Engine) -> None:
    case = _claim(eng)
    swap = [
        "UPDATE history SET seq = -2 WHERE case_id = :c AND seq = 2",
        "UPDATE history SET seq = 2 WHERE case_id = :c AND seq = 3",
        "UPDATE history SET seq = 3 WHERE case_id = :c AND seq = -2",
    ]
    for statement in swap:
        _sql(eng, statement, c=case.id)
    found = eng.verify_audit()
    assert [(b.seq, b.kind) for b in found.breaks] == [
        (2, "altered"),
        (3, "altered"),
        (4, "altered"),
    ]


def test_a_row_moved_to_another_case_breaks_both(eng: Engine) -> None:
    """The case's number is in the hash: a whole history put under another case, or
    a row taken from one case to another, does not verify."""
    one, other = _claim(eng), _claim(eng)
    _sql(
        eng,
        "UPDATE history SET case_id = :o, seq = :s WHERE case_id = :c AND seq = :v",
        o=other.id,
        s=other.version + 1,
        c=one.id,
        v=one.version,
    )
    found = eng.verify_audit()
    assert {(b.case, b.kind) for b in found.breaks} == {
        (one.number, "missing"),
        (other.number, "altered"),
        (other.number, "unexpected"),
    }


def test_only_the_cases_asked_for_are_checked(eng: Engine) -> None:
    one, other = _claim(eng), _claim(eng)
    _sql(eng, "UPDATE history SET event = 'x' WHERE case_id = :c AND seq = 1", c=other.id)
    assert eng.verify_audit([one.number]).verified
    assert not eng.verify_audit([other.number]).verified
    with pytest.raises(CaseNotFound):
        eng.verify_audit(["LP-20260506-999999"])


def test_the_chain_check_itself_reports_each_kind() -> None:
    """``verify_case`` on rows made here: the rules without a database."""
    at = datetime(2026, 5, 6, 1, 0, tzinfo=UTC)
    rows: list[StoredRow] = []
    prev = ""
    for seq in (1, 2, 3):
        fields = dict(
            at=at, actor={"id": "a"}, event=f"e{seq}", from_state="s", to_state="s", data={}
        )
        prev = row_hash(prev, number="N", seq=seq, notes=[], **fields)  # type: ignore[arg-type]
        rows.append(StoredRow(seq=seq, notes=[], hash=prev, **fields))  # type: ignore[arg-type]
    assert verify_case("N", 3, rows) == []
    assert [b.kind for b in verify_case("N", 4, rows)] == ["missing"]
    assert [b.kind for b in verify_case("N", 2, rows)] == ["unexpected"]
    assert [b.kind for b in verify_case("M", 3, rows)] == ["altered", "altered", "altered"]
    assert [(b.seq, b.kind) for b in verify_case("N", 3, [rows[0], rows[2]])] == [(2, "missing")]
    assert [b.kind for b in verify_case("N", 3, [*rows, rows[1]])] == ["altered"]


# --- the days' anchors ------------------------------------------------------------------------
def _next_day(clock: FakeClock, short: timedelta = timedelta(0)) -> None:
    """On past the next midnight in Beijing and its grace (less ``short``)."""
    now = clock.now().astimezone(SHANGHAI)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), SHANGHAI)
    clock.advance(midnight - now + GRACE - short)


def test_a_day_is_sealed_once_it_is_over_and_only_once(eng: Engine, clock: FakeClock) -> None:
    case = eng.open_case("claim", report(), AGENT).case
    opened = len(eng.history(case.id))
    assert eng.seal_audit() == []  # the day is not over
    _next_day(clock, short=timedelta(seconds=1))  # past midnight, not its grace
    assert eng.seal_audit() == []
    clock.advance(timedelta(seconds=1))
    (sealed,) = eng.seal_audit()
    assert (sealed.day, sealed.rows) == (date(2026, 5, 6), opened)
    assert eng.seal_audit() == []
    eng.fire(case.id, "verify", HANDLER)
    _next_day(clock)
    _next_day(clock)  # a day with no row is sealed too: the chain has no gap
    assert [(a.day.day, a.rows) for a in eng.seal_audit()] == [(7, 1), (8, 0)]
    assert [a.day.day for a in eng.audit_anchors()] == [6, 7, 8]
    found = eng.verify_audit()
    assert (found.verified, found.anchors) == (True, 3)


def test_the_last_row_removed_with_the_version_covered_up_breaks_the_days_anchor(
    eng: Engine, clock: FakeClock
) -> None:
    """No later row of its own chain covers a case's last row: the day's anchor does."""
    case = _claim(eng)
    _next_day(clock)
    eng.seal_audit()
    _sql(eng, "DELETE FROM history WHERE case_id = :c AND seq = :v", c=case.id, v=case.version)
    _sql(eng, "UPDATE cases SET version = :v WHERE id = :c", v=case.version - 1, c=case.id)
    found = eng.verify_audit()
    assert found.breaks == ()
    assert [b.day for b in found.anchor_breaks] == [eng.audit_anchors()[-1].day]


def test_an_anchor_changed_or_removed_is_reported(eng: Engine, clock: FakeClock) -> None:
    eng.open_case("claim", report(), AGENT)
    for _ in range(3):
        _next_day(clock)
    first, second, third = eng.seal_audit()
    _sql(eng, "UPDATE audit_anchors SET hash = :h WHERE day = :d", h="1" * 64, d=first.day)
    _sql(eng, "DELETE FROM audit_anchors WHERE day = :d", d=second.day)
    found = eng.verify_audit()
    assert [b.day for b in found.anchor_breaks] == [first.day, second.day, third.day]


def test_an_anchor_noted_down_must_be_the_one_sealed(eng: Engine, clock: FakeClock) -> None:
    eng.open_case("claim", report(), AGENT)
    _next_day(clock)
    (sealed,) = eng.seal_audit()
    assert eng.verify_audit(noted={sealed.day: sealed.hash.upper()}).verified
    found = eng.verify_audit(noted={sealed.day: "ab" * 32, date(2026, 6, 1): "cd" * 32})
    assert [b.day for b in found.anchor_breaks] == [sealed.day, date(2026, 6, 1)]


# --- an upgraded database ---------------------------------------------------------------------
def test_an_upgraded_database_gets_each_rows_hash_as_a_new_one_has_it(eng: Engine) -> None:
    """Revision 0021 hashes the rows stored before it, with the function new rows are
    hashed with: down to 0020 (no hashes) and up again gives the same hashes."""
    cases = [_claim(eng), eng.open_case("claim", report(), AGENT).case]
    before = [_stored(eng, c.id) for c in cases]
    from alembic import command

    store: Store = eng.store
    with store.write() as tx:
        command.downgrade(store._alembic_config(tx.conn), "0020")  # type: ignore[attr-defined]
    assert "hash" not in {c["name"] for c in sa.inspect(store.engine).get_columns("history")}
    store.upgrade()
    assert [_stored(eng, c.id) for c in cases] == before
    assert eng.verify_audit().verified


# --- the command line -----------------------------------------------------------------------------
def test_audit_verify_says_verified_or_lists_each_break_with_exit_status_1(
    db_url: str, clock: FakeClock
) -> None:
    eng = open_engine(db_url, clock=clock)
    try:
        from tests.conftest import POLICIES

        eng.policies.add(POLICIES)  # type: ignore[attr-defined]
        case = _claim(eng)
        runner = CliRunner()
        ok = runner.invoke(main, ["audit", "verify", "--url", db_url])
        assert (ok.exit_code, ok.output) == (
            0,
            f"verified: 1 case(s), {case.version} history row(s), 0 sealed day(s)\n",
        )
        _sql(eng, "UPDATE history SET data = '{}' WHERE case_id = :c AND seq = 1", c=case.id)
        broken = runner.invoke(main, ["audit", "verify", "--url", db_url, "--case", case.number])
        assert broken.exit_code == 1
        assert broken.output.splitlines() == [
            f"broken: {case.number} row 1: its hash does not match its content and the "
            "row before it: the row was changed, or put in another's place",
            f"BROKEN: 1 case(s), {case.version} history row(s)",
        ]
        bad = runner.invoke(main, ["audit", "verify", "--url", db_url, "--anchor", "yesterday"])
        assert bad.exit_code == 2 and "is not DAY=ANCHOR" in bad.output
    finally:
        eng.close()


def test_audit_seal_and_anchors_print_each_day_to_note_down(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    clock = FakeClock(datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI))
    eng = open_engine(url, clock=clock)
    try:
        eng.open_case("claim", report(), AGENT)
        _next_day(clock)
        (sealed,) = eng.seal_audit()
    finally:
        eng.close()
    runner = CliRunner()
    listed = runner.invoke(main, ["audit", "anchors", "--url", url])
    assert (listed.exit_code, listed.output) == (
        0,
        f"2026-05-06  {sealed.hash}  {sealed.rows} row(s)\n",
    )
    again = runner.invoke(main, ["audit", "seal", "--url", url])  # the real clock: days on
    assert again.exit_code == 0 and again.output.endswith("day(s) sealed\n")
    missing = runner.invoke(main, ["audit", "verify", "--url", f"sqlite:///{tmp_path / 'x.db'}"])
    assert missing.exit_code == 2 and "does not exist" in missing.output


# --- the written form and the read-back form agree ------------------------------------------
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(data=st.dictionaries(st.text(), _json, max_size=5), name=st.text(max_size=20))
def test_a_row_is_hashed_as_written_as_it_is_when_read_back(data: Any, name: str) -> None:
    """The store hashes a row from the JSON it writes (no decoding when there is no
    float); a check hashes it from what the database gives back: the same hash."""
    at = datetime(2026, 5, 6, 1, 0, 0, 123456, tzinfo=UTC)
    actor = {"id": "h01", "name": name, "roles": ["handler"], "org_unit": None}
    written = written_row_hash(
        "ab" * 32,
        number="LP-1",
        seq=2,
        at=at,
        actor_json=json_dumps(actor),
        event="verify",
        from_state="reported",
        to_state="verified",
        data_json=json_sorted(data),
        notes=["n"],
    )
    read_back = orjson.loads(json_dumps(data))
    assert written == row_hash(
        "ab" * 32,
        number="LP-1",
        seq=2,
        at=at,
        actor=actor,
        event="verify",
        from_state="reported",
        to_state="verified",
        data=read_back,
        notes=["n"],
    )


def test_numbers_and_decimals_in_data_verify_on_each_database(eng: Engine) -> None:
    """Written by the store and read back from SQLite's text or PostgreSQL's JSONB
    (which gives 1e20 back as an integer)."""
    case = eng.open_case("claim", report(), AGENT).case
    odd = {"big": 1e20, "tenth": 0.1, "one": 1.0, "neg": -2.5e-7, "paid": Decimal("12.30")}
    with eng.store.write() as tx:
        assert tx.update_case(
            case_id=case.id,
            expected_version=case.version,
            state=None,
            data=dict(case.data),
            now=eng.clock.now(),
            keys=None,
        )
        tx.append_history(
            case_id=case.id,
            number=case.number,
            seq=case.version + 1,
            at=eng.clock.now(),
            actor=HANDLER,
            event="note",
            from_state=case.state,
            to_state=case.state,
            data=odd,
            notes=[],
        )
    assert eng.verify_audit([case.id]).verified


def test_a_day_sealed_by_another_worker_meanwhile_makes_this_one_seal_nothing(
    eng: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers seal at once: the second's insert meets the first's row, and it seals
    nothing rather than fail."""
    from baoflow.engine.store.core import CoreTx

    eng.open_case("claim", report(), AGENT)
    _next_day(clock)
    (first,) = eng.seal_audit()
    monkeypatch.setattr(CoreTx, "anchors", lambda self: [])  # as read before it was sealed
    assert eng.seal_audit() == []
    monkeypatch.undo()
    assert eng.audit_anchors() == [first]
