"""The plans of the dashboard's counts hold once SQLite has statistics: a desk that runs
``ANALYZE`` (or a tool that does) must not send a count to an index that reads every
case of a unit. PostgreSQL keeps histograms and plans by them (its plans and times at a
million cases are in docs/benchmarks.md); what it is given to plan with is checked here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from baoflow.engine import SHANGHAI, ChineseOfficialCalendar, Engine, FakeClock, open_engine
from baoflow.workflows.examples import POLICIES

from tests.conftest import SUPERVISOR
from tests.test_timers import to_materials_complete


def _copies(eng: Engine, source_id: int, n: int) -> None:
    """``n`` copies of one case row over four units, all opened when it was: a desk's
    history, whose opening times tell the planner little."""
    with eng.store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO cases (number, workflow, workflow_version, state, data, version,"
            " created_at, updated_at, org_unit) "
            "SELECT s.number || '-' || g.x, s.workflow, s.workflow_version, s.state, s.data,"
            " s.version, s.created_at, s.updated_at,"
            " CASE g.x % 4 WHEN 0 THEN 'SH' WHEN 1 THEN 'BJ' WHEN 2 THEN 'GZ' ELSE 'SZ' END "
            "FROM cases s CROSS JOIN (WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL"
            f" SELECT x + 1 FROM r WHERE x < {n}) SELECT x FROM r) AS g WHERE s.id = ?",
            (source_id,),
        )
        conn.exec_driver_sql("ANALYZE")


@contextmanager
def _plans(eng: Engine) -> Iterator[dict[str, str]]:
    """Each SELECT run inside, with its plan as SQLite's EXPLAIN QUERY PLAN prints it."""
    seen: list[tuple[str, object]] = []

    def note(_c: object, _cur: object, sql: str, params: object, *_rest: object) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            seen.append((sql, params))

    sa.event.listen(eng.store.engine, "before_cursor_execute", note)
    plans: dict[str, str] = {}
    try:
        yield plans
    finally:
        sa.event.remove(eng.store.engine, "before_cursor_execute", note)
    with eng.store.engine.connect() as conn:
        for sql, params in seen:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()  # type: ignore[arg-type]
            plans[sql] = "\n".join(str(row[-1]) for row in rows)


@pytest.fixture
def analyzed(tmp_path: Path) -> Iterator[tuple[Engine, FakeClock]]:
    """4,001 claims on SQLite, with the statistics ``ANALYZE`` gathers."""
    clock = FakeClock(datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI))
    eng = open_engine(
        f"sqlite:///{tmp_path / 'b.db'}", clock=clock, calendar=ChineseOfficialCalendar()
    )
    try:
        eng.policies.add(POLICIES)  # type: ignore[attr-defined]
        _copies(eng, to_materials_complete(eng).id, 4000)
        yield eng, clock
    finally:
        eng.close()


def test_a_units_intake_is_counted_on_its_own_index_after_analyze(
    analyzed: tuple[Engine, FakeClock],
) -> None:
    eng, clock = analyzed
    since = clock.advance(timedelta(days=7))
    to_materials_complete(eng)
    unit = SUPERVISOR  # of SH: sees that unit's cases
    with _plans(eng) as plans:
        flow = eng.case_flow("claim", since=since, visible_to=unit)
    assert flow.opened == 1
    (opened,) = [plan for sql, plan in plans.items() if "cases.created_at >=" in sql]
    assert "ix_cases_workflow_org_unit_created_at" in opened, opened


def test_no_count_of_a_units_overview_reads_every_case_of_the_unit(
    analyzed: tuple[Engine, FakeClock],
) -> None:
    eng, clock = analyzed
    since = clock.advance(timedelta(days=7))
    unit = SUPERVISOR
    with _plans(eng) as plans:
        for d in eng.workflows():
            eng.state_counts(d.name, org_unit=unit.org_unit)
            eng.case_flow(d.name, since=since, visible_to=unit)
        eng.running_deadlines(limit=51, visible_to=unit)
    assert plans
    for sql, plan in plans.items():
        assert "SCAN cases" not in plan and "INDEX ix_cases_org_unit " not in plan, (sql, plan)


@pytest.mark.postgres
def test_postgresql_knows_handlers_go_with_units_and_reads_states_from_an_index(
    pg_only_url: str,
) -> None:
    eng = open_engine(pg_only_url)
    try:
        with eng.store.engine.connect() as conn:
            stats = conn.exec_driver_sql(
                "SELECT stxkind FROM pg_statistic_ext WHERE stxname = "
                "'st_cases_handler_org_unit' AND stxnamespace = current_schema()::regnamespace"
            ).scalar_one()
            index = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_cases_state_of' "
                "AND schemaname = current_schema()"
            ).scalar_one()
        assert sorted(stats) == ["f", "m"]  # functional dependencies, most common values
        assert index.endswith("(id) INCLUDE (workflow, org_unit, state)")
    finally:
        eng.close()


def test_the_sla_report_walks_each_cases_history_in_the_order_of_its_key(
    analyzed: tuple[Engine, FakeClock],
) -> None:
    """The medians' windows run over each case's rows in (case_id, seq) order: the
    history is read through its unique index in that order, each case found by id (or
    a unit's cases from the unit's index), never a scan of the cases or a sort of the
    history."""
    eng, _ = analyzed
    for viewer in (None, SUPERVISOR):
        with _plans(eng) as plans:
            eng.sla_report(per="month", visible_to=viewer)
        (walk,) = [plan for sql, plan in plans.items() if "lag(history.to_state)" in sql]
        assert "history USING INDEX sqlite_autoindex_history_1" in walk, walk
        for sql, plan in plans.items():
            assert "SCAN cases" not in plan, (sql, plan)


@pytest.mark.postgres
def test_postgresql_walks_the_history_for_the_sla_report_from_its_key_alone(
    pg_only_url: str,
) -> None:
    """The unique index on (case_id, seq) INCLUDEs each row's time and state (0020),
    and the walk can be served by it in order, without a sort — as it is at a million
    cases (docs/benchmarks.md); here, on a few rows, only once sorts and table scans are
    priced out."""
    eng = open_engine(pg_only_url)
    try:
        seen: list[tuple[str, object]] = []

        def note(_c: object, _cur: object, sql: str, params: object, *_rest: object) -> None:
            if "lag(history.to_state)" in sql:
                seen.append((sql, params))

        sa.event.listen(eng.store.engine, "before_cursor_execute", note)
        eng.sla_report()
        sa.event.remove(eng.store.engine, "before_cursor_execute", note)
        ((sql, params),) = seen
        with eng.store.engine.connect() as conn:
            index = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_history_case_id_seq' "
                "AND schemaname = current_schema()"
            ).scalar_one()
            conn.exec_driver_sql("SET enable_sort = off")
            conn.exec_driver_sql("SET enable_seqscan = off")
            rows = conn.exec_driver_sql(f"EXPLAIN (COSTS OFF) {sql}", params).all()  # type: ignore[arg-type]
        plan = "\n".join(row[0] for row in rows)
        assert index.endswith("(case_id, seq) INCLUDE (at, to_state)")
        assert "Index Only Scan using uq_history_case_id_seq on history" in plan, plan
        assert "Sort Key: history.case_id" not in plan, plan
    finally:
        eng.close()
