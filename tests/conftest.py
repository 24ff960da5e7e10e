"""Fixtures: a fake clock, an engine on SQLite and on PostgreSQL, policies, reports."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine import SHANGHAI, Actor, Engine, FakeClock, Policy, SqlPolicyDirectory, open_engine
from engine.store import normalise_url

PG_ENV = "BAOFLOW_TEST_PG_URL"

AGENT = Actor("a01", "李静", roles=("service_agent",), org_unit="SH")
HANDLER = Actor("h01", "王芳", roles=("handler",), org_unit="SH")
SUPERVISOR = Actor("s01", "陈刚", roles=("supervisor",), org_unit="SH")

# Valid GB 11643 identity numbers (check digits computed, not real people).
ID_ZHANG = "110101199003074514"
ID_ZHANG_2 = "31010119850215233X"
ID_LI = "440304198001010041"


def pg_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set but CI is: .ci/run must provide PostgreSQL")
        pytest.skip(f"{PG_ENV} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a private schema on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'baoflow.db'}"
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


POLICIES = [
    Policy(
        number="P-ACC-001",
        product_name="综合意外险",
        product_line="accident",
        insured_name="张伟",
        insured_id_number=ID_ZHANG,
        start_date=date(2026, 1, 1),
        end_date=date(2026, 12, 31),
        coverages=("accident", "fire"),
        sum_insured=Decimal("300000"),
        beneficiaries=("张敏",),
    ),
    Policy(
        number="P-ACC-002",
        product_name="综合意外险",
        product_line="accident",
        insured_name="张伟",
        insured_id_number=ID_ZHANG_2,
        start_date=date(2025, 6, 1),
        end_date=date(2026, 5, 31),
        coverages=("accident",),
        sum_insured=Decimal("200000"),
    ),
    Policy(
        number="P-LIFE-001",
        product_name="终身寿险",
        product_line="life",
        insured_name="李娜",
        insured_id_number=ID_LI,
        start_date=date(2018, 3, 1),
        end_date=date(2068, 2, 28),
        coverages=("accident", "illness"),
        sum_insured=Decimal("800000"),
        beneficiaries=("王磊",),
    ),
    Policy(
        number="P-OLD-001",
        product_name="家庭财产险",
        product_line="property",
        insured_name="赵强",
        insured_id_number="110101197505056210",
        start_date=date(2022, 1, 1),
        end_date=date(2024, 12, 31),
        coverages=("fire", "theft"),
        sum_insured=Decimal("100000"),
    ),
]


@pytest.fixture
def eng(db_url: str, clock: FakeClock) -> Iterator[Engine]:
    engine_ = open_engine(db_url, clock=clock)
    assert isinstance(engine_.policies, SqlPolicyDirectory)
    engine_.policies.add(POLICIES)
    yield engine_
    engine_.close()


def report(**overrides: Any) -> dict[str, Any]:
    """A complete, valid claim report; keyword arguments replace parts of it.

    ``policy=...``, ``incident=...`` and ``reporter=...`` are merged into the defaults.
    """
    base: dict[str, Any] = {
        "channel": "phone",
        "policy": {"number": "P-LIFE-001", "product_name": "终身寿险", "insured_name": "李娜"},
        "incident": {
            "time": "2026-05-04T15:30:00+08:00",
            "place": "上海市浦东新区世纪大道100号",
            "cause": "accident",
            "course": "下楼梯时摔倒",
            "injury": "minor",
            "measures": "送医治疗",
            "condition": "已出院",
            "hospital": "仁济医院",
        },
        "reporter": {
            "name": "王磊",
            "address": "上海市浦东新区张杨路1号",
            "phone": "13812345678",
            "relationship": "配偶",
        },
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base
