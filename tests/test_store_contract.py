"""Both transaction kinds honour one contract (engine/store/tx.py), on both databases:
``CoreTx`` (the shared statements on SQLAlchemy's connection, and Core) and ``HotTx``
(the shared statements on a DBAPI connection of its own, what open_case() and fire()
take). They must read each other's rows and write the same bytes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path

import pytest
from baoflow.engine import (
    SHANGHAI,
    Actor,
    CaseNotFound,
    ConflictError,
    SqlPolicyDirectory,
    StorageUnavailable,
)
from baoflow.engine.store import IntegrityViolation, Store, Tx
from baoflow.workflows.examples import POLICIES

from tests.conftest import _pg_schema

NOW = datetime(2026, 5, 6, 9, 30, 15, 123456, tzinfo=SHANGHAI)
ACTOR = Actor("h01", "王芳", roles=("handler",), org_unit="SH")
DATA = {"policy": {"number": "P-1", "insured_name": "李娜"}, "note": "中文不转义", "n": 1}


@pytest.fixture(
    params=[
        "sqlite-core",
        "sqlite-fast",
        pytest.param("postgresql-core", marks=pytest.mark.postgres),
        pytest.param("postgresql-fast", marks=pytest.mark.postgres),
    ]
)
def paths(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Store, Callable[[], AbstractContextManager[Tx]]]]:
    """(store, open a transaction on the path under test)."""
    backend, path = request.param.split("-")
    schema = _pg_schema() if backend == "postgresql" else None
    store = Store(next(schema) if schema else f"sqlite:///{tmp_path / 'c.db'}")
    store.upgrade()
    yield store, (store.fire_transaction if path == "fast" else store.write)
    store.dispose()
    if schema is not None:
        schema.close()  # drops the private schema


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def new_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Make a new, empty database of the backend under test; its URL."""
    schemas: list[Iterator[str]] = []
    made = iter(range(1_000))

    def make() -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / f'db{next(made)}.db'}"
        schemas.append(_pg_schema())
        return next(schemas[-1])

    yield make
    for schema in schemas:
        schema.close()  # drops the private schema


def _new_case(store: Store) -> int:
    """A claim numbered LP-20260506-000001 (in a new database), as Core writes it."""
    with store.write() as tx:
        case_id, _number = tx.insert_case(
            prefix="LP",
            day="20260506",
            workflow="claim",
            workflow_version=1,
            state="reported",
            data=DATA,
            now=NOW,
            keys={"policy_number": "P-1", "insured_name": "李娜", "id_number": None},
        )
        return case_id


def test_a_case_reads_the_same_by_id_and_by_number_on_either_path(paths) -> None:  # type: ignore[no-untyped-def]
    store, tx_of = paths
    case_id = _new_case(store)
    with tx_of() as tx:
        by_id, by_number = tx.load_case(case_id), tx.load_case("LP-20260506-000001")
        by_digits = tx.load_case(str(case_id))
    with store.read() as core:
        assert by_id == by_number == by_digits == core.load_case(case_id)
    assert by_id.created_at == NOW and by_id.data == DATA
    with tx_of() as tx, pytest.raises(CaseNotFound):
        tx.load_case("LP-20990101-000001")


def test_an_update_writes_only_at_the_expected_version(paths) -> None:  # type: ignore[no-untyped-def]
    store, tx_of = paths
    case_id = _new_case(store)
    later = NOW.replace(minute=45)
    with tx_of() as tx:
        assert tx.update_case(
            case_id=case_id,
            expected_version=1,
            state="verified",
            data={**DATA, "n": 2},
            now=later,
            keys=None,
        )
        assert tx.current_version(case_id) == 2
        assert tx.current_version(999) is None
    with store.read() as core:
        case = core.load_case(case_id)
    assert (case.state, case.version, case.data["n"], case.updated_at) == ("verified", 2, 2, later)
    with store.read() as core:  # keys=None left the search keys as they were
        assert [c.id for c in core.find_cases(policy_number="P-1")] == [case_id]


@pytest.mark.parametrize("then", ["write", "read"])
def test_an_update_at_a_moved_version_is_a_conflict_and_writes_nothing(paths, then) -> None:  # type: ignore[no-untyped-def]
    """An update whose version moved on matched no row: ``update_case`` says so at once
    (False), or — on PostgreSQL's hot path, which sends the check without waiting for
    it — the transaction raises ConflictError at its next read or its end. Either way
    nothing of the transaction is written."""
    store, tx_of = paths
    case_id = _new_case(store)
    with store.write() as core:
        core.update_case(
            case_id=case_id, expected_version=1, state="verified", data=DATA, now=NOW, keys=None
        )
    with pytest.raises(ConflictError) as raised, tx_of() as tx:
        if not tx.update_case(
            case_id=case_id, expected_version=1, state="x", data={}, now=NOW, keys=None
        ):  # what Transitions.apply does with False
            raise ConflictError("LP-20260506-000001", 1, tx.current_version(case_id))
        tx.append_history(
            case_id=case_id,
            number="LP-20260506-000001",
            seq=3,
            at=NOW,
            actor=ACTOR,
            event="x",
            from_state="verified",
            to_state="x",
            data={},
            notes=[],
        )
        if then == "read":
            tx.history(case_id)
    assert (raised.value.case_number, raised.value.expected_version) == ("LP-20260506-000001", 1)
    assert raised.value.actual_version == 2
    with store.read() as core:
        assert (core.load_case(case_id).state, core.history(case_id)) == ("verified", [])


def test_an_update_without_a_state_keeps_the_state(paths) -> None:  # type: ignore[no-untyped-def]
    """A self-loop (e.g. receive_materials) writes data and version, not the state."""
    store, tx_of = paths
    case_id = _new_case(store)
    with tx_of() as tx:
        assert tx.update_case(
            case_id=case_id, expected_version=1, state=None, data={"n": 9}, now=NOW, keys=None
        )
    with store.read() as core:
        case = core.load_case(case_id)
    assert (case.state, case.version, case.data) == ("reported", 2, {"n": 9})


def test_new_search_keys_are_written_when_given(paths) -> None:  # type: ignore[no-untyped-def]
    store, tx_of = paths
    case_id = _new_case(store)
    with tx_of() as tx:
        tx.update_case(
            case_id=case_id,
            expected_version=1,
            state="reported",
            data=DATA,
            now=NOW,
            keys={"policy_number": "P-2", "insured_name": "李娜", "id_number": "X"},
        )
    with store.read() as core:
        assert core.find_cases(policy_number="P-1") == []
        assert [c.id for c in core.find_cases(policy_number="P-2", id_number="X")] == [case_id]


def test_a_workflows_own_keys_are_rows_rewritten_with_the_case(paths) -> None:  # type: ignore[no-untyped-def]
    store, tx_of = paths
    case_id = _new_case(store)
    with store.write() as tx:  # written at open by Core (the hot path never opens)
        tx.update_case(
            case_id=case_id,
            expected_version=1,
            state=None,
            data=DATA,
            now=NOW,
            keys={"policy_number": "P-1", "phone": "138", "fax": "9"},
        )
    with tx_of() as tx:
        tx.update_case(
            case_id=case_id,
            expected_version=2,
            state=None,
            data=DATA,
            now=NOW,
            keys={"policy_number": "P-1", "phone": "139", "fax": None},
        )
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT case_id, key, value FROM case_keys").all()
    assert [tuple(r) for r in rows] == [(case_id, "phone", "139")]
    with store.read() as core:
        assert [c.id for c in core.find_cases(keys={"phone": "139"})] == [case_id]
        assert core.find_cases(keys={"phone": "138"}) == []
        assert core.count_cases(keys={"phone": "139", "policy_number": "P-1"}) == 1


def test_history_rows_round_trip_and_a_second_row_per_version_is_refused(paths) -> None:  # type: ignore[no-untyped-def]
    store, tx_of = paths
    case_id = _new_case(store)
    with tx_of() as tx:
        tx.append_history(
            case_id=case_id,
            number="LP-20260506-000001",
            seq=1,
            at=NOW,
            actor=ACTOR,
            event="open",
            from_state=None,
            to_state="reported",
            data={"channel": "phone"},
            notes=["请保护现场"],
        )
    with tx_of() as tx:
        written = tx.history(case_id)
    with store.read() as core:
        assert written == core.history(case_id)
    assert (
        written[0].actor == ACTOR and written[0].at == NOW and written[0].notes == ("请保护现场",)
    )
    with pytest.raises(IntegrityViolation), tx_of() as tx:
        tx.append_history(
            case_id=case_id,
            number="LP-20260506-000001",
            seq=1,
            at=NOW,
            actor=ACTOR,
            event="again",
            from_state="reported",
            to_state="reported",
            data={},
            notes=[],
        )
    with store.read() as core:
        assert len(core.history(case_id)) == 1  # the failed transaction left nothing


def test_find_cases_filters_the_same_way(paths) -> None:  # type: ignore[no-untyped-def]
    store, tx_of = paths
    ids = [_new_case(store) for _ in range(3)]  # LP-20260506-000001 … 000003
    with tx_of() as tx:
        assert [c.id for c in tx.find_cases(insured_name="李娜", limit=None)] == ids
        assert [c.id for c in tx.find_cases(limit=2, offset=1)] == ids[1:3]
        assert [c.id for c in tx.find_cases(state=["reported", "closed"])] == ids
        assert tx.find_cases(state=[]) == []
        assert tx.find_cases(workflow="surrender") == []


def test_idempotency_records_round_trip_and_a_key_is_stored_once(paths) -> None:  # type: ignore[no-untyped-def]
    store, tx_of = paths
    case_id = _new_case(store)
    with tx_of() as tx:
        assert tx.idempotent_result("k") is None
        tx.remember_result(
            key="k",
            case_id=case_id,
            event="verify",
            fingerprint="f" * 64,
            result={"a": "甲"},
            now=NOW,
        )
    with tx_of() as tx:
        found = tx.idempotent_result("k")
    assert (found.case_id, found.event, found.fingerprint, found.result) == (
        case_id,
        "verify",
        "f" * 64,
        {"a": "甲"},
    )
    with pytest.raises(IntegrityViolation), tx_of() as tx:
        tx.remember_result(
            key="k", case_id=case_id, event="verify", fingerprint="f" * 64, result={}, now=NOW
        )


def test_the_shared_statements_store_exactly_what_sqlalchemy_would(new_db) -> None:  # type: ignore[no-untyped-def]
    """The hot statements bind times and JSON by hand: they must store the bytes
    SQLAlchemy's typed columns store, or Core's reads drift. Core's own update is the
    independent computation here."""
    import sqlalchemy as sa
    from baoflow.engine.store import tables

    store = Store(new_db())
    store.upgrade()
    first, second = _new_case(store), _new_case(store)
    with store.write() as tx:
        c = tables.cases.c
        tx.conn.execute(
            tables.cases.update()
            .where(c.id == first)
            .values(state="s", data=DATA, version=2, updated_at=NOW)
        )
    with store.fire_transaction() as tx:
        tx.update_case(case_id=second, expected_version=1, state="s", data=DATA, now=NOW, keys=None)
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT state, data, version, updated_at FROM cases WHERE id IN (:a, :b) "
                "ORDER BY id"
            ),
            {"a": first, "b": second},
        ).all()
    backend = store.dialect_name
    store.dispose()
    assert rows[0] == rows[1]
    if backend == "sqlite":
        assert rows[0][3] == "2026-05-06 01:30:15.123456"


def test_notices_written_by_either_transaction_read_the_same(new_db) -> None:  # type: ignore[no-untyped-def]
    """A transition's notices are written by the hot path, a timer's in a CoreTx, and an
    expanded notice's by Core's own insert: delivery reads them all the same way."""
    from baoflow.engine.store import tables

    store = Store(new_db())
    store.upgrade()
    case_id = _new_case(store)
    context = {"case_number": "LP-1", "reasons": ["中文不转义"]}

    def notice(seq: int) -> dict[str, object]:
        return {
            "key": f"case:{case_id}:{seq}:claim_accepted:reporter",
            "case_id": case_id,
            "seq": seq,
            "template": "claim_accepted",
            "recipient": "reporter",
            "org_unit": None,
            "context": context,
        }

    with store.write() as tx:  # Core's typed insert: the independent computation
        tx.conn.execute(
            tables.outbox.insert(),
            [
                {
                    **notice(1),
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": NOW,
                    "created_at": NOW,
                }
            ],
        )
    for seq, tx_of in ((2, store.write), (3, store.fire_transaction)):
        with tx_of() as tx:
            tx.insert_outbox([notice(seq)], NOW)  # type: ignore[list-item]
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT template, recipient, org_unit, context, status, attempts, next_attempt_at, "
            "created_at, channel, data_subject FROM outbox ORDER BY seq"
        ).all()
    with store.read() as tx:
        read = tx.list_outbox()
    store.dispose()
    assert rows[0] == rows[1] == rows[2]
    assert [r.context for r in read] == [context] * 3
    assert [r.next_attempt_at for r in read] == [NOW] * 3


def test_a_policy_reads_the_same_on_the_hot_path_and_through_core(new_db) -> None:  # type: ignore[no-untyped-def]
    store = Store(new_db())
    store.upgrade()
    SqlPolicyDirectory(store).add(POLICIES)
    try:
        for policy in POLICIES:
            assert store._hot is not None
            hot = store._hot.policy(policy.number)
            with store.read() as core:
                assert hot == core.policy(policy.number) == policy
                mine = core.policies_by_insured(policy.insured_name, policy.insured_id_number)
            assert policy in mine
        assert store.policy("P-NONE") is None
    finally:
        store.dispose()


def test_every_deadline_step_writes_the_same_rows_on_either_path(new_db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """open_case() and fire() on SQLite run on the hot path, deadline events included: a
    case opened and numbered, a deadline started, extended, paused, extended while paused, resumed (re-timed),
    restarted, warned by a timer and stopped must leave exactly the rows Core leaves.
    On PostgreSQL as on SQLite."""
    from baoflow.engine import FakeClock, Hooks, load_workflow, open_engine
    from baoflow.engine.store.hot import HotTx

    from tests.test_deadline_extensions import REPLY, bj

    hot_steps: list[str] = []
    for method in ("insert_deadline", "update_deadline", "set_timer_status", "retime_timer"):
        original = getattr(HotTx, method)

        def spy(self, *args, _original=original, _name=method, **kwargs):  # type: ignore[no-untyped-def]
            hot_steps.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(HotTx, method, spy)

    def run(fast: bool) -> dict[str, list[tuple[object, ...]]]:
        clock = FakeClock(bj(2026, 4, 20, 10, 0))
        eng = open_engine(new_db(), clock=clock)
        if not fast:
            eng.store._hot = None  # every fire() in a CoreTx
        eng.register(load_workflow(REPLY, Hooks()))
        case = eng.open_case("reply", {}, ACTOR).case
        for event, days in (
            ("extend", 1),
            ("mediate", 2),
            ("extend_again", 3),
            ("mediation_done", 1),
            ("new_facts", 13),  # past the first warning: a timer fired in between
            ("reply", 0),
        ):
            eng.fire(case.id, event, ACTOR)
            clock.advance(days=days)
            eng.run_due_timers(worker="w1")
        tables = {}
        with eng.store.engine.connect() as conn:
            for table, order in (
                ("cases", "id"),
                ("history", "case_id, seq"),
                ("case_deadlines", "case_id, rule, armed_seq"),
                ("timers", "id"),
                ("outbox", "id"),
                ("case_counters", "prefix, day"),
            ):
                tables[table] = list(
                    conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY {order}")
                )
        eng.close()
        return tables

    hot = run(fast=True)
    assert set(hot_steps) == {
        "insert_deadline",
        "update_deadline",
        "set_timer_status",
        "retime_timer",
    }
    hot_steps.clear()
    core = run(fast=False)
    assert hot_steps == []
    assert hot == core
    statuses = [row[5] for row in hot["case_deadlines"]]
    assert statuses == ["restarted", "met"]  # both instances went through the hot path
    assert any(row[7] == "cancelled" for row in hot["timers"])
    assert any(row[7] == "fired" for row in hot["timers"])


def test_a_case_opened_on_either_path_is_the_same_row_with_its_own_keys(new_db) -> None:  # type: ignore[no-untyped-def]
    store = Store(new_db())
    store.upgrade()
    keys = {"policy_number": "P-1", "insured_name": "李娜", "id_number": None, "phone": "138"}
    numbers = []
    for tx_of in (store.write, store.fire_transaction):
        with tx_of() as tx:
            numbers.append(
                tx.insert_case(
                    prefix="LP",
                    day="20260506",
                    workflow="claim",
                    workflow_version=1,
                    state="reported",
                    data=DATA,
                    now=NOW,
                    keys=keys,
                    org_unit="SH",
                )[1]
            )
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT * FROM cases ORDER BY id").all()
        own = conn.exec_driver_sql("SELECT * FROM case_keys ORDER BY case_id").all()
    store.dispose()
    assert numbers == ["LP-20260506-000001", "LP-20260506-000002"]
    assert [row[1] for row in rows] == numbers
    assert rows[0][2:] == rows[1][2:]  # all but the id and the number
    assert [row[1:] for row in own] == [("phone", "138"), ("phone", "138")]


def test_a_case_number_has_six_digits_and_more_past_999999(paths) -> None:  # type: ignore[no-untyped-def]
    """``{prefix}-{day}-{n:06d}``: zero-padded to six digits, never cut to them."""
    store, tx_of = paths
    with store.write() as core:
        core.conn.exec_driver_sql(
            "INSERT INTO case_counters (prefix, day, last) VALUES ('LP-BJ', '20260506', 999998)"
        )

    def opened(day: str) -> tuple[int, str]:
        with tx_of() as tx:
            return tx.insert_case(
                prefix="LP-BJ",
                day=day,
                workflow="claim",
                workflow_version=1,
                state="reported",
                data=DATA,
                now=NOW,
                keys={},
            )

    numbers = [opened("20260506")[1] for _ in range(2)]
    first = opened("20260507")
    assert numbers == ["LP-BJ-20260506-999999", "LP-BJ-20260506-1000000"]
    assert first[1] == "LP-BJ-20260507-000001"
    with store.read() as core:
        assert core.load_case(first[0]).number == "LP-BJ-20260507-000001"


def _terminate(store: Store, pid: int) -> None:
    """End a server process, and wait until it is gone (its goodbye sent)."""
    with store.engine.connect() as admin:
        admin.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)}, 5000)")


@pytest.mark.postgres
@pytest.mark.parametrize("dropped", ["before BEGIN", "after BEGIN"])
def test_a_pooled_connection_the_server_dropped_is_replaced_before_anything_is_done(
    dropped: str,
) -> None:
    """A server restart leaves the hot path's idle connections dead. The transaction's
    BEGIN, its writes or its first wait find out; nothing was done on the dead
    connection, so the transaction begins again on a new one, with what it had sent."""
    schema = _pg_schema()
    store = Store(next(schema))
    store.upgrade()
    try:
        case_id = _new_case(store)
        with store.fire_transaction() as tx:
            tx.load_case(case_id)  # leaves a connection in the pool
        assert store._hot is not None
        (pid,) = [conn.info.backend_pid for conn in store._hot._idle]
        if dropped == "before BEGIN":
            _terminate(store, pid)
        with store.fire_transaction() as tx:
            if dropped == "after BEGIN":
                _terminate(store, pid)
            assert tx.update_case(
                case_id=case_id, expected_version=1, state="verified", data=DATA, now=NOW, keys=None
            )
            moved = tx.load_case(case_id, deadlines=True)  # the first wait
        assert (moved.state, moved.version) == ("verified", 2)
        assert [conn.info.backend_pid for conn in store._hot._idle] != [pid]
    finally:
        store.dispose()
        schema.close()


@pytest.mark.postgres
def test_a_connection_lost_after_the_first_wait_fails_the_transaction() -> None:
    """Once a transaction has done something on its connection, losing it is an error
    for the caller (nothing committed, StorageUnavailable): it is never silently begun
    again."""
    schema = _pg_schema()
    store = Store(next(schema))
    store.upgrade()
    try:
        case_id = _new_case(store)
        with pytest.raises(StorageUnavailable) as raised, store.fire_transaction() as tx:
            tx.load_case(case_id)
            _terminate(store, tx._conn.info.backend_pid)  # type: ignore[attr-defined]
            tx.update_case(
                case_id=case_id, expected_version=1, state="verified", data=DATA, now=NOW, keys=None
            )
        assert (raised.value.reason, raised.value.applied) == ("lost", False)
        with store.read() as core:
            assert core.load_case(case_id).version == 1
        with store.fire_transaction() as tx:  # the broken connection left the pool
            assert tx.load_case(case_id).version == 1
    finally:
        store.dispose()
        schema.close()
