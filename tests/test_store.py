"""The store: migrations equal the models, times come back aware, numbers are unique."""

from __future__ import annotations

from datetime import UTC

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from baoflow.engine import Engine, StorageError, open_engine
from baoflow.engine.store import Store
from baoflow.engine.store.tables import metadata

from tests.conftest import AGENT, HANDLER, report


def test_migrations_produce_exactly_the_schema_of_the_models(db_url: str) -> None:
    store = Store(db_url)
    try:
        store.upgrade()
        with store.read() as tx:
            diff = compare_metadata(
                MigrationContext.configure(tx.conn, opts={"compare_type": True}), metadata
            )
        assert diff == []
        assert store.current_revision() == store.head_revision()
    finally:
        store.dispose()


def test_migrations_go_down_and_up_again(db_url: str) -> None:
    store = Store(db_url)
    try:
        store.upgrade()
        from alembic import command

        with store.write() as tx:
            command.downgrade(store._alembic_config(tx.conn), "base")
        assert store.current_revision() is None
        store.upgrade()
        assert store.current_revision() == store.head_revision()
    finally:
        store.dispose()


def test_an_unmigrated_database_is_a_clear_error_when_migration_is_off(db_url: str) -> None:
    with pytest.raises(StorageError, match="baoflow db upgrade"):
        open_engine(db_url, migrate=False)


def test_stored_times_come_back_timezone_aware_in_utc(eng: Engine) -> None:
    case = eng.open_case("claim", report(), AGENT).case
    stored = eng.get_case(case.id)
    assert stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset() == UTC.utcoffset(None)
    assert stored.created_at == eng.clock.now()
    assert eng.history(case.id)[0].at == eng.clock.now()


def test_case_numbers_follow_the_prefix_day_sequence_rule(eng: Engine) -> None:
    first = eng.open_case("claim", report(), AGENT).case
    second = eng.open_case(
        "claim",
        report(policy={"number": "P-ACC-001", "insured_name": "张伟"}, incident={"cause": "fire"}),
        AGENT,
    ).case
    assert first.number == "LP-20260506-000001"
    assert second.number == "LP-20260506-000002"
    eng.clock.advance(days=1)  # type: ignore[attr-defined]
    third = eng.open_case(
        "claim", report(incident={"time": "2026-05-06T20:00:00+08:00"}), AGENT
    ).case
    assert third.number == "LP-20260507-000001"


def test_find_cases_by_each_search_key(eng: Engine) -> None:
    case = eng.open_case("claim", report(), AGENT).case
    eng.fire(case.id, "verify", HANDLER)
    for filters in (
        {"number": case.number},
        {"policy_number": "P-LIFE-001"},
        {"insured_name": "李娜"},
        {"id_number": "440304198001010041"},
        {"workflow": "claim", "state": "verified"},
        {"state": ["verified", "closed"]},
    ):
        assert [c.id for c in eng.find_cases(**filters)] == [case.id], filters  # type: ignore[arg-type]
    assert eng.find_cases(state="closed") == []
    assert eng.count_by_state() == {("claim", "verified"): 1}
