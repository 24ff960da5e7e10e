"""Endorsement (批改, 细则第六条; 保险法第二十条): typed changes, at least one; the
application, the insurer, the endorsement recorded or declined; life products keep the
2-and-5-working-day periods of the 2010 standard (issue #6)."""

from __future__ import annotations

from typing import Any

import pytest
from baoflow.engine import Engine, FakeClock, InvalidData

from tests.conftest import AGENT, HANDLER
from tests.test_timers import bj

REQUEST: dict[str, Any] = {
    "channel": "in_person",
    "policy": {"number": "P-LIFE-001", "product_name": "终身寿险", "insured_name": "李娜"},
    "requester": {"name": "李娜", "phone": "13912345678", "relationship": "本人"},
    "changes": [
        {"kind": "beneficiary", "name": "王小明", "relationship": "子女", "share_percent": 100},
        {"kind": "contact", "address": "上海市徐汇区漕溪北路88号"},
    ],
}


def request(eng: Engine, **changes: Any) -> Any:
    return eng.open_case("endorsement", {**REQUEST, **changes}, AGENT).case


def to_submitted(eng: Engine) -> Any:
    case = request(eng)
    eng.fire(
        case.id,
        "receive_application",
        HANDLER,
        {"form_number": "PG-F-0001", "signed_by_policyholder": True},
    )
    return eng.fire(case.id, "submit", HANDLER, {"insurer": "中国人寿上海分公司"})


def test_the_changes_are_recorded_typed_and_the_customer_guided(eng: Engine) -> None:
    case = request(eng)
    assert (case.state, case.number[:2]) == ("requested", "PG")
    assert [c["kind"] for c in case.data["changes"]] == ["beneficiary", "contact"]
    (opened,) = eng.history(case.id)
    assert opened.notes[0] == "批改内容：变更受益人、变更联系方式；请指导客户填写批改申请单"


@pytest.mark.parametrize(
    "changes, location",
    [
        ([], "changes"),
        ([{"kind": "colour", "detail": "蓝色"}], "changes.0"),
        ([{"kind": "contact"}], "changes.0.contact"),
        (
            [{"kind": "payment_account", "bank": "工商银行", "account_number": "12ab"}],
            "changes.0.payment_account.account_number",
        ),
        (
            [{"kind": "beneficiary", "name": "王小明", "relationship": "子女", "share_percent": 0}],
            "changes.0.beneficiary.share_percent",
        ),
    ],
)
def test_an_endorsement_with_no_change_or_a_malformed_one_is_refused(
    eng: Engine, changes: list[Any], location: str
) -> None:
    with pytest.raises(InvalidData) as exc:
        request(eng, changes=changes)
    assert location in {p.location for p in exc.value.problems}, exc.value.problems
    assert eng.find_cases(workflow="endorsement") == []


def test_the_insurers_endorsement_closes_the_case(eng: Engine) -> None:
    case = to_submitted(eng)
    case = eng.fire(case.id, "confirm", HANDLER, {"endorsement_number": "PD-2026-000123"})
    assert case.state == "endorsed"
    assert case.data["endorsement"] == {"endorsement_number": "PD-2026-000123"}


def test_the_insurer_may_decline_with_its_reason(eng: Engine) -> None:
    case = to_submitted(eng)
    case = eng.fire(case.id, "decline", HANDLER, {"reason": "受益人变更需被保险人书面同意"})
    assert case.state == "declined"


def test_the_application_must_be_signed_by_the_policyholder(eng: Engine) -> None:
    case = request(eng)
    with pytest.raises(InvalidData):
        eng.fire(
            case.id,
            "receive_application",
            HANDLER,
            {"form_number": "PG-F-0001", "signed_by_policyholder": False},
        )
    assert eng.get_case(case.id).state == "requested"


@pytest.mark.parametrize("stage", ["requested", "application_received", "submitted"])
def test_the_customer_may_withdraw_at_any_stage(eng: Engine, stage: str) -> None:
    case = request(eng)
    if stage != "requested":
        eng.fire(
            case.id,
            "receive_application",
            HANDLER,
            {"form_number": "PG-F-0001", "signed_by_policyholder": True},
        )
    if stage == "submitted":
        eng.fire(case.id, "submit", HANDLER, {"insurer": "中国人寿上海分公司"})
    assert eng.fire(case.id, "withdraw", AGENT, {"reason": "不再变更"}).state == "withdrawn"


def test_a_life_policy_change_is_accepted_in_2_and_done_in_5_working_days(
    eng: Engine, clock: FakeClock
) -> None:
    case = request(eng)  # Wed 2026-05-06 09:00, a life policy
    (accept,) = eng.deadlines(case.id)
    assert (accept.rule, accept.due_at) == ("accept_change", bj(2026, 5, 9))  # Thu, Fri
    clock.set(bj(2026, 5, 7, 10, 0))
    eng.fire(
        case.id,
        "receive_application",
        HANDLER,
        {"form_number": "PG-F-0001", "signed_by_policyholder": True},
    )
    process = next(d for d in eng.deadlines(case.id) if d.rule == "process_change")
    # Fri 05-08, Sat 05-09 (a make-up working day), Mon, Tue, Wed 05-13
    assert process.due_at == bj(2026, 5, 14)
    assert [d.status for d in eng.deadlines(case.id) if d.rule == "accept_change"] == ["met"]


def test_a_non_life_policy_has_no_such_periods(eng: Engine) -> None:
    case = request(
        eng, policy={"number": "P-ACC-001", "product_name": "综合意外险", "insured_name": "张伟"}
    )
    assert eng.deadlines(case.id) == []
