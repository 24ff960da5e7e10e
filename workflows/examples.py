"""Example claim data: four policies and a complete report.

The same small world serves the tests (``tests/conftest.py``), the benchmark
(``bench/fire.py``) and anyone trying the engine out. The identity numbers carry valid
GB 11643 check digits and belong to nobody.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from baoflow.engine import Policy

ID_ZHANG = "110101199003074514"
ID_ZHANG_2 = "31010119850215233X"
ID_LI = "440304198001010041"

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
