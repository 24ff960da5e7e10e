"""Preliminary review (信息初步审核, 细则第四条(二); DOMAIN.md §1.3) and refusal in writing.

The review checks the policy period, the coverage and the filing time limit
(保险法第二十六条: 2 years non-life, 5 years life, from the day the claimant knew of the
incident). A failing review is refused with every reason; a refusal for lateness needs a
supervisor. The `eng` fixture runs each test on SQLite and PostgreSQL; the clock starts
at 2026-05-06 09:00 Beijing time and only moves forward.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from baoflow.engine import (
    SHANGHAI,
    ChineseOfficialCalendar,
    Engine,
    FakeClock,
    GuardRefused,
    InvalidData,
    SqlPolicyDirectory,
    open_engine,
)
from baoflow.workflows import claim
from baoflow.workflows.claim import ClaimSettings

from tests.conftest import AGENT, HANDLER, POLICIES, SUPERVISOR, report

# P-OLD-001: property, 2022-01-01..2024-12-31, fire and theft
ZHAO = {"number": "P-OLD-001", "product_name": "家庭财产险", "insured_name": "赵强"}
# P-ACC-001: accident, 2026-01-01..2026-12-31, accident and fire
ZHANG_1 = {"number": "P-ACC-001", "product_name": "综合意外险", "insured_name": "张伟"}
# P-ACC-002: accident, 2025-06-01..2026-05-31, accident only
ZHANG_2 = {"number": "P-ACC-002", "product_name": "综合意外险", "insured_name": "张伟"}
FIRE = {"cause": "fire", "injury": "none", "hospital": None, "property_damage": True}


def bj(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A Beijing wall-clock instant."""
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def day(iso_date: str) -> str:
    return f"{iso_date}T10:00:00+08:00"


def reported(eng: Engine, **overrides: Any) -> Any:
    case = eng.open_case("claim", report(**overrides), AGENT).case
    assert case.state == "reported", case.state
    return case


def refusal(
    eng: Engine, case_id: int, event: str = "verify", data: Any = None, actor: Any = HANDLER
) -> GuardRefused:
    with pytest.raises(GuardRefused) as err:
        eng.fire(case_id, event, actor, data)
    assert eng.get_case(case_id).state == "reported"
    return err.value


# --- the review passes ----------------------------------------------------------------------
def test_a_covered_incident_in_the_policy_period_within_the_limit_passes_the_review(
    eng: Engine,
) -> None:
    case = reported(eng)
    case = eng.fire(case.id, "verify", HANDLER)
    assert case.state == "verified"
    assert case.data["review"] == {}


def test_an_incident_on_the_last_day_of_the_policy_period_is_within_it(
    eng: Engine, clock: FakeClock
) -> None:
    clock.set(bj(2026, 6, 2, 9, 0))
    case = reported(eng, policy=ZHANG_2, incident={"time": day("2026-05-31")})
    assert eng.fire(case.id, "verify", HANDLER).state == "verified"


# --- 1) the policy period ---------------------------------------------------------------------
def test_an_incident_after_the_policy_ended_is_refused(eng: Engine) -> None:
    """P-OLD-001 ended on 2024-12-31."""
    case = reported(eng, policy=ZHAO, incident={**FIRE, "time": day("2025-03-01")})
    reasons = refusal(eng, case.id).reasons
    assert len(reasons) == 1
    assert "不在保险期间" in reasons[0] and "2024-12-31" in reasons[0]


def test_an_incident_the_day_after_the_policy_ended_is_refused(
    eng: Engine, clock: FakeClock
) -> None:
    """P-ACC-002 ended on 2026-05-31; the incident is on 2026-06-01."""
    clock.set(bj(2026, 6, 3, 9, 0))
    case = reported(eng, policy=ZHANG_2, incident={"time": day("2026-06-01")})
    reasons = refusal(eng, case.id).reasons
    assert len(reasons) == 1
    assert "policy period of P-ACC-002" in reasons[0]


def test_an_incident_before_the_policy_began_is_refused(eng: Engine) -> None:
    case = reported(eng, policy=ZHANG_1, incident={"time": day("2025-12-31")})
    reasons = refusal(eng, case.id).reasons
    assert len(reasons) == 1 and "不在保险期间" in reasons[0]


# --- 2) the coverage --------------------------------------------------------------------------
def test_a_cause_the_policy_does_not_cover_is_refused(eng: Engine) -> None:
    """P-ACC-002 covers accidents only, not fire."""
    case = reported(eng, policy=ZHANG_2, incident={**FIRE, "time": day("2026-05-01")})
    reasons = refusal(eng, case.id).reasons
    assert len(reasons) == 1
    assert "不属保障范围" in reasons[0] and "fire" in reasons[0]


# --- 3) the filing time limit (保险法第二十六条) -------------------------------------------------
def test_a_non_life_claim_more_than_two_years_after_the_incident_is_refused(eng: Engine) -> None:
    case = reported(eng, policy=ZHAO, incident={**FIRE, "time": day("2024-03-01")})
    reasons = refusal(eng, case.id).reasons
    assert len(reasons) == 1
    assert "已超过申请时效" in reasons[0] and "2 年" in reasons[0]


@pytest.mark.parametrize(
    ("now", "passes"),
    [(bj(2028, 3, 10, 23, 59, 59), True), (bj(2028, 3, 11, 0, 0), False)],
    ids=["last-day", "day-after"],
)
def test_the_non_life_limit_ends_with_the_second_anniversary_of_the_incident(
    eng: Engine, clock: FakeClock, now: datetime, passes: bool
) -> None:
    """Incident Tue 2026-03-10 → the 2 years end with Fri 2028-03-10 (a working day)."""
    case = reported(eng, policy=ZHANG_1, incident={"time": day("2026-03-10")})
    clock.set(now)
    if passes:
        assert eng.fire(case.id, "verify", HANDLER).state == "verified"
    else:
        reasons = refusal(eng, case.id).reasons
        assert len(reasons) == 1 and "2028-03-10" in reasons[0]


@pytest.mark.parametrize(
    ("now", "passes"),
    [(bj(2026, 6, 10, 23, 59, 59), True), (bj(2026, 6, 11, 0, 0), False)],
    ids=["last-day", "day-after"],
)
def test_the_life_limit_ends_with_the_fifth_anniversary_of_the_incident(
    eng: Engine, clock: FakeClock, now: datetime, passes: bool
) -> None:
    """P-LIFE-001, incident 2021-06-10 → the 5 years end with Wed 2026-06-10 (a working day)."""
    case = reported(eng, incident={"time": day("2021-06-10")})
    clock.set(now)
    if passes:
        assert eng.fire(case.id, "verify", HANDLER).state == "verified"
    else:
        reasons = refusal(eng, case.id).reasons
        assert len(reasons) == 1 and "5 年" in reasons[0] and "2026-06-10" in reasons[0]


def test_a_life_claim_three_years_after_the_incident_is_in_time(eng: Engine) -> None:
    """Life insurance has 5 years, not the 2 of non-life."""
    case = reported(eng, incident={"time": day("2023-04-20")})
    assert eng.fire(case.id, "verify", HANDLER).state == "verified"


def test_a_filing_limit_ending_on_a_rest_day_runs_to_the_next_working_day(
    eng: Engine, clock: FakeClock
) -> None:
    """P-LIFE-001, incident 2021-05-16: 5 years end Sat 2026-05-16 → extended to Mon 2026-05-18."""
    case = reported(eng, incident={"time": day("2021-05-16")})
    clock.set(bj(2026, 5, 18, 10, 0))
    assert eng.fire(case.id, "verify", HANDLER).state == "verified"


def test_a_filing_limit_ending_in_the_labour_day_holiday_runs_to_the_day_after_it(
    eng: Engine, clock: FakeClock
) -> None:
    """民法典第二百零三条: incident 2021-05-04, 5 years end 2026-05-04, inside the holiday
    (05-01..05-05) → the limit is Wed 2026-05-06; Thu 05-07 is late."""
    in_time = reported(eng, incident={"time": day("2021-05-04")})
    # The same limit, on a second incident the claimant learnt of on 2021-05-04.
    late = reported(eng, incident={"time": day("2021-05-02")})
    clock.set(bj(2026, 5, 6, 17, 0))
    assert eng.fire(in_time.id, "verify", HANDLER).state == "verified"
    clock.set(bj(2026, 5, 7, 9, 0))
    with pytest.raises(GuardRefused, match="已超过申请时效"):
        eng.fire(late.id, "verify", HANDLER, {"known_since": "2021-05-04"})


def test_a_limit_ending_on_a_make_up_saturday_is_not_moved(eng: Engine, clock: FakeClock) -> None:
    """Sat 2026-05-09 is a make-up working day (调休): a limit ending then ends then."""
    case = reported(eng, incident={"time": day("2021-05-09")})
    clock.set(bj(2026, 5, 10, 10, 0))
    with pytest.raises(GuardRefused, match="已超过申请时效"):
        eng.fire(case.id, "verify", HANDLER)


def test_a_later_known_since_moves_the_filing_limit(eng: Engine) -> None:
    """The limit runs from the day the claimant knew or should have known of the incident."""
    case = reported(eng, policy=ZHAO, incident={**FIRE, "time": day("2024-03-01")})
    refusal(eng, case.id)
    case = eng.fire(case.id, "verify", HANDLER, {"known_since": "2025-01-10"})
    assert case.state == "verified"
    assert case.data["review"] == {"known_since": "2025-01-10"}


def test_a_claimant_may_have_known_of_it_from_the_incident_day_itself(eng: Engine) -> None:
    """known_since may be the incident's own day, not before it."""
    case = reported(eng, incident={"time": day("2026-05-04")})
    verified = eng.fire(case.id, "verify", HANDLER, {"known_since": "2026-05-04"})
    assert verified.state == "verified"
    other = reported(eng, incident={"time": day("2026-05-03")})
    reasons = refusal(eng, other.id, data={"known_since": "2026-05-02"}).reasons
    assert "is before the incident day 2026-05-03" in reasons[0]


def test_a_known_since_that_is_itself_too_old_is_still_refused(eng: Engine) -> None:
    case = reported(eng, policy=ZHAO, incident={**FIRE, "time": day("2024-03-01")})
    reasons = refusal(eng, case.id, data={"known_since": "2024-04-01"}).reasons
    assert "2024-04-01" in reasons[0]


def test_a_known_since_in_the_future_is_invalid(eng: Engine) -> None:
    case = reported(eng, policy=ZHAO, incident={**FIRE, "time": day("2024-03-01")})
    with pytest.raises(InvalidData) as err:
        eng.fire(case.id, "verify", HANDLER, {"known_since": "2099-01-01"})
    assert err.value.problems[0].location == "known_since"
    assert "in the future" in err.value.problems[0].message
    assert eng.get_case(case.id).state == "reported"


def test_a_known_since_of_today_is_accepted(eng: Engine) -> None:
    case = reported(eng, policy=ZHAO, incident={**FIRE, "time": day("2024-03-01")})
    case = eng.fire(case.id, "verify", HANDLER, {"known_since": "2026-05-06"})
    assert case.state == "verified"


def test_a_known_since_before_the_incident_is_refused(eng: Engine) -> None:
    """Nobody learns of an incident before it happens: a known_since that early is a mistake."""
    case = reported(eng)  # incident 2026-05-04, passes the review without known_since
    reasons = refusal(eng, case.id, data={"known_since": "2026-05-03"}).reasons
    assert len(reasons) == 1 and "before the incident day" in reasons[0]


# --- every reason at once -----------------------------------------------------------------------
def test_a_review_failing_on_every_count_lists_all_the_reasons_at_once(eng: Engine) -> None:
    """P-OLD-001 began 2022-01-01 and covers fire/theft; an illness in 2021 fails all three checks."""
    case = reported(
        eng,
        policy=ZHAO,
        incident={"cause": "illness", "injury": "minor", "time": day("2021-06-01")},
    )
    reasons = refusal(eng, case.id).reasons
    assert len(reasons) == 3
    assert "不在保险期间" in reasons[0]
    assert "不属保障范围" in reasons[1]
    assert "已超过申请时效" in reasons[2]


# --- refusal in writing (书面告知不予受理的原因; 保险法第二十四条) -------------------------------------
def test_a_rejection_the_review_bears_out_is_recorded_with_its_written_notice(eng: Engine) -> None:
    case = reported(eng, policy=ZHAO, incident={**FIRE, "time": day("2025-03-01")})
    notice = "您的保单已于2024年12月31日满期，出险日期不在保险期间内，不予受理。"
    case = eng.fire(
        case.id, "reject", HANDLER, {"reasons": ["outside_policy_period"], "notice": notice}
    )
    assert case.state == "rejected"
    assert case.data["rejection"] == {
        "reasons": ["outside_policy_period"],
        "notice": notice,
        "originals_returned": True,
    }
    assert eng.get_case(case.id).data["rejection"]["notice"] == notice


def test_a_rejection_may_give_several_reasons_that_all_hold(eng: Engine) -> None:
    case = reported(
        eng,
        policy=ZHAO,
        incident={"cause": "illness", "injury": "minor", "time": day("2025-03-01")},
    )
    case = eng.fire(
        case.id,
        "reject",
        HANDLER,
        {
            "reasons": ["outside_policy_period", "not_covered"],
            "notice": "不在保险期间且不属保障范围",
        },
    )
    assert case.data["rejection"]["reasons"] == ["outside_policy_period", "not_covered"]


def test_a_rejection_for_a_reason_that_does_not_hold_is_refused(eng: Engine) -> None:
    case = reported(eng)  # passes the review
    err = refusal(eng, case.id, "reject", {"reasons": ["not_covered"], "notice": "不属保障范围"})
    assert "'not_covered' is not borne out" in err.reasons[0]
    assert "rejection" not in eng.get_case(case.id).data


def test_a_rejection_mixing_a_true_and_a_false_reason_is_refused(eng: Engine) -> None:
    case = reported(eng, policy=ZHAO, incident={**FIRE, "time": day("2025-03-01")})
    err = refusal(
        eng, case.id, "reject", {"reasons": ["outside_policy_period", "not_covered"], "notice": "x"}
    )
    assert len(err.reasons) == 1 and "not_covered" in err.reasons[0]


def test_a_handler_may_not_refuse_a_claim_for_lateness(eng: Engine) -> None:
    """保险法第二十六条: a refusal for lateness needs a supervisor and a reason code, never automatic."""
    case = reported(eng, policy=ZHAO, incident={**FIRE, "time": day("2024-03-01")})
    err = refusal(eng, case.id, "reject", {"reasons": ["late_filing"], "notice": "已超过申请时效"})
    assert "supervisor" in err.reasons[0]


def test_a_supervisor_may_refuse_a_claim_for_lateness(eng: Engine) -> None:
    case = reported(eng, policy=ZHAO, incident={**FIRE, "time": day("2024-03-01")})
    case = eng.fire(
        case.id, "reject", SUPERVISOR, {"reasons": ["late_filing"], "notice": "已超过两年申请时效"}
    )
    assert case.state == "rejected"
    assert case.data["rejection"]["reasons"] == ["late_filing"]
    assert eng.history(case.id)[-1].actor == SUPERVISOR


def test_a_supervisor_may_not_refuse_for_lateness_a_claim_that_is_in_time(eng: Engine) -> None:
    case = reported(eng)
    refusal(eng, case.id, "reject", {"reasons": ["late_filing"], "notice": "x"}, actor=SUPERVISOR)


# --- the limit is configuration -------------------------------------------------------------------
@pytest.fixture
def eng_3y(db_url: str, clock: FakeClock) -> Iterator[Engine]:
    """An engine whose non-life limit is 3 years (the Civil Code reading)."""
    settings = ClaimSettings(filing_limit_years={"default": 3, "life": 5})
    engine_ = open_engine(
        db_url,
        clock=clock,
        workflows=[claim.build(settings)],
        calendar=ChineseOfficialCalendar(),  # the clock goes to 2027
    )
    assert isinstance(engine_.policies, SqlPolicyDirectory)
    engine_.policies.add(POLICIES)
    yield engine_
    engine_.close()


def test_a_three_year_non_life_limit_accepts_a_claim_two_years_late(eng_3y: Engine) -> None:
    case = reported(eng_3y, policy=ZHAO, incident={**FIRE, "time": day("2024-03-01")})
    assert eng_3y.fire(case.id, "verify", HANDLER).state == "verified"


def test_a_three_year_non_life_limit_still_ends(eng_3y: Engine, clock: FakeClock) -> None:
    case = reported(eng_3y, policy=ZHAO, incident={**FIRE, "time": day("2024-03-01")})
    clock.set(bj(2027, 3, 2, 9, 0))
    reasons = refusal(eng_3y, case.id).reasons
    assert len(reasons) == 1 and "3 年" in reasons[0]


def test_a_configured_limit_leaves_life_at_five_years(eng_3y: Engine) -> None:
    case = reported(eng_3y, incident={"time": day("2021-04-20")})
    reasons = refusal(eng_3y, case.id).reasons
    assert len(reasons) == 1 and "5 年" in reasons[0]


# --- what the desk sees before firing ----------------------------------------------------------------
def test_available_events_show_why_verify_would_be_refused(eng: Engine) -> None:
    case = reported(
        eng,
        policy=ZHAO,
        incident={"cause": "illness", "injury": "minor", "time": day("2021-06-01")},
    )
    events = {a.event: a for a in eng.available_events(case.id)}
    assert list(events) == [
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
    ]
    assert not events["report_to_headquarters"].would_pass  # not a major case
    assert not events["request_survey"].would_pass  # nor surveyed at the desk's request
    assert not events["verify"].would_pass
    assert len(events["verify"].refusals) == 3
    assert events["verify"].refusals == refusal(eng, case.id).reasons


def test_available_events_show_verify_would_pass_when_the_review_passes(eng: Engine) -> None:
    case = reported(eng)
    events = {a.event: a for a in eng.available_events(case.id)}
    assert events["verify"].refusals == ()
    assert events["verify"].would_pass
    assert events["verify"].target == "verified"
