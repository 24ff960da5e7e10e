"""Claim application, materials, hand-over, closing and withdrawal (细则第四条(四)(五); DOMAIN.md §1.7-1.9).

The right to claim (保险金请求权) is checked when the application is taken; the
checklist of materials follows from the facts of the case (收集理赔资料 1-7); what is
missing is told once and completely (保险法第二十二条). The `eng` fixture runs each test
on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from baoflow.engine import SHANGHAI, Engine, EventNotAllowed, GuardRefused, InvalidData, Policy
from baoflow.workflows.claim import required_materials

from tests.conftest import AGENT, HANDLER, ID_LI, ID_ZHANG, ID_ZHANG_2, SUPERVISOR, report

ID_WANG = "320102199208081238"  # 王磊, beneficiary of P-LIFE-001 (valid GB 11643, fictitious)
ID_QIAN = "110101199003071938"  # 钱芳, insured of P-HOME-001 below

BASICS = ["policy_original", "premium_receipt", "id_insured", "claim_form"]
MEDICAL = ["medical_records", "test_results", "outpatient_receipts"]

# P-ACC-002 names no beneficiary
ZHANG_2 = {"number": "P-ACC-002", "product_name": "综合意外险", "insured_name": "张伟"}
QIAN = {"number": "P-HOME-001", "product_name": "家庭综合险", "insured_name": "钱芳"}
QIAN_POLICY = Policy(
    number="P-HOME-001",
    product_name="家庭综合险",
    product_line="property",
    insured_name="钱芳",
    insured_id_number=ID_QIAN,
    start_date=date(2026, 1, 1),
    end_date=date(2026, 12, 31),
    coverages=("fire", "theft", "natural_disaster", "illness", "other"),
    sum_insured=Decimal("200000"),
)
#: The plainest incident: nothing accidental, nobody hurt, no treatment.
PLAIN = {"cause": "other", "injury": "none", "hospital": None}
DEATH = {"injury": "death", "deaths": 1, "hospital": None}


@pytest.fixture
def eng(eng: Engine) -> Engine:
    eng.policies.add([QIAN_POLICY])  # type: ignore[attr-defined]
    return eng


def verified(eng: Engine, **overrides: Any) -> Any:
    case = eng.open_case("claim", report(**overrides), AGENT).case
    case = eng.fire(case.id, "verify", HANDLER)
    assert case.state == "verified"
    return case


def application(name: str, id_number: str, relationship: str, **extra: Any) -> dict[str, Any]:
    return {
        "applicant_name": name,
        "applicant_id_number": id_number,
        "relationship": relationship,
        **extra,
    }


SELF_LI = application("李娜", ID_LI, "self")
SELF_QIAN = application("钱芳", ID_QIAN, "self")


def applied(eng: Engine, app: dict[str, Any] = SELF_LI, **overrides: Any) -> Any:
    case = verified(eng, **overrides)
    case = eng.fire(case.id, "apply", HANDLER, app)
    assert case.state == "applied"
    return case


def complete(eng: Engine, **overrides: Any) -> Any:
    case = applied(eng, **overrides)
    case = eng.fire(
        case.id, "receive_materials", HANDLER, {"items": case.data["materials"]["required"]}
    )
    return eng.fire(case.id, "complete_materials", HANDLER)


def handed_over(eng: Engine) -> Any:
    case = complete(eng)
    return eng.fire(
        case.id, "hand_over", HANDLER, {"insurer": "平安人寿", "reference": "PA-2026-0001"}
    )


def refused_apply(eng: Engine, case_id: int, app: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(GuardRefused) as err:
        eng.fire(case_id, "apply", HANDLER, app)
    assert eng.get_case(case_id).state == "verified"
    return err.value.reasons


# --- 1.7 the right to claim (保险金请求权) ---------------------------------------------------------
def test_the_insured_may_claim_for_themself_with_matching_name_and_id(eng: Engine) -> None:
    case = applied(eng, SELF_LI)
    assert case.data["application"] == {**SELF_LI, "power_of_attorney": False}


def test_a_self_claim_with_another_id_number_is_refused(eng: Engine) -> None:
    case = verified(eng)
    reasons = refused_apply(eng, case.id, application("李娜", ID_ZHANG, "self"))
    assert "do not match the insured" in reasons[0]


def test_a_self_claim_with_an_id_number_either_side_of_the_insured_s_is_refused(
    eng: Engine,
) -> None:
    """Another number is another person, whether it sorts before or after the insured's."""
    case = verified(eng, policy=QIAN, incident=PLAIN)  # 钱芳's number sorts first
    assert ID_QIAN < ID_WANG
    reasons = refused_apply(eng, case.id, application("钱芳", ID_WANG, "self"))
    assert "do not match the insured" in reasons[0]


@pytest.mark.parametrize("name", ["李梅", "李丽"])  # sorting after 李娜, and before
def test_a_self_claim_under_another_name_is_refused(eng: Engine, name: str) -> None:
    case = verified(eng)
    refused_apply(eng, case.id, application(name, ID_LI, "self"))


def test_a_named_beneficiary_may_claim(eng: Engine) -> None:
    """P-LIFE-001 names 王磊 as beneficiary."""
    case = verified(eng, incident=DEATH)
    case = eng.fire(case.id, "apply", HANDLER, application("王磊", ID_WANG, "beneficiary"))
    assert case.state == "applied"


def test_someone_not_named_as_beneficiary_may_not_claim_as_one(eng: Engine) -> None:
    case = verified(eng, incident=DEATH)
    reasons = refused_apply(eng, case.id, application("王强", ID_WANG, "beneficiary"))
    assert "not a named beneficiary" in reasons[0]


@pytest.mark.parametrize("relationship", ["spouse", "child", "parent"])
def test_an_heir_may_claim_for_a_deceased_insured_with_no_named_beneficiary(
    eng: Engine, relationship: str
) -> None:
    """P-ACC-002 names no beneficiary: the statutory heirs claim."""
    case = verified(eng, policy=ZHANG_2, incident=DEATH)
    case = eng.fire(case.id, "apply", HANDLER, application("刘芳", ID_WANG, relationship))
    assert case.state == "applied"


def test_an_heir_may_not_claim_over_a_named_beneficiary(eng: Engine) -> None:
    case = verified(eng, incident=DEATH)  # P-LIFE-001 names 王磊
    refused_apply(eng, case.id, application("李军", ID_WANG, "child"))


def test_a_relative_of_a_living_insured_needs_a_power_of_attorney(eng: Engine) -> None:
    case = verified(eng)
    refused_apply(eng, case.id, application("王磊", ID_WANG, "spouse"))
    case = eng.fire(
        case.id, "apply", HANDLER, application("王磊", ID_WANG, "spouse", power_of_attorney=True)
    )
    assert case.state == "applied"


@pytest.mark.parametrize("injury", ["burn", "minor"])  # one sorts before "death", one after
def test_a_relative_of_a_living_injured_insured_needs_a_power_of_attorney(
    eng: Engine, injury: str
) -> None:
    """Only a death makes the relatives heirs: an injury does not, even on a policy that
    names no beneficiary; a guardian acts for the living insured."""
    case = verified(eng, policy=ZHANG_2, incident={"injury": injury})
    reasons = refused_apply(eng, case.id, application("刘芳", ID_WANG, "spouse"))
    assert "power of attorney" in reasons[0]
    guardian = application("刘芳", ID_WANG, "guardian")
    assert eng.fire(case.id, "apply", HANDLER, guardian).state == "applied"


def test_a_guardian_claims_for_a_living_insured_and_not_after_a_death(eng: Engine) -> None:
    """A guardian (监护人) acts for the insured while they live; after a death the
    beneficiaries or heirs claim (issue #15 item 8: this rule survived a mutation)."""
    living = verified(eng)
    guardian = application("王磊", ID_WANG, "guardian")
    assert eng.fire(living.id, "apply", HANDLER, guardian).state == "applied"
    dead = verified(eng, policy=ZHANG_2, incident=DEATH)
    assert "after a death the heirs claim" in refused_apply(eng, dead.id, guardian)[0]


def test_the_insured_cannot_claim_for_themself_after_their_death(eng: Engine) -> None:
    case = verified(eng, policy=ZHANG_2, incident=DEATH)
    reasons = refused_apply(eng, case.id, application("张伟", ID_ZHANG_2, "self"))
    assert "beneficiary or heir" in reasons[0]


def test_anyone_else_without_a_power_of_attorney_is_refused(eng: Engine) -> None:
    case = verified(eng)
    reasons = refused_apply(eng, case.id, application("赵六", ID_WANG, "other"))
    assert "power of attorney" in reasons[0]


def test_anyone_else_with_a_power_of_attorney_may_claim(eng: Engine) -> None:
    case = verified(eng)
    case = eng.fire(
        case.id, "apply", HANDLER, application("赵六", ID_WANG, "other", power_of_attorney=True)
    )
    assert case.state == "applied"
    assert case.data["application"]["power_of_attorney"] is True


# --- 1.8 the checklist follows from the facts --------------------------------------------------------
def test_the_basic_materials_are_always_required(eng: Engine) -> None:
    """收集理赔资料 1: policy original, premium receipt, ID documents, claim form."""
    case = applied(eng, SELF_QIAN, policy=QIAN, incident=PLAIN)
    assert case.data["materials"] == {"required": BASICS, "received": []}


def test_an_applicant_other_than_the_insured_adds_their_id_document(eng: Engine) -> None:
    case = applied(
        eng,
        application("钱明", ID_WANG, "other", power_of_attorney=True),
        policy=QIAN,
        incident=PLAIN,
    )
    assert case.data["materials"]["required"] == [*BASICS, "id_beneficiary"]


def test_a_death_requires_the_death_certificate(eng: Engine) -> None:
    case = applied(
        eng, application("钱明", ID_WANG, "spouse"), policy=QIAN, incident={**PLAIN, **DEATH}
    )
    assert case.data["materials"]["required"] == [*BASICS, "id_beneficiary", "death_certificate"]


@pytest.mark.parametrize(
    ("injury", "proof"), [("disability", "disability_proof"), ("burn", "burn_proof")]
)
def test_a_disability_or_burn_requires_its_proof_and_the_medical_proof(
    eng: Engine, injury: str, proof: str
) -> None:
    case = applied(eng, SELF_QIAN, policy=QIAN, incident={**PLAIN, "injury": injury})
    assert case.data["materials"]["required"] == [*BASICS, proof, *MEDICAL]


def test_treatment_at_a_hospital_requires_the_medical_proof(eng: Engine) -> None:
    case = applied(eng, SELF_QIAN, policy=QIAN, incident={**PLAIN, "hospital": "华山医院"})
    assert case.data["materials"]["required"] == [*BASICS, *MEDICAL]


def test_an_illness_requires_the_medical_proof(eng: Engine) -> None:
    case = applied(eng, SELF_QIAN, policy=QIAN, incident={**PLAIN, "cause": "illness"})
    assert case.data["materials"]["required"] == [*BASICS, *MEDICAL]


def test_a_hospital_stay_requires_the_inpatient_receipts(eng: Engine) -> None:
    case = applied(
        eng,
        SELF_QIAN,
        policy=QIAN,
        incident={**PLAIN, "hospital": "华山医院", "hospitalised": True},
    )
    assert case.data["materials"]["required"] == [*BASICS, *MEDICAL, "inpatient_receipts"]


def test_property_damage_requires_the_repair_invoices(eng: Engine) -> None:
    case = applied(eng, SELF_QIAN, policy=QIAN, incident={**PLAIN, "property_damage": True})
    assert case.data["materials"]["required"] == [*BASICS, "repair_invoices"]


@pytest.mark.parametrize("cause", ["fire", "theft", "natural_disaster"])
def test_an_accidental_cause_requires_the_accident_proof(eng: Engine, cause: str) -> None:
    case = applied(eng, SELF_QIAN, policy=QIAN, incident={**PLAIN, "cause": cause})
    assert case.data["materials"]["required"] == [*BASICS, "accident_proof"]


def test_an_accident_requires_the_accident_proof(eng: Engine) -> None:
    case = applied(eng, incident={"injury": "none", "hospital": None})  # P-LIFE-001
    assert case.data["materials"]["required"] == [*BASICS, "accident_proof"]


def test_the_default_report_requires_accident_and_medical_proof(eng: Engine) -> None:
    """An accidental fall treated at 仁济医院."""
    case = applied(eng)
    assert case.data["materials"]["required"] == [*BASICS, "accident_proof", *MEDICAL]


def test_the_checklist_combines_every_fact_that_applies() -> None:
    data = {
        "incident": {
            "cause": "fire",
            "injury": "burn",
            "hospital": "瑞金医院",
            "hospitalised": True,
            "property_damage": True,
        },
        "application": {"relationship": "spouse"},
    }
    assert [m.value for m in required_materials(data)] == [
        *BASICS,
        "id_beneficiary",
        "accident_proof",
        "burn_proof",
        *MEDICAL,
        "inpatient_receipts",
        "repair_invoices",
    ]


# --- materials: received, missing, complete (保险法第二十二条 一次性通知) ------------------------------
def test_completing_with_materials_missing_names_every_missing_item_in_one_reason(
    eng: Engine,
) -> None:
    case = applied(eng)
    case = eng.fire(
        case.id, "receive_materials", HANDLER, {"items": ["policy_original", "claim_form"]}
    )
    with pytest.raises(GuardRefused) as err:
        eng.fire(case.id, "complete_materials", HANDLER)
    reasons = err.value.reasons
    assert len(reasons) == 1
    missing = ["premium_receipt", "id_insured", "accident_proof", *MEDICAL]
    for item in missing:
        assert f"({item})" in reasons[0]
    assert "(policy_original)" not in reasons[0] and "(claim_form)" not in reasons[0]
    assert f"{len(missing)} item(s) missing" in reasons[0]
    assert eng.get_case(case.id).state == "applied"


def test_completing_with_nothing_received_lists_the_whole_checklist(eng: Engine) -> None:
    case = applied(eng)
    with pytest.raises(GuardRefused) as err:
        eng.fire(case.id, "complete_materials", HANDLER)
    assert len(err.value.reasons) == 1
    assert all(f"({m})" in err.value.reasons[0] for m in case.data["materials"]["required"])


def test_the_materials_are_complete_once_every_required_item_is_received(eng: Engine) -> None:
    case = applied(eng)
    case = eng.fire(
        case.id, "receive_materials", HANDLER, {"items": case.data["materials"]["required"]}
    )
    assert eng.history(case.id)[-1].notes == ("材料已齐全",)
    case = eng.fire(case.id, "complete_materials", HANDLER)
    assert case.state == "materials_complete"
    assert datetime.fromisoformat(case.data["timeline"]["materials_complete_at"]) == datetime(
        2026, 5, 6, 9, 0, tzinfo=SHANGHAI
    )


def test_receiving_materials_is_cumulative(eng: Engine) -> None:
    case = applied(eng)
    required = case.data["materials"]["required"]
    case = eng.fire(case.id, "receive_materials", HANDLER, {"items": required[:3]})
    case = eng.fire(case.id, "receive_materials", HANDLER, {"items": [required[1], *required[3:]]})
    assert case.state == "applied"
    assert case.data["materials"]["received"] == required
    assert eng.fire(case.id, "complete_materials", HANDLER).state == "materials_complete"


def test_receiving_materials_notes_what_is_still_missing(eng: Engine) -> None:
    case = applied(eng, SELF_QIAN, policy=QIAN, incident=PLAIN)
    eng.fire(
        case.id, "receive_materials", HANDLER, {"items": ["policy_original", "premium_receipt"]}
    )
    assert eng.history(case.id)[-1].notes == ("仍缺：被保险人身份证件、理赔申请书",)


def test_receiving_nothing_is_invalid(eng: Engine) -> None:
    case = applied(eng)
    with pytest.raises(InvalidData) as err:
        eng.fire(case.id, "receive_materials", HANDLER, {"items": []})
    assert err.value.problems[0].location == "items"


def test_receiving_an_unknown_material_is_invalid(eng: Engine) -> None:
    case = applied(eng)
    with pytest.raises(InvalidData) as err:
        eng.fire(case.id, "receive_materials", HANDLER, {"items": ["policy_original", "selfie"]})
    assert err.value.problems[0].location == "items.1"
    assert eng.get_case(case.id).data["materials"]["received"] == []


# --- 1.9 hand-over and closing ---------------------------------------------------------------------
def test_handing_over_records_the_insurer_and_the_time(eng: Engine) -> None:
    case = handed_over(eng)
    assert case.state == "handed_over"
    assert case.data["handover"] == {"insurer": "平安人寿", "reference": "PA-2026-0001"}
    assert "handed_over_at" in case.data["timeline"]


def test_a_paid_claim_closes_with_the_amount(eng: Engine) -> None:
    case = handed_over(eng)
    case = eng.fire(case.id, "close", HANDLER, {"outcome": "paid", "amount": "3200.50"})
    assert case.state == "closed"
    assert case.data["outcome"] == {"outcome": "paid", "amount": "3200.50"}


@pytest.mark.parametrize("outcome", ["paid", "partially_paid"])
def test_a_paid_claim_cannot_close_without_the_amount(eng: Engine, outcome: str) -> None:
    case = handed_over(eng)
    with pytest.raises(InvalidData) as err:
        eng.fire(case.id, "close", HANDLER, {"outcome": outcome})
    assert "needs the amount paid" in str(err.value)
    assert eng.get_case(case.id).state == "handed_over"


def test_a_declined_claim_closes_without_an_amount(eng: Engine) -> None:
    case = handed_over(eng)
    case = eng.fire(
        case.id, "close", HANDLER, {"outcome": "declined", "note": "保险公司拒赔：免责条款"}
    )
    assert case.state == "closed"
    assert case.data["outcome"] == {"outcome": "declined", "note": "保险公司拒赔：免责条款"}


def test_a_claim_cannot_be_handed_over_before_the_materials_are_complete(eng: Engine) -> None:
    case = applied(eng)
    with pytest.raises(EventNotAllowed) as err:
        eng.fire(case.id, "hand_over", HANDLER, {"insurer": "平安人寿"})
    assert err.value.state == "applied"


# --- withdrawal ---------------------------------------------------------------------------------------
def _in_state(eng: Engine, state: str) -> Any:
    if state == "unmatched":
        return eng.open_case(
            "claim", report(policy={"number": "P-X-1", "insured_name": "孙丽"}), AGENT
        ).case
    if state == "identity_pending":
        return eng.open_case(
            "claim", report(policy={"number": None, "insured_name": "张伟"}), AGENT
        ).case
    if state == "reported":
        return eng.open_case("claim", report(), AGENT).case
    if state == "verified":
        return verified(eng)
    if state == "applied":
        return applied(eng)
    if state == "materials_complete":
        return complete(eng)
    return handed_over(eng)


@pytest.mark.parametrize(
    "state",
    [
        "unmatched",
        "identity_pending",
        "reported",
        "verified",
        "applied",
        "materials_complete",
        "handed_over",
    ],
)
def test_a_case_may_be_withdrawn_with_a_reason_from_any_open_state(eng: Engine, state: str) -> None:
    case = _in_state(eng, state)
    assert case.state == state
    case = eng.fire(case.id, "withdraw", HANDLER, {"reason": "报案人来电撤案"})
    assert case.state == "withdrawn"
    assert case.data["withdrawal"] == {"reason": "报案人来电撤案"}
    last = eng.history(case.id)[-1]
    assert (last.event, last.from_state, last.to_state) == ("withdraw", state, "withdrawn")


def test_a_withdrawal_needs_a_reason(eng: Engine) -> None:
    case = eng.open_case("claim", report(), AGENT).case
    with pytest.raises(InvalidData) as err:
        eng.fire(case.id, "withdraw", HANDLER)
    assert err.value.problems[0].location == "reason"
    with pytest.raises(InvalidData):
        eng.fire(case.id, "withdraw", HANDLER, {"reason": "   "})
    assert eng.get_case(case.id).state == "reported"


def _final(eng: Engine, state: str) -> Any:
    if state == "closed":
        case = handed_over(eng)
        return eng.fire(case.id, "close", HANDLER, {"outcome": "declined"})
    if state == "rejected":
        case = eng.open_case(
            "claim",
            report(
                policy={"number": "P-OLD-001", "insured_name": "赵强"},
                incident={"cause": "fire", "time": "2025-03-01T10:00:00+08:00"},
            ),
            AGENT,
        ).case
        return eng.fire(
            case.id,
            "reject",
            SUPERVISOR,
            {"reasons": ["outside_policy_period"], "notice": "保单已满期"},
        )
    case = eng.open_case("claim", report(), AGENT).case
    return eng.fire(case.id, "withdraw", HANDLER, {"reason": "撤案"})


@pytest.mark.parametrize("state", ["closed", "rejected", "withdrawn"])
def test_a_case_in_a_final_state_cannot_be_withdrawn(eng: Engine, state: str) -> None:
    case = _final(eng, state)
    assert case.state == state
    with pytest.raises(EventNotAllowed) as err:
        eng.fire(case.id, "withdraw", HANDLER, {"reason": "再撤一次"})
    assert err.value.state == state
    assert err.value.allowed == ()
    assert f"it is in {state!r}" in str(err.value)
    assert eng.get_case(case.id).version == case.version
