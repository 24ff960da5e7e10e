"""Claim report intake and record lookup (细则第四条 (一)(二); DOMAIN.md §1.1, §1.2, §1.4, §1.5).

Each test states one rule of the intake. The `eng` fixture runs every test on SQLite
and on PostgreSQL, with the clock at Wed 2026-05-06 09:00 Beijing time.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from baoflow.engine import (
    SHANGHAI,
    Actor,
    Engine,
    EventNotAllowed,
    FakeClock,
    GuardRefused,
    Policy,
    TransitionContext,
)
from baoflow.workflows import claim

from tests.conftest import AGENT, HANDLER, ID_LI, ID_ZHANG, ID_ZHANG_2, SUPERVISOR, report

NOW = datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI)
#: A valid GB 11643 number that belongs to nobody in POLICIES.
ID_NOBODY = "320102199208081238"
#: 张伟 without a policy number: two people of that name hold policies with us.
ZHANG_NO_ID: dict[str, Any] = {"number": None, "product_name": "综合意外险", "insured_name": "张伟"}
UNKNOWN_PERSON: dict[str, Any] = {
    "number": "P-NOBODY-9",
    "product_name": "某某险",
    "insured_name": "孙丽",
}


def at(hours_before_now: float) -> str:
    """An incident time this many hours before the fixture's now, as ISO text."""
    return (NOW - timedelta(hours=hours_before_now)).isoformat()


def open_report(eng: Engine, **overrides: Any) -> Any:
    return eng.open_case("claim", report(**overrides), AGENT)


# --- 1.1 what the report records ---------------------------------------------------------
@pytest.mark.parametrize("channel", ["phone", "in_person", "fax", "letter"])
def test_the_report_records_the_channel_it_came_by(eng: Engine, channel: str) -> None:
    """报案方式: phone 电话, in person 上门, fax 传真, letter 书信 — record which."""
    case = open_report(eng, channel=channel).case
    assert case.data["channel"] == channel
    assert eng.get_case(case.id).data["channel"] == channel


def test_the_report_records_the_policy_the_incident_and_the_reporter(eng: Engine) -> None:
    """接报案询问案情: policy information, the incident, and who reported it."""
    case = open_report(eng).case
    stored = eng.get_case(case.id).data
    assert stored["policy"]["number"] == "P-LIFE-001"
    assert stored["policy"]["product_name"] == "终身寿险"
    assert stored["policy"]["insured_name"] == "李娜"
    incident = stored["incident"]
    assert datetime.fromisoformat(incident["time"]) == datetime(2026, 5, 4, 15, 30, tzinfo=SHANGHAI)
    assert incident["place"] == "上海市浦东新区世纪大道100号"
    assert incident["cause"] == "accident"
    assert incident["course"] == "下楼梯时摔倒"
    assert incident["injury"] == "minor"
    assert incident["measures"] == "送医治疗"
    assert incident["condition"] == "已出院"
    assert incident["hospital"] == "仁济医院"
    assert stored["reporter"] == {
        "name": "王磊",
        "address": "上海市浦东新区张杨路1号",
        "phone": "13812345678",
        "relationship": "配偶",
    }


def test_the_report_as_given_is_kept_in_the_history(eng: Engine) -> None:
    case = open_report(eng, channel="fax").case
    first = eng.history(case.id)[0]
    assert first.event == "open"
    assert first.actor == AGENT
    assert first.data["channel"] == "fax"
    assert first.data["reporter"]["name"] == "王磊"


def test_report_time_and_incident_time_are_both_recorded(eng: Engine) -> None:
    """保险法第二十一条: the time of the report and the time of the incident are both kept."""
    case = open_report(eng).case
    assert datetime.fromisoformat(case.data["reported_at"]) == NOW
    assert datetime.fromisoformat(case.data["incident"]["time"]) == datetime(
        2026, 5, 4, 15, 30, tzinfo=SHANGHAI
    )


def test_the_report_time_is_the_clock_time_of_the_report(eng: Engine, clock: FakeClock) -> None:
    clock.advance(hours=3, minutes=15)
    case = open_report(eng).case
    assert datetime.fromisoformat(case.data["reported_at"]) == NOW + timedelta(hours=3, minutes=15)


def test_an_incident_time_without_a_zone_is_read_as_beijing_time(eng: Engine) -> None:
    case = open_report(eng, incident={"time": "2026-05-04T15:30:00"}).case
    assert datetime.fromisoformat(case.data["incident"]["time"]) == datetime(
        2026, 5, 4, 15, 30, tzinfo=SHANGHAI
    )


# --- late notice (保险法第二十一条: flagged, not refused) ----------------------------------------
def test_a_report_more_than_ten_days_after_the_incident_is_flagged_late_but_registered(
    eng: Engine,
) -> None:
    opened = open_report(eng, incident={"time": at(24 * 11)})
    assert opened.created
    assert opened.case.state == "reported"
    assert opened.case.data["flags"]["late_notice"] is True
    register = eng.history(opened.case.id)[-1]
    assert register.event == "register"
    assert any("迟延通知" in n for n in register.notes)


def test_a_prompt_report_is_not_flagged_late(eng: Engine) -> None:
    case = open_report(eng, incident={"time": at(48)}).case
    assert "late_notice" not in case.data.get("flags", {})


def test_a_report_exactly_ten_days_after_the_incident_is_not_late(eng: Engine) -> None:
    """ "Later than 10 days" — ten days to the minute is still in time."""
    case = open_report(eng, incident={"time": at(24 * 10)}).case
    assert "late_notice" not in case.data.get("flags", {})


def test_a_report_a_minute_past_ten_days_is_flagged_late(eng: Engine) -> None:
    case = open_report(eng, incident={"time": at(24 * 10 + 1 / 60)}).case
    assert case.data["flags"]["late_notice"] is True


# --- 1.2 record lookup: duplicates --------------------------------------------------------
def test_the_same_report_again_returns_the_existing_case(eng: Engine) -> None:
    """报案记录查询 1): a report that exists → tell the reporter; no duplicate case."""
    first = open_report(eng)
    again = eng.open_case("claim", report(channel="in_person"), AGENT)
    assert again.created is False
    assert again.case.id == first.case.id
    assert again.case.number == first.case.number
    assert len(eng.find_cases(workflow="claim")) == 1


def test_a_duplicate_report_tells_the_reporter_how_far_the_case_has_got(eng: Engine) -> None:
    first = open_report(eng).case
    eng.fire(first.id, "verify", HANDLER)
    again = open_report(eng)
    assert again.created is False
    assert again.case.state == "verified"
    assert again.notes
    assert first.number in again.notes[0]
    assert "verified" in again.notes[0]


def test_a_duplicate_report_changes_nothing_on_the_existing_case(eng: Engine) -> None:
    first = open_report(eng).case
    history = eng.history(first.id)
    open_report(eng)
    assert eng.get_case(first.id).version == first.version
    assert eng.history(first.id) == history


def test_the_incident_day_of_the_lookup_is_the_beijing_day(eng: Engine) -> None:
    """15:30 Beijing is 07:30 UTC on the same day: the same incident day."""
    first = open_report(eng).case
    again = open_report(eng, incident={"time": "2026-05-04T07:30:00+00:00"})
    assert again.created is False
    assert again.case.id == first.id


def test_a_report_of_another_incident_day_opens_a_new_case(eng: Engine) -> None:
    first = open_report(eng).case
    other = open_report(eng, incident={"time": "2026-05-03T10:00:00+08:00"})
    assert other.created is True
    assert other.case.id != first.id
    assert len(eng.find_cases(workflow="claim")) == 2


def test_the_lookup_finds_a_duplicate_however_many_claims_the_insured_has(eng: Engine) -> None:
    """报案记录查询 1): a common name (张伟, 李娜) accumulates claims; the lookup must see them all."""
    last_day = datetime(2026, 5, 4, 10, 0, tzinfo=SHANGHAI)
    for days_before in range(100, -1, -1):  # 101 claims, one a day, the newest last
        when = last_day - timedelta(days=days_before)
        assert open_report(eng, incident={"time": when.isoformat()}).created
    again = open_report(eng, incident={"time": last_day.isoformat()})
    assert again.created is False


def test_a_report_after_the_first_was_withdrawn_opens_a_new_case(eng: Engine) -> None:
    first = open_report(eng).case
    eng.fire(first.id, "withdraw", HANDLER, {"reason": "客户撤案"})
    again = open_report(eng)
    assert again.created is True
    assert again.case.id != first.id
    assert again.case.state == "reported"


def test_a_shared_name_without_id_is_not_tied_to_another_persons_case(eng: Engine) -> None:
    """重名: confirm the identity before anything is tied to a policy — or to a case.

    张伟 (ID_ZHANG, P-ACC-001) has a case; a report for "张伟" with neither policy
    number nor ID number may be the other 张伟 (P-ACC-002). Returning the first case
    would tell this reporter about another customer's claim.
    """
    first = open_report(eng, policy={**ZHANG_NO_ID, "number": "P-ACC-001"}).case
    assert first.data["policy"]["number"] == "P-ACC-001"
    again = open_report(eng, policy=ZHANG_NO_ID)
    assert again.created is True
    assert again.case.state == "identity_pending"
    assert not any(first.number in n for n in again.notes)


def test_the_same_caller_repeating_an_unidentified_report_gets_the_pending_case(
    eng: Engine,
) -> None:
    """A shared-name report told twice by the same caller about the same moment is one report."""
    first = open_report(eng, policy=ZHANG_NO_ID)
    assert first.case.state == "identity_pending"
    again = open_report(eng, policy=ZHANG_NO_ID, channel="in_person")
    assert again.created is False
    assert again.case.id == first.case.id
    assert len(eng.find_cases(workflow="claim")) == 1


def test_another_caller_with_an_unidentified_report_of_a_namesake_gets_a_new_case(
    eng: Engine,
) -> None:
    first = open_report(eng, policy=ZHANG_NO_ID).case
    other = open_report(eng, policy=ZHANG_NO_ID, reporter={"name": "刘洋", "phone": "13900001111"})
    assert other.created is True
    assert other.case.id != first.id


# --- 1.2 record lookup: no policy of ours ---------------------------------------------------
def test_an_unknown_policy_and_insured_is_unmatched_and_the_reporter_is_told(eng: Engine) -> None:
    """报案记录查询 3): no policy of ours → tell the reporter at once and check where it was bought."""
    opened = open_report(eng, policy=UNKNOWN_PERSON)
    assert opened.created
    assert opened.case.state == "unmatched"
    assert any("未查到" in n and "no policy of ours" in n for n in opened.notes)
    assert "major" not in opened.case.data  # nothing is assessed before a policy is attached


def test_a_known_name_with_an_id_number_nobody_has_is_unmatched(eng: Engine) -> None:
    opened = open_report(eng, policy={"number": None, "insured_id_number": ID_NOBODY})
    assert opened.case.state == "unmatched"


def test_matching_a_policy_of_ours_registers_the_report(eng: Engine) -> None:
    case = open_report(eng, policy={"number": None, "insured_id_number": ID_NOBODY}).case
    case = eng.fire(case.id, "match_policy", HANDLER, {"policy_number": "P-LIFE-001"})
    assert case.state == "reported"
    assert case.data["policy"]["number"] == "P-LIFE-001"
    assert Decimal(case.data["policy"]["sum_insured"]) == Decimal("800000")
    assert case.data["major"]["is_major"] is False
    assert eng.find_cases(policy_number="P-LIFE-001")[0].id == case.id


@pytest.mark.parametrize("reported", ["孙丽", "钱芳"])  # sorting before 李娜, and after
def test_matching_a_policy_that_insures_someone_else_is_refused(eng: Engine, reported: str) -> None:
    case = open_report(eng, policy={**UNKNOWN_PERSON, "insured_name": reported}).case
    with pytest.raises(GuardRefused) as err:
        eng.fire(case.id, "match_policy", HANDLER, {"policy_number": "P-LIFE-001"})
    assert err.value.reasons == (f"policy P-LIFE-001 insures 李娜, not {reported}",)
    assert eng.get_case(case.id).state == "unmatched"


def test_matching_a_policy_that_is_not_ours_is_refused(eng: Engine) -> None:
    case = open_report(eng, policy=UNKNOWN_PERSON).case
    with pytest.raises(GuardRefused) as err:
        eng.fire(case.id, "match_policy", HANDLER, {"policy_number": "P-NOPE-1"})
    assert "not in our policy directory" in err.value.reasons[0]


def test_confirming_the_policy_is_not_ours_closes_the_case(eng: Engine) -> None:
    case = open_report(eng, policy=UNKNOWN_PERSON).case
    case = eng.fire(case.id, "confirm_not_ours", HANDLER, {"note": "客户系在他处投保"})
    assert case.state == "closed"
    assert case.data["not_ours"] == {"note": "客户系在他处投保"}


# --- 1.2 record lookup: a shared name (重名) -------------------------------------------------
def test_a_shared_name_without_an_id_number_waits_for_the_identity(eng: Engine) -> None:
    """报案记录查询 4): several insured share the name → confirm the identity first."""
    opened = open_report(eng, policy=ZHANG_NO_ID)
    assert opened.case.state == "identity_pending"
    assert any("身份证号" in n for n in opened.notes)
    assert "number" not in opened.case.data["policy"]  # nothing tied to a policy yet
    assert "major" not in opened.case.data


@pytest.mark.parametrize(
    ("id_number", "policy"), [(ID_ZHANG, "P-ACC-001"), (ID_ZHANG_2, "P-ACC-002")]
)
def test_confirming_the_id_number_attaches_that_persons_policy(
    eng: Engine, id_number: str, policy: str
) -> None:
    case = open_report(eng, policy=ZHANG_NO_ID).case
    case = eng.fire(case.id, "confirm_identity", HANDLER, {"id_number": id_number})
    assert case.state == "reported"
    assert case.data["policy"]["number"] == policy
    assert case.data["policy"]["insured_id_number"] == id_number
    assert "identity_candidates" not in case.data
    assert "major" in case.data


def test_confirming_an_id_number_nobody_of_that_name_has_is_refused(eng: Engine) -> None:
    case = open_report(eng, policy=ZHANG_NO_ID).case
    with pytest.raises(GuardRefused) as err:
        eng.fire(case.id, "confirm_identity", HANDLER, {"id_number": ID_NOBODY})
    reason = err.value.reasons[0]
    assert f"no policy of ours insures 张伟 with ID number {ID_NOBODY[:6]}…" in reason
    assert ID_NOBODY not in reason  # a refusal shows the region code, never the number
    assert eng.get_case(case.id).state == "identity_pending"


def test_confirming_the_id_number_of_someone_with_another_name_is_refused(eng: Engine) -> None:
    case = open_report(eng, policy=ZHANG_NO_ID).case
    with pytest.raises(GuardRefused):
        eng.fire(case.id, "confirm_identity", HANDLER, {"id_number": ID_LI})


def test_giving_the_id_number_in_the_report_avoids_the_identity_hold(eng: Engine) -> None:
    opened = open_report(eng, policy={**ZHANG_NO_ID, "insured_id_number": ID_ZHANG_2})
    assert opened.case.state == "reported"
    assert opened.case.data["policy"]["number"] == "P-ACC-002"


# --- the intake's own decisions ----------------------------------------------------------------
SYSTEM_EVENTS = ("register", "no_policy", "hold_for_identity")


@pytest.mark.parametrize(
    "policy", [{}, UNKNOWN_PERSON, ZHANG_NO_ID], ids=["reported", "unmatched", "identity_pending"]
)
def test_staff_cannot_fire_the_intakes_own_decisions(eng: Engine, policy: dict[str, Any]) -> None:
    case = open_report(eng, policy=policy).case
    for actor in (HANDLER, SUPERVISOR):
        for event in SYSTEM_EVENTS:
            with pytest.raises(EventNotAllowed):
                eng.fire(case.id, event, actor)
    assert not set(SYSTEM_EVENTS) & {a.event for a in eng.available_events(case.id)}
    assert eng.get_case(case.id).version == case.version


@pytest.mark.parametrize("event", SYSTEM_EVENTS)
def test_the_intakes_own_decisions_are_guarded_as_system_only(event: str) -> None:
    definition = claim.build()
    transition = definition.transition(event, "received")
    assert transition is not None and transition.guards == ("system_only",)
    guard = definition.hooks.guards["system_only"]

    def ctx(actor: Actor) -> TransitionContext:
        return TransitionContext(
            case=None, event=event, data={}, actor=actor, now=NOW, services=None, new_data={}
        )

    assert guard(ctx(HANDLER)) and guard(ctx(SUPERVISOR))
    assert guard(ctx(Actor.system("intake"))) == []


def test_the_intake_decision_is_recorded_as_fired_by_the_system(eng: Engine) -> None:
    case = open_report(eng).case
    register = eng.history(case.id)[-1]
    assert (register.event, register.from_state, register.to_state) == (
        "register",
        "received",
        "reported",
    )
    assert register.actor.is_system


# --- 1.5 major cases ---------------------------------------------------------------------------
def test_an_ordinary_case_is_recorded_as_not_major(eng: Engine) -> None:
    case = open_report(eng).case
    assert case.data["major"] == {"is_major": False, "criteria": []}


def test_two_deaths_in_one_accident_make_a_case_major(eng: Engine) -> None:
    """重大案件 1: one accident, 2 or more deaths."""
    case = open_report(eng, incident={"injury": "death", "deaths": 2, "time": at(72)}).case
    assert case.data["major"] == {"is_major": True, "criteria": [1]}
    assert any("重大案件" in n for n in eng.history(case.id)[-1].notes)


def test_one_death_alone_is_not_major(eng: Engine) -> None:
    case = open_report(eng, incident={"injury": "death", "deaths": 1, "time": at(72)}).case
    assert case.data["major"]["is_major"] is False


def test_an_expected_claim_over_500000_makes_a_case_major(eng: Engine) -> None:
    """重大案件 2: the expected claim exceeds 500,000 yuan."""
    case = open_report(eng, incident={"expected_amount": "500000.01"}).case
    assert case.data["major"] == {"is_major": True, "criteria": [2]}


def test_an_expected_claim_of_exactly_500000_is_not_major(eng: Engine) -> None:
    """ "Exceeds" 500,000: the amount itself is not major."""
    case = open_report(eng, incident={"expected_amount": "500000"}).case
    assert case.data["major"] == {"is_major": False, "criteria": []}


def test_a_sum_insured_over_500000_with_an_undetermined_outcome_makes_a_case_major(
    eng: Engine,
) -> None:
    """重大案件 2: the sum insured (P-LIFE-001: 800,000) exceeds 500,000 and the outcome is open."""
    case = open_report(eng, incident={"outcome_undetermined": True}).case
    assert case.data["major"] == {"is_major": True, "criteria": [2]}


def test_a_sum_insured_over_500000_with_a_known_outcome_is_not_major(eng: Engine) -> None:
    case = open_report(eng, incident={"outcome_undetermined": False}).case
    assert case.data["major"]["is_major"] is False


def test_a_sum_insured_under_500000_with_an_undetermined_outcome_is_not_major(eng: Engine) -> None:
    case = open_report(
        eng, policy={**ZHANG_NO_ID, "number": "P-ACC-001"}, incident={"outcome_undetermined": True}
    ).case
    assert Decimal(case.data["policy"]["sum_insured"]) == Decimal("300000")
    assert case.data["major"]["is_major"] is False


def test_a_sum_insured_of_exactly_500000_is_not_major(eng: Engine) -> None:
    eng.policies.add(  # type: ignore[attr-defined]
        [
            Policy(
                number="P-ACC-500",
                product_name="综合意外险",
                product_line="accident",
                insured_name="周洁",
                insured_id_number=None,
                start_date=date(2026, 1, 1),
                end_date=date(2026, 12, 31),
                coverages=("accident",),
                sum_insured=Decimal("500000"),
            )
        ]
    )
    case = open_report(
        eng,
        policy={"number": "P-ACC-500", "product_name": "综合意外险", "insured_name": "周洁"},
        incident={"outcome_undetermined": True},
    ).case
    assert case.data["policy"]["number"] == "P-ACC-500"
    assert case.data["major"]["is_major"] is False


@pytest.mark.parametrize(
    "dispute",
    [
        {"disagreement": True, "complained_to": ["regulator"]},
        {"disagreement": True, "complained_to": ["association"]},
        {"disagreement": True, "complained_to": ["media"]},
        {"disagreement": True, "media_involved": True},
    ],
    ids=["regulator", "association", "media-complaint", "media-involved"],
)
def test_a_disagreement_taken_to_the_regulator_association_or_media_makes_a_case_major(
    eng: Engine, dispute: dict[str, Any]
) -> None:
    """重大案件 3: the parties disagree and have complained, or the media is involved."""
    case = open_report(eng, incident={"dispute": dispute}).case
    assert case.data["major"] == {"is_major": True, "criteria": [3]}


def test_a_disagreement_alone_is_not_major(eng: Engine) -> None:
    case = open_report(eng, incident={"dispute": {"disagreement": True}}).case
    assert case.data["major"]["is_major"] is False


@pytest.mark.parametrize("litigation", ["possible", "filed"])
def test_a_dispute_that_may_lead_to_or_is_in_litigation_makes_a_case_major(
    eng: Engine, litigation: str
) -> None:
    """重大案件 4: the dispute may lead to, or already is in, litigation."""
    case = open_report(eng, incident={"dispute": {"litigation": litigation}}).case
    assert case.data["major"] == {"is_major": True, "criteria": [4]}


def test_every_major_criterion_that_holds_is_recorded(eng: Engine) -> None:
    case = open_report(
        eng,
        incident={
            "injury": "death",
            "deaths": 3,
            "time": at(72),
            "expected_amount": "2000000",
            "dispute": {"disagreement": True, "media_involved": True, "litigation": "filed"},
        },
    ).case
    assert case.data["major"] == {"is_major": True, "criteria": [1, 2, 3, 4]}


def test_a_case_matched_later_is_assessed_for_major_then(eng: Engine) -> None:
    case = open_report(
        eng,
        policy={"number": None, "insured_id_number": ID_NOBODY},
        incident={"outcome_undetermined": True},
    ).case
    case = eng.fire(case.id, "match_policy", HANDLER, {"policy_number": "P-LIFE-001"})
    assert case.data["major"] == {"is_major": True, "criteria": [2]}


# --- 1.4 scene preservation ----------------------------------------------------------------------
def test_an_accidental_death_reported_within_24_hours_calls_for_scene_preservation(
    eng: Engine,
) -> None:
    """现场保全: tell the reporter to protect the scene and notify the insurer to survey it
    (both notices are written by the registration itself: tests/test_claim_survey.py)."""
    case = open_report(eng, incident={"injury": "death", "deaths": 1, "time": at(23)}).case
    assert case.data["scene_preservation"]["instruction"]
    notified = case.data["scene_preservation"]["insurer_notified_at"]
    assert datetime.fromisoformat(notified) == eng.clock.now()
    assert any("现场保全" in n for n in eng.history(case.id)[-1].notes)


def test_an_accidental_death_reported_exactly_24_hours_later_is_still_prompt(eng: Engine) -> None:
    """民法典第一千二百五十九条: "within" includes the number itself."""
    case = open_report(eng, incident={"injury": "death", "deaths": 1, "time": at(24)}).case
    assert "scene_preservation" in case.data


def test_an_accidental_death_reported_later_than_24_hours_needs_no_scene_preservation(
    eng: Engine,
) -> None:
    case = open_report(eng, incident={"injury": "death", "deaths": 1, "time": at(25)}).case
    assert "scene_preservation" not in case.data


def test_a_death_from_illness_needs_no_scene_preservation(eng: Engine) -> None:
    case = open_report(
        eng, incident={"cause": "illness", "injury": "death", "deaths": 1, "time": at(2)}
    ).case
    assert "scene_preservation" not in case.data


def test_an_accident_without_a_death_needs_no_scene_preservation(eng: Engine) -> None:
    case = open_report(eng, incident={"injury": "serious", "time": at(2)}).case
    assert "scene_preservation" not in case.data


def test_a_death_by_fire_reported_within_24_hours_calls_for_scene_preservation(
    eng: Engine,
) -> None:
    """A fire is an accidental cause (ACCIDENTAL_CAUSES): its scene must be kept as well."""
    case = open_report(
        eng,
        policy={**ZHANG_NO_ID, "number": "P-ACC-001"},
        incident={"cause": "fire", "injury": "death", "deaths": 1, "time": at(5)},
    ).case
    assert "scene_preservation" in case.data


def test_the_scene_preservation_instruction_is_among_what_to_tell_the_reporter(
    eng: Engine,
) -> None:
    """OpenResult.notes is "what to tell the reporter"; 1.4 says tell the reporter to keep the scene."""
    opened = open_report(eng, incident={"injury": "death", "deaths": 1, "time": at(3)})
    assert "scene_preservation" in opened.case.data
    assert any("现场保全" in n for n in opened.notes)
