from baoflow.engine import Engine

from tests.conftest import AGENT, HANDLER, report


def test_a_claim_goes_from_report_to_closed(eng: Engine) -> None:
    opened = eng.open_case("claim", report(), AGENT)
    assert opened.created
    case = opened.case
    assert case.state == "reported"
    assert case.number.startswith("LP-20260506-")
    case = eng.fire(case.number, "verify", HANDLER)
    case = eng.fire(
        case.id,
        "apply",
        HANDLER,
        {
            "applicant_name": "李娜",
            "applicant_id_number": "440304198001010041",
            "relationship": "self",
        },
    )
    case = eng.fire(
        case.id, "receive_materials", HANDLER, {"items": case.data["materials"]["required"]}
    )
    case = eng.fire(case.id, "complete_materials", HANDLER)
    case = eng.fire(case.id, "hand_over", HANDLER, {"insurer": "平安人寿"})
    case = eng.fire(case.id, "close", HANDLER, {"outcome": "paid", "amount": "1200.50"})
    assert case.state == "closed"
    assert [h.event for h in eng.history(case.id)] == [
        "open",
        "register",
        "verify",
        "apply",
        "receive_materials",
        "complete_materials",
        "hand_over",
        "close",
    ]
