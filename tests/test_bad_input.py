"""Every bad input gets a clear error of the engine.errors hierarchy, and nothing stored changes.

Each test takes a snapshot of what is stored (the case's version, state, data and
history; the cases that exist), makes the bad request, checks the error and its typed
fields, and checks the snapshot again. The `eng` fixture runs each test on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest
from baoflow.engine import (
    BaoflowError,
    CaseNotFound,
    ConflictError,
    Engine,
    EventNotAllowed,
    GuardRefused,
    IdempotencyKeyReused,
    InvalidData,
    UnknownEvent,
    UnknownWorkflow,
)

from tests.conftest import AGENT, HANDLER, ID_LI, report

BAD_CHECK_DIGIT = "110101199003074515"  # ID_ZHANG with its last digit changed


@dataclass(frozen=True)
class Stored:
    """What the database holds, as far as a test can see it through the API."""

    cases: tuple[tuple[int, str, str, int], ...]
    case: tuple[int, str, Any, Any] | None
    history: int | None


def stored(eng: Engine, case_id: int | None = None) -> Stored:
    cases = tuple((c.id, c.number, c.state, c.version) for c in eng.find_cases())
    if case_id is None:
        return Stored(cases, None, None)
    c = eng.get_case(case_id)
    return Stored(
        cases,
        (c.version, c.state, copy.deepcopy(dict(c.data)), c.updated_at),
        len(eng.history(case_id)),
    )


@pytest.fixture
def case(eng: Engine) -> Any:
    """A registered claim (state 'reported', P-LIFE-001)."""
    opened = eng.open_case("claim", report(), AGENT).case
    assert opened.state == "reported"
    return opened


def locations(err: InvalidData) -> set[str]:
    return {p.location for p in err.problems}


def test_every_error_is_a_baoflow_error() -> None:
    for kind in (
        CaseNotFound,
        ConflictError,
        EventNotAllowed,
        GuardRefused,
        IdempotencyKeyReused,
        InvalidData,
        UnknownEvent,
        UnknownWorkflow,
    ):
        assert issubclass(kind, BaoflowError)


# --- unknown names ------------------------------------------------------------------------------
def test_an_unknown_workflow_is_named_with_the_known_ones(eng: Engine) -> None:
    before = stored(eng)
    with pytest.raises(UnknownWorkflow) as err:
        eng.open_case("claims", report(), AGENT)
    assert err.value.name == "claims"
    assert "claim" in err.value.known
    assert "no workflow 'claims' is registered" in str(err.value)
    assert (
        "Known workflows: " in str(err.value)
        and "claim" in str(err.value).split("Known workflows: ")[1]
    )
    assert stored(eng) == before
    assert eng.find_cases() == []


def test_searching_an_unknown_workflow_is_an_error_not_an_empty_list(eng: Engine) -> None:
    with pytest.raises(UnknownWorkflow):
        eng.find_cases(workflow="claims")


@pytest.mark.parametrize(
    "ref", [999999, "999999", "LP-20260506-999999"], ids=["id", "id-text", "number"]
)
def test_an_unknown_case_is_not_found(eng: Engine, case: Any, ref: int | str) -> None:
    before = stored(eng, case.id)
    for call in (
        lambda: eng.get_case(ref),
        lambda: eng.history(ref),
        lambda: eng.available_events(ref),
        lambda: eng.fire(ref, "verify", HANDLER),
    ):
        with pytest.raises(CaseNotFound) as err:
            call()
        assert err.value.ref == ref
        assert repr(ref) in str(err.value)
    assert stored(eng, case.id) == before


def test_a_case_is_found_by_its_id_and_by_its_number(eng: Engine, case: Any) -> None:
    assert eng.get_case(case.id) == eng.get_case(case.number) == eng.get_case(str(case.id))


def test_an_unknown_event_is_named_with_the_workflows_events(eng: Engine, case: Any) -> None:
    before = stored(eng, case.id)
    with pytest.raises(UnknownEvent) as err:
        eng.fire(case.id, "approve", HANDLER)
    assert err.value.event == "approve"
    assert err.value.workflow == "claim"
    assert {"verify", "reject", "apply", "withdraw", "close"} <= set(err.value.known)
    assert "has no event 'approve'" in str(err.value) and "verify" in str(err.value)
    assert stored(eng, case.id) == before


# --- the state machine ----------------------------------------------------------------------------
def test_an_event_the_state_does_not_allow_names_the_state_and_the_allowed_events(
    eng: Engine, case: Any
) -> None:
    before = stored(eng, case.id)
    with pytest.raises(EventNotAllowed) as err:
        eng.fire(case.id, "hand_over", HANDLER, {"insurer": "平安人寿"})
    assert err.value.state == "reported"
    assert err.value.allowed == (
        "verify",
        "reject",
        "report_to_headquarters",
        "acknowledge_report",
        "request_survey",
        "record_survey_assistance",
        "complete_survey",
        "assign",
        "update_facts",
        "withdraw",
    )
    assert err.value.case_number == case.number
    assert (
        "it is in 'reported'. The events of 'reported' are: verify, reject, report_to_headquarters, "
        "acknowledge_report, request_survey, record_survey_assistance, complete_survey, "
        "assign, update_facts, withdraw (their guards may still refuse them" in str(err.value)
    )
    assert stored(eng, case.id) == before


def test_an_event_on_a_case_that_has_ended_says_its_state_has_no_events(
    eng: Engine, case: Any
) -> None:
    eng.fire(case.id, "withdraw", HANDLER, {"reason": "撤案"})
    before = stored(eng, case.id)
    with pytest.raises(EventNotAllowed) as err:
        eng.fire(case.id, "verify", HANDLER)
    assert err.value.allowed == ()
    assert str(err.value).endswith(
        "it is in 'withdrawn'. 'withdrawn' has no events (the case is closed)."
    )
    assert stored(eng, case.id) == before


def test_a_guard_refusal_gives_its_reasons(eng: Engine, case: Any) -> None:
    before = stored(eng, case.id)
    with pytest.raises(GuardRefused) as err:
        eng.fire(case.id, "reject", HANDLER, {"reasons": ["not_covered"], "notice": "不属保障范围"})
    assert err.value.event == "reject"
    assert err.value.case_number == case.number
    assert len(err.value.reasons) == 1 and "not_covered" in err.value.reasons[0]
    assert err.value.reasons[0] in str(err.value)
    assert stored(eng, case.id) == before


# --- malformed report data ---------------------------------------------------------------------------
def test_a_report_missing_facts_lists_every_missing_field_at_once(eng: Engine) -> None:
    bad = report()
    del bad["channel"]
    del bad["policy"]["insured_name"]
    for key in ("place", "course", "measures", "condition"):
        del bad["incident"][key]
    del bad["reporter"]["phone"]
    del bad["reporter"]["relationship"]
    before = stored(eng)
    with pytest.raises(InvalidData) as err:
        eng.open_case("claim", bad, AGENT)
    assert locations(err.value) == {
        "channel",
        "policy.insured_name",
        "incident.place",
        "incident.course",
        "incident.measures",
        "incident.condition",
        "reporter.phone",
        "reporter.relationship",
    }
    assert "incident.place" in str(err.value) and "nothing was stored" in str(err.value)
    assert stored(eng) == before


def test_a_report_without_any_group_of_facts_names_each_group(eng: Engine) -> None:
    with pytest.raises(InvalidData) as err:
        eng.open_case("claim", {"channel": "phone"}, AGENT)
    assert locations(err.value) == {"policy", "incident", "reporter"}


def test_an_id_number_failing_the_gb_11643_check_digit_is_invalid(eng: Engine) -> None:
    before = stored(eng)
    with pytest.raises(InvalidData) as err:
        eng.open_case(
            "claim", report(policy={"number": None, "insured_id_number": BAD_CHECK_DIGIT}), AGENT
        )
    [problem] = err.value.problems
    assert problem.location == "policy.insured_id_number"
    assert "check digit" in problem.message and "GB 11643" in problem.message
    assert stored(eng) == before


def test_an_id_number_with_a_bad_check_digit_is_refused_on_events_too(
    eng: Engine, case: Any
) -> None:
    eng.fire(case.id, "verify", HANDLER)
    before = stored(eng, case.id)
    with pytest.raises(InvalidData) as err:
        eng.fire(
            case.id,
            "apply",
            HANDLER,
            {
                "applicant_name": "李娜",
                "applicant_id_number": ID_LI[:-1] + "2",
                "relationship": "self",
            },
        )
    assert locations(err.value) == {"applicant_id_number"}
    assert stored(eng, case.id) == before


def test_an_incident_in_the_future_is_invalid(eng: Engine) -> None:
    before = stored(eng)
    with pytest.raises(InvalidData) as err:
        eng.open_case("claim", report(incident={"time": "2026-05-06T09:00:01+08:00"}), AGENT)
    [problem] = err.value.problems
    assert problem.location == "incident.time"
    assert "in the future" in problem.message
    assert stored(eng) == before


def test_an_incident_at_this_very_moment_is_not_in_the_future(eng: Engine) -> None:
    opened = eng.open_case("claim", report(incident={"time": "2026-05-06T01:00:00+00:00"}), AGENT)
    assert opened.created


def test_a_negative_expected_amount_is_invalid(eng: Engine) -> None:
    before = stored(eng)
    with pytest.raises(InvalidData) as err:
        eng.open_case("claim", report(incident={"expected_amount": "-1"}), AGENT)
    assert locations(err.value) == {"incident.expected_amount"}
    assert stored(eng) == before


def test_a_negative_number_of_deaths_is_invalid(eng: Engine) -> None:
    with pytest.raises(InvalidData) as err:
        eng.open_case("claim", report(incident={"deaths": -1}), AGENT)
    assert locations(err.value) == {"incident.deaths"}


def test_a_death_with_no_deaths_counted_is_invalid(eng: Engine) -> None:
    with pytest.raises(InvalidData) as err:
        eng.open_case("claim", report(incident={"injury": "death"}), AGENT)
    assert "deaths is 0" in str(err.value)
    assert eng.find_cases() == []


def test_an_unknown_channel_is_invalid(eng: Engine) -> None:
    before = stored(eng)
    with pytest.raises(InvalidData) as err:
        eng.open_case("claim", report(channel="email"), AGENT)
    [problem] = err.value.problems
    assert problem.location == "channel"
    assert "phone" in problem.message and "letter" in problem.message
    assert stored(eng) == before


def test_a_malformed_phone_number_is_invalid(eng: Engine) -> None:
    with pytest.raises(InvalidData) as err:
        eng.open_case("claim", report(reporter={"phone": "12345"}), AGENT)
    assert locations(err.value) == {"reporter.phone"}


def test_unknown_extra_fields_are_invalid_not_dropped(eng: Engine) -> None:
    before = stored(eng)
    with pytest.raises(InvalidData) as err:
        eng.open_case("claim", report(priority="high", incident={"weather": "雨"}), AGENT)
    assert locations(err.value) == {"priority", "incident.weather"}
    assert stored(eng) == before


def test_data_that_is_not_a_mapping_is_invalid(eng: Engine, case: Any) -> None:
    before = stored(eng, case.id)
    with pytest.raises(InvalidData):
        eng.open_case("claim", ["phone"], AGENT)  # type: ignore[arg-type]
    with pytest.raises(InvalidData):
        eng.fire(case.id, "verify", HANDLER, ["2026-01-01"])  # type: ignore[arg-type]
    assert stored(eng, case.id) == before


def test_failed_reports_use_up_no_case_number(eng: Engine) -> None:
    for bad in (report(channel="email"), report(incident={"expected_amount": "-1"})):
        with pytest.raises(InvalidData):
            eng.open_case("claim", bad, AGENT)
    assert eng.open_case("claim", report(), AGENT).case.number == "LP-20260506-000001"


# --- malformed event data -----------------------------------------------------------------------------
def test_data_given_to_an_event_that_takes_none_is_invalid(eng: Engine, case: Any) -> None:
    case = eng.fire(case.id, "verify", HANDLER)
    case = eng.fire(
        case.id,
        "apply",
        HANDLER,
        {"applicant_name": "李娜", "applicant_id_number": ID_LI, "relationship": "self"},
    )
    before = stored(eng, case.id)
    with pytest.raises(InvalidData) as err:
        eng.fire(case.id, "complete_materials", HANDLER, {"force": True})
    [problem] = err.value.problems
    assert problem.location == "force"
    assert "takes no data" in problem.message
    assert stored(eng, case.id) == before


def test_an_unknown_field_in_event_data_is_invalid(eng: Engine, case: Any) -> None:
    before = stored(eng, case.id)
    with pytest.raises(InvalidData) as err:
        eng.fire(case.id, "verify", HANDLER, {"known_since": "2026-05-04", "approved": True})
    assert locations(err.value) == {"approved"}
    assert stored(eng, case.id) == before


def test_an_unknown_rejection_reason_is_invalid(eng: Engine, case: Any) -> None:
    before = stored(eng, case.id)
    with pytest.raises(InvalidData) as err:
        eng.fire(case.id, "reject", HANDLER, {"reasons": ["too_expensive"], "notice": "x"})
    problem = next(p for p in err.value.problems if p.location == "reasons.0")
    assert "outside_policy_period" in problem.message and "late_filing" in problem.message
    assert stored(eng, case.id) == before


def test_a_rejection_without_reasons_or_notice_is_invalid(eng: Engine, case: Any) -> None:
    with pytest.raises(InvalidData) as err:
        eng.fire(case.id, "reject", HANDLER, {"reasons": []})
    assert locations(err.value) == {"reasons", "notice"}


def test_a_search_with_a_bad_limit_is_invalid(eng: Engine) -> None:
    with pytest.raises(InvalidData):
        eng.find_cases(limit=0)


# --- idempotency ----------------------------------------------------------------------------------------
def test_a_retried_request_returns_the_first_result_and_adds_no_history(
    eng: Engine, case: Any
) -> None:
    first = eng.fire(case.id, "verify", HANDLER, idempotency_key="req-1")
    after_first = stored(eng, case.id)
    again = eng.fire(case.id, "verify", HANDLER, idempotency_key="req-1")
    assert again == first
    assert stored(eng, case.id) == after_first
    assert [h.event for h in eng.history(case.id)].count("verify") == 1


def test_a_retry_after_the_case_moved_on_still_returns_the_first_result(
    eng: Engine, case: Any
) -> None:
    first = eng.fire(case.id, "verify", HANDLER, idempotency_key="req-1")
    eng.fire(case.id, "withdraw", HANDLER, {"reason": "撤案"})
    before = stored(eng, case.id)
    again = eng.fire(case.id, "verify", HANDLER, idempotency_key="req-1")
    assert again == first and again.state == "verified"
    assert stored(eng, case.id) == before


def test_a_key_reused_for_a_different_event_is_refused(eng: Engine, case: Any) -> None:
    eng.fire(case.id, "verify", HANDLER, idempotency_key="req-1")
    before = stored(eng, case.id)
    with pytest.raises(IdempotencyKeyReused) as err:
        eng.fire(case.id, "withdraw", HANDLER, {"reason": "撤案"}, idempotency_key="req-1")
    assert err.value.key == "req-1"
    assert "'verify'" in str(err.value) and "'withdraw'" in str(err.value)
    assert stored(eng, case.id) == before


def test_a_key_reused_on_another_case_is_refused(eng: Engine, case: Any) -> None:
    other = eng.open_case(
        "claim", report(incident={"time": "2026-05-01T10:00:00+08:00"}), AGENT
    ).case
    eng.fire(case.id, "verify", HANDLER, idempotency_key="req-1")
    before = stored(eng, other.id)
    with pytest.raises(IdempotencyKeyReused):
        eng.fire(other.id, "verify", HANDLER, idempotency_key="req-1")
    assert stored(eng, other.id) == before


def test_a_refused_request_does_not_use_up_its_key(eng: Engine, case: Any) -> None:
    with pytest.raises(GuardRefused):
        eng.fire(
            case.id,
            "reject",
            HANDLER,
            {"reasons": ["not_covered"], "notice": "x"},
            idempotency_key="req-1",
        )
    assert eng.fire(case.id, "verify", HANDLER, idempotency_key="req-1").state == "verified"


def test_a_key_reused_for_the_same_event_with_different_data_is_refused(
    eng: Engine, case: Any
) -> None:
    """IdempotencyKeyReused: "the key was used before for a different request" (engine/errors.py)."""
    case = eng.fire(case.id, "verify", HANDLER)
    case = eng.fire(
        case.id,
        "apply",
        HANDLER,
        {"applicant_name": "李娜", "applicant_id_number": ID_LI, "relationship": "self"},
    )
    eng.fire(
        case.id, "receive_materials", HANDLER, {"items": ["policy_original"]}, idempotency_key="m-1"
    )
    before = stored(eng, case.id)
    with pytest.raises(IdempotencyKeyReused):
        eng.fire(
            case.id, "receive_materials", HANDLER, {"items": ["claim_form"]}, idempotency_key="m-1"
        )
    assert stored(eng, case.id) == before


def test_a_retried_report_returns_the_first_result_and_opens_no_second_case(eng: Engine) -> None:
    first = eng.open_case("claim", report(), AGENT, idempotency_key="open-1")
    after_first = stored(eng, first.case.id)
    again = eng.open_case("claim", report(), AGENT, idempotency_key="open-1")
    assert again == first
    assert again.created is True  # the first result, not "a duplicate of itself"
    assert stored(eng, first.case.id) == after_first


def test_a_report_key_reused_for_another_report_is_refused(eng: Engine) -> None:
    eng.open_case("claim", report(), AGENT, idempotency_key="open-1")
    before = stored(eng)
    with pytest.raises(IdempotencyKeyReused):
        eng.open_case("claim", report(channel="fax"), AGENT, idempotency_key="open-1")
    assert stored(eng) == before


def test_a_report_key_reused_for_an_event_is_refused(eng: Engine) -> None:
    opened = eng.open_case("claim", report(), AGENT, idempotency_key="req-1")
    before = stored(eng, opened.case.id)
    with pytest.raises(IdempotencyKeyReused):
        eng.fire(opened.case.id, "verify", HANDLER, idempotency_key="req-1")
    assert stored(eng, opened.case.id) == before


# --- optimistic locking --------------------------------------------------------------------------------
def test_a_stale_expected_version_is_a_conflict(eng: Engine, case: Any) -> None:
    read = eng.get_case(case.id)
    eng.fire(case.id, "verify", HANDLER)  # someone else moves the case on
    before = stored(eng, case.id)
    with pytest.raises(ConflictError) as err:
        eng.fire(case.id, "withdraw", HANDLER, {"reason": "撤案"}, expected_version=read.version)
    assert err.value.expected_version == read.version
    assert err.value.actual_version == read.version + 1
    assert err.value.case_number == case.number
    assert stored(eng, case.id) == before


def test_the_current_expected_version_goes_through(eng: Engine, case: Any) -> None:
    read = eng.get_case(case.id)
    after = eng.fire(case.id, "verify", HANDLER, expected_version=read.version)
    assert after.version == read.version + 1
