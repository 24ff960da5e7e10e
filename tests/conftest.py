"""Fixtures: a fake clock, an engine on SQLite and on PostgreSQL, policies, reports."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from baoflow.engine import (
    SHANGHAI,
    Actor,
    ChineseOfficialCalendar,
    Engine,
    FakeClock,
    SqlPolicyDirectory,
    open_engine,
)
from baoflow.engine.store import normalise_url

# Re-exported: the tests take the example world from here.
from baoflow.workflows.examples import ID_LI as ID_LI
from baoflow.workflows.examples import ID_ZHANG as ID_ZHANG
from baoflow.workflows.examples import ID_ZHANG_2 as ID_ZHANG_2
from baoflow.workflows.examples import POLICIES as POLICIES
from baoflow.workflows.examples import report as report

PG_ENV = "BAOFLOW_TEST_PG_URL"

AGENT = Actor("a01", "李静", roles=("service_agent",), org_unit="SH")
HANDLER = Actor("h01", "王芳", roles=("handler",), org_unit="SH")
SUPERVISOR = Actor("s01", "陈刚", roles=("supervisor",), org_unit="SH")


def pg_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set but CI is: .ci/run must provide PostgreSQL")
        pytest.skip(f"{PG_ENV} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    return url


def upgraded(url: str) -> str:
    """``url`` with its schema made, as ``baoflow db upgrade`` makes it: the other commands
    refuse a SQLite file that does not exist."""
    open_engine(url).close()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a private schema on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'baoflow.db'}"
        return
    yield from _pg_schema()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def module_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``db_url`` for a whole module: what property tests share across their examples."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'baoflow.db'}"
        return
    yield from _pg_schema()


@pytest.fixture
def pg_only_url() -> Iterator[str]:
    yield from _pg_schema()


def _pg_schema() -> Iterator[str]:
    base = normalise_url(pg_url() or "")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI))


@pytest.fixture
def eng(db_url: str, clock: FakeClock) -> Iterator[Engine]:
    # Tests move the clock into years whose holiday arrangement is not published yet
    # (2027, 2028): the default calendar counts them provisionally (tests/test_calendar.py,
    # tests/test_calendar_import.py).
    engine_ = open_engine(db_url, clock=clock, calendar=ChineseOfficialCalendar())
    assert isinstance(engine_.policies, SqlPolicyDirectory)
    engine_.policies.add(POLICIES)
    yield engine_
    engine_.close()
