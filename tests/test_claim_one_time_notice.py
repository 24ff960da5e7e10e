"""保险法第二十二条, the one-time notice (一次性通知; DOMAIN.md §5.1): what is missing is told
once and completely. Whatever is asked for later — by the insurer after hand-over or by
the desk while it collects — and was not in that first notice is flagged on the case and
in the history row of the request; the request itself is still recorded. With no first
notice (nothing was missing at ``apply``) everything asked for later is flagged. On
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from baoflow.engine import ChineseOfficialCalendar, Engine, FakeClock, InvalidData, open_engine
from baoflow.workflows.claim import CHECKLIST, ClaimSettings, build

from tests.conftest import AGENT, HANDLER, ID_LI, POLICIES, SUPERVISOR, report
from tests.test_delivery import rows

SELF_LI = {"applicant_name": "李娜", "applicant_id_number": ID_LI, "relationship": "self"}
#: The default report's checklist: an accidental fall treated at 仁济医院.
FIRST_NOTICE = [
    "policy_original",
    "premium_receipt",
    "id_insured",
    "claim_form",
    "accident_proof",
    "medical_records",
    "test_results",
    "outpatient_receipts",
]


def applied(eng: Engine) -> Any:
    case = eng.open_case("claim", report(), AGENT).case
    eng.fire(case.id, "verify", HANDLER)
    return eng.fire(case.id, "apply", HANDLER, SELF_LI)


def handed_over(eng: Engine) -> Any:
    case = applied(eng)
    eng.fire(case.id, "receive_materials", HANDLER, {"items": case.data["materials"]["required"]})
    eng.fire(case.id, "complete_materials", HANDLER)
    return eng.fire(case.id, "hand_over", HANDLER, {"insurer": "平安人寿"})


def flags(case: Any) -> list[dict[str, Any]]:
    return list((case.data.get("flags") or {}).get("not_in_one_time_notice", []))


def art22_notes(eng: Engine, case_id: int) -> list[str]:
    """The compliance notes in the history row of the latest request (the row may also
    carry the deadlines' notes, e.g. the insurer's clocks pausing)."""
    return [n for n in eng.history(case_id)[-1].notes if n.startswith("保险法第二十二条")]


# --- the first notice is the yardstick ----------------------------------------------------------
def test_the_application_records_what_the_one_time_notice_listed(eng: Engine) -> None:
    case = applied(eng)
    assert case.data["one_time_notice"] == {
        "at": eng.clock.now().isoformat(),
        "by": "h01",
        "items": FIRST_NOTICE,
    }
    (notice,) = [r for r in rows(eng, case_id=case.id) if r.template == "materials_missing"]
    assert len(notice.context["missing"]) == len(FIRST_NOTICE)  # the same list, as titles


# --- the desk asks for more -------------------------------------------------------------------
def test_the_desk_asking_again_for_an_item_of_the_first_notice_flags_nothing(
    eng: Engine,
) -> None:
    case = applied(eng)
    case = eng.fire(
        case.id,
        "request_materials",
        HANDLER,
        {"items": ["premium_receipt"], "reason": "收据字迹不清，请补交原件"},
    )
    assert case.state == "applied"
    assert case.data["materials"]["requested"] == ["premium_receipt"]
    assert flags(case) == []
    assert eng.history(case.id)[-1].notes == ()


def test_an_item_the_first_notice_did_not_list_is_flagged_and_still_requested(
    eng: Engine, clock: FakeClock
) -> None:
    case = applied(eng)
    clock.advance(days=2)
    case = eng.fire(
        case.id,
        "request_materials",
        SUPERVISOR,
        {"items": ["pathology_report", "claim_form"], "reason": "保险公司核定需病理诊断"},
    )
    last = eng.history(case.id)[-1]
    assert flags(case) == [
        {
            "item": "pathology_report",
            "at": clock.now().isoformat(),
            "by": "s01",
            "by_name": "陈刚",
            "request": "request_materials",
            "seq": last.seq,
        }
    ]
    (note,) = art22_notes(eng, case.id)
    assert note.startswith("保险法第二十二条（一次性通知）：病理报告 (pathology_report)")
    assert "claim_form" not in note  # it was in the first notice
    # recorded all the same: the claimant is told, and completion waits for it
    assert case.data["materials"]["requested"] == ["pathology_report", "claim_form"]
    (told,) = [r for r in rows(eng, case_id=case.id) if r.template == "materials_requested"]
    assert (told.recipient, told.context["items"]) == ("reporter", ["病理报告", "理赔申请书"])
    eng.fire(case.id, "receive_materials", HANDLER, {"items": FIRST_NOTICE})
    with pytest.raises(Exception, match=r"病理报告 \(pathology_report\)"):
        eng.fire(case.id, "complete_materials", HANDLER)
    eng.fire(case.id, "receive_materials", HANDLER, {"items": ["pathology_report"]})
    assert eng.fire(case.id, "complete_materials", HANDLER).state == "materials_complete"


def test_each_later_request_is_its_own_record(eng: Engine) -> None:
    case = applied(eng)
    for reason in ("第一次补充", "第二次补充"):
        case = eng.fire(
            case.id,
            "request_materials",
            HANDLER,
            {"items": ["inpatient_receipts"], "reason": reason},
        )
    assert [(f["item"], f["seq"]) for f in flags(case)] == [
        ("inpatient_receipts", eng.history(case.id)[-2].seq),
        ("inpatient_receipts", eng.history(case.id)[-1].seq),
    ]


def test_the_desks_request_needs_items_and_a_reason(eng: Engine) -> None:
    case = applied(eng)
    with pytest.raises(InvalidData) as err:
        eng.fire(case.id, "request_materials", HANDLER, {"items": ["selfie"]})
    assert {"items.0", "reason"} <= {p.location for p in err.value.problems}


# --- the insurer asks for more after hand-over ----------------------------------------------------
def test_the_insurer_asking_for_an_item_not_in_the_first_notice_is_flagged(eng: Engine) -> None:
    case = handed_over(eng)
    case = eng.fire(
        case.id,
        "insurer_requests_materials",
        HANDLER,
        {"items": ["outpatient_receipts", "pathology_report", "inpatient_receipts"]},
    )
    assert case.state == "awaiting_materials"  # the request is recorded as before
    assert case.data["insurer_request"]["items"] == [
        "outpatient_receipts",
        "pathology_report",
        "inpatient_receipts",
    ]
    assert [(f["item"], f["request"], f["by"]) for f in flags(case)] == [
        ("pathology_report", "insurer_requests_materials", "h01"),
        ("inpatient_receipts", "insurer_requests_materials", "h01"),
    ]
    (note,) = art22_notes(eng, case.id)
    assert "2 item(s) not in the one-time notice: flagged" in note


def test_the_insurer_asking_only_for_items_of_the_first_notice_flags_nothing(
    eng: Engine,
) -> None:
    case = handed_over(eng)
    case = eng.fire(case.id, "insurer_requests_materials", HANDLER, {"items": ["test_results"]})
    assert flags(case) == []
    assert case.state == "awaiting_materials"


# --- no first notice: everything later is flagged ---------------------------------------------------
@pytest.fixture
def nothing_required(db_url: str, clock: FakeClock, tmp_path: Path) -> Iterator[Engine]:
    """A desk's checklist that asks for nothing at the application (every ``when`` is
    empty): the materials are complete at ``apply`` and no notice goes out."""
    text = CHECKLIST.read_text(encoding="utf-8")
    lines = ["when = []" if line.startswith("when = ") else line for line in text.splitlines()]
    path = tmp_path / "empty.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    engine_ = open_engine(
        db_url,
        clock=clock,
        calendar=ChineseOfficialCalendar(),
        workflows=[build(ClaimSettings(checklist=path))],
    )
    engine_.policies.add(POLICIES)  # type: ignore[attr-defined]
    yield engine_
    engine_.close()


def test_with_no_first_notice_every_item_asked_for_later_is_flagged(
    nothing_required: Engine,
) -> None:
    eng = nothing_required
    case = applied(eng)
    assert case.data["materials"]["required"] == []
    assert case.data["one_time_notice"] is None
    assert "materials_missing" not in [r.template for r in rows(eng, case_id=case.id)]
    case = eng.fire(case.id, "complete_materials", HANDLER)
    case = eng.fire(case.id, "hand_over", HANDLER, {"insurer": "平安人寿"})
    case = eng.fire(
        case.id, "insurer_requests_materials", HANDLER, {"items": ["policy_original", "claim_form"]}
    )
    assert [f["item"] for f in flags(case)] == ["policy_original", "claim_form"]
    (note,) = art22_notes(eng, case.id)
    assert "受理时材料齐全、未发首次通知" in note
