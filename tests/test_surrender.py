"""Surrender (退保, 细则第五条; 保险法第四十七条): the request with its required reason,
the referral with the documents to bring, the insurer's 30 days chased, withdrawal at
any point (issue #6)."""

from __future__ import annotations

from typing import Any

import pytest
from baoflow.engine import Actor, Engine, FakeClock, InvalidData, NotPermitted

from tests.conftest import AGENT, HANDLER
from tests.test_timers import bj

REQUEST: dict[str, Any] = {
    "channel": "phone",
    "policy": {"number": "P-LIFE-001", "product_name": "终身寿险", "insured_name": "李娜"},
    "customer": {"name": "李娜", "phone": "13912345678"},
    "reason": {"code": "financial", "detail": "家庭开支紧张，无力继续缴费"},
}


def request(eng: Engine, **changes: Any) -> Any:
    return eng.open_case("surrender", {**REQUEST, **changes}, AGENT).case


def notices(eng: Engine, case_id: int) -> list[tuple[str, str]]:
    with eng.store.read() as tx:
        return [(r.template, r.recipient) for r in tx.list_outbox(case_id=case_id)]


@pytest.mark.parametrize("channel", ["phone", "in_person", "fax", "letter"])
def test_a_request_is_taken_through_any_channel_with_its_reason(eng: Engine, channel: str) -> None:
    case = request(eng, channel=channel)
    assert (case.state, case.number[:2]) == ("requested", "TB")
    assert case.data["reason"] == {"code": "financial", "detail": "家庭开支紧张，无力继续缴费"}
    assert case.data["policy"]["product_line"] == "life"  # looked up: one of ours


@pytest.mark.parametrize(
    "reason, location",
    [
        (None, "reason"),
        ({"code": "financial"}, "reason.detail"),
        ({"code": "bored", "detail": "不想要了"}, "reason.code"),
        ({"code": "other", "detail": "  "}, "reason.detail"),
    ],
)
def test_a_surrender_without_a_reason_is_refused_and_nothing_is_stored(
    eng: Engine, reason: Any, location: str
) -> None:
    data = {k: v for k, v in REQUEST.items() if k != "reason"}
    if reason is not None:
        data["reason"] = reason
    with pytest.raises(InvalidData) as exc:
        eng.open_case("surrender", data, AGENT)
    assert location in {p.location for p in exc.value.problems}
    assert eng.find_cases(workflow="surrender") == []


def test_referral_lists_the_documents_and_tells_the_customer(eng: Engine) -> None:
    case = request(eng)
    case = eng.fire(
        case.id, "refer", HANDLER, {"insurer": "中国人寿上海分公司", "extra_documents": ["委托书"]}
    )
    assert case.state == "referred"
    assert case.data["referral"]["documents"][0] == "保险单正本"
    assert case.data["referral"]["documents"][-1] == "委托书"
    assert notices(eng, case.id) == [("surrender_documents", "customer")]
    (deadline,) = eng.deadlines(case.id)
    assert (deadline.rule, deadline.due_at) == ("refund", bj(2026, 6, 6))  # Art. 47: 30 days


def test_the_refund_confirmed_in_time_ends_the_case(eng: Engine, clock: FakeClock) -> None:
    case = request(eng)
    eng.fire(case.id, "refer", HANDLER, {"insurer": "中国人寿上海分公司"})
    clock.advance(days=12)
    case = eng.fire(
        case.id,
        "confirm_refund",
        HANDLER,
        {"amount": "12345.60", "confirmed_at": clock.now().isoformat()},
    )
    assert case.state == "refunded"
    assert case.data["refund"]["amount"] == "12345.60"
    (deadline,) = eng.deadlines(case.id)
    assert deadline.status == "met"


def test_the_insurers_30_days_are_chased_then_escalated(eng: Engine, clock: FakeClock) -> None:
    case = request(eng)
    eng.fire(case.id, "refer", HANDLER, {"insurer": "中国人寿上海分公司"})
    clock.set(bj(2026, 6, 7))  # past the 30 days (end of 06-06)
    eng.run_due_timers()
    events = [h.event for h in eng.history(case.id) if h.event.startswith("deadline_")]
    assert events == ["deadline_warning", "deadline_breach", "deadline_escalation"]
    clock.set(bj(2026, 6, 16))  # five working days after the breach: the supervisor
    eng.run_due_timers()
    assert [b.level for b in eng.breaches(workflow="surrender")] == [2]
    assert eng.get_case(case.id).data["priority"] == 1


@pytest.mark.parametrize("refer_first", [False, True])
def test_the_customer_may_withdraw_before_or_after_referral(eng: Engine, refer_first: bool) -> None:
    case = request(eng)
    if refer_first:
        eng.fire(case.id, "refer", HANDLER, {"insurer": "中国人寿上海分公司"})
    case = eng.fire(case.id, "withdraw", AGENT, {"reason": "客户决定继续持有保单"})
    assert case.state == "withdrawn"
    assert all(d.status != "running" for d in eng.deadlines(case.id))


def test_a_policy_not_ours_is_taken_and_flagged(eng: Engine) -> None:
    case = request(
        eng, policy={"number": "P-XX-999", "product_name": "某险", "insured_name": "李娜"}
    )
    (opened,) = eng.history(case.id)
    assert "不在本机构代理的保单中" in opened.notes[0]


def test_only_the_desk_handles_surrenders(eng: Engine) -> None:
    case = request(eng)
    auditor = Actor("x01", "审计员", roles=("auditor",), org_unit="SH")
    with pytest.raises(NotPermitted):
        eng.fire(case.id, "refer", auditor, {"insurer": "中国人寿上海分公司"})
