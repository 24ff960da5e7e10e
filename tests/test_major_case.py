"""Major-case reporting to headquarters (细则第四条 重大案件, issue #6): the 24 hours
from intake, or from the new facts that make a case major later; the report and
headquarters' acknowledgement; once reported, new facts start nothing again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from baoflow.engine import Actor, Engine, FakeClock, GuardRefused, NotPermitted

from tests.conftest import AGENT, HANDLER, SUPERVISOR, report

HQ = Actor("hq1", "总部理赔部", roles=("headquarters",), org_unit="HQ")


def one_death(eng: Engine) -> Any:
    """An accident with one death: not major at intake."""
    data = report(
        policy={"number": "P-ACC-001", "insured_name": "张伟"},
        incident={
            "time": (eng.clock.now() - timedelta(hours=30)).isoformat(),
            "cause": "accident",
            "injury": "death",
            "deaths": 1,
        },
    )
    case = eng.open_case("claim", data, AGENT).case
    assert case.data["major"] == {"is_major": False, "criteria": []}
    return case


def major_deadline(eng: Engine, case_id: int) -> list[Any]:
    return [d for d in eng.deadlines(case_id) if d.rule == "major_report"]


@pytest.mark.parametrize(
    "facts, criterion",
    [
        ({"deaths": 2}, 1),
        ({"expected_amount": "800000"}, 2),
        ({"dispute": {"disagreement": True, "media_involved": True}}, 3),
        ({"dispute": {"litigation": "filed"}}, 4),
    ],
)
def test_new_facts_make_a_claim_major_and_start_its_24_hours_then(
    eng: Engine, clock: FakeClock, facts: dict[str, Any], criterion: int
) -> None:
    case = one_death(eng)
    assert major_deadline(eng, case.id) == []
    clock.advance(days=2)
    case = eng.fire(case.id, "update_facts", HANDLER, {**facts, "note": "家属来电告知新情况"})
    assert case.data["major"]["is_major"] and criterion in case.data["major"]["criteria"]
    (deadline,) = major_deadline(eng, case.id)
    assert deadline.due_at == clock.now() + timedelta(hours=24)
    notes = eng.history(case.id)[-1].notes
    assert "新情况使本案成为重大案件：自现在起24小时内向总部呈报" in notes


def test_the_report_stops_the_clock_and_later_facts_start_nothing_again(
    eng: Engine, clock: FakeClock
) -> None:
    case = one_death(eng)
    eng.fire(case.id, "update_facts", HANDLER, {"deaths": 2, "note": "第二人死亡"})
    clock.advance(hours=5)
    eng.fire(
        case.id,
        "report_to_headquarters",
        SUPERVISOR,
        {"summary": "一次事故2人死亡", "estimated_amount": "600000"},
    )
    (deadline,) = major_deadline(eng, case.id)
    assert deadline.status == "met"
    eng.fire(case.id, "update_facts", HANDLER, {"deaths": 3, "note": "第三人死亡"})
    assert [d.status for d in major_deadline(eng, case.id)] == ["met"]


def test_a_case_major_at_intake_keeps_its_one_clock_through_new_facts(
    eng: Engine, clock: FakeClock
) -> None:
    data = report(
        policy={"number": "P-ACC-001", "insured_name": "张伟"},
        incident={"cause": "accident", "injury": "death", "deaths": 2},
    )
    case = eng.open_case("claim", data, AGENT).case
    (before,) = major_deadline(eng, case.id)
    clock.advance(hours=5)  # new facts later: a clock started again would end later too
    eng.fire(case.id, "update_facts", HANDLER, {"deaths": 3, "note": "又一人死亡"})
    (after,) = major_deadline(eng, case.id)
    assert after.due_at == before.due_at  # the 24 hours ran from the report
    assert (after.started_at, after.status) == (before.started_at, "running")


def test_headquarters_acknowledges_a_report_it_has(eng: Engine) -> None:
    case = one_death(eng)
    with pytest.raises(GuardRefused, match="no major-case report has been made"):
        eng.fire(case.id, "acknowledge_report", HQ, {"note": "已收到"})
    eng.fire(case.id, "update_facts", HANDLER, {"deaths": 2, "note": "第二人死亡"})
    eng.fire(case.id, "report_to_headquarters", SUPERVISOR, {"summary": "一次事故2人死亡"})
    with pytest.raises(NotPermitted):  # only headquarters acknowledges
        eng.fire(case.id, "acknowledge_report", SUPERVISOR, {"note": "已收到"})
    case = eng.fire(case.id, "acknowledge_report", HQ, {"note": "已收到，请每日报告进展"})
    assert case.data["headquarters_ack"] == {"note": "已收到，请每日报告进展"}
    assert case.data["headquarters_report"]["summary"] == "一次事故2人死亡"
