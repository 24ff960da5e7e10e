"""The insurer surveys (DOMAIN.md §1.4, §1.6): a scene to be preserved is reported to the
underwriting insurer to survey it, with the reporter's instruction; a major case that
needs a survey is notified to the insurer at once, the desk's assistance is tracked —
who did what — against a deadline of its own until the survey's outcome is recorded;
only a major case may ask for one. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from baoflow.engine import (
    SHANGHAI,
    Actor,
    ChineseOfficialCalendar,
    Engine,
    FakeClock,
    GuardRefused,
    InvalidData,
    open_engine,
)
from baoflow.notifications.config import deliverer_from_config
from baoflow.workflows.claim import ClaimSettings, build

from tests.conftest import AGENT, HANDLER, POLICIES, SUPERVISOR, report
from tests.test_delivery import Recorder, rows

#: The agency's catalogue: P-ACC-001 and P-ACC-002 are 综合意外险; 终身寿险 is left out.
UNDERWRITERS = {"综合意外险": "平安财险"}
ZHANG = {"number": "P-ACC-001", "product_name": "综合意外险", "insured_name": "张伟"}


@pytest.fixture
def eng(db_url: str, clock: FakeClock) -> Iterator[Engine]:
    engine_ = open_engine(
        db_url,
        clock=clock,
        calendar=ChineseOfficialCalendar(),
        workflows=[build(ClaimSettings(underwriters=UNDERWRITERS))],
    )
    engine_.policies.add(POLICIES)  # type: ignore[attr-defined]
    yield engine_
    engine_.close()


def deliver(eng: Engine, rec: Recorder) -> Any:
    raw = {
        "organisations": {
            "insurer": {
                "key": "underwriter.name",
                "contacts": {"平安财险": {"name": "平安财险查勘岗", "rec": "survey@pa.example"}},
            }
        },
        "parties": {"reporter": {"name": "reporter.name", "rec": "reporter.phone"}},
        "people": [{"id": "hq1", "roles": ["headquarters"], "rec": "hq@example"}],
    }
    return deliverer_from_config(eng, raw, channels={"rec": rec}).deliver_due()


def fatal_accident(eng: Engine, **policy: Any) -> Any:
    """An accidental death an hour ago: reported promptly, so the scene is preserved."""
    now = eng.clock.now()
    data = report(
        policy={**ZHANG, **policy},
        incident={
            "time": (now - timedelta(hours=1)).isoformat(),
            "cause": "accident",
            "injury": "death",
            "deaths": 1,
            "course": "工地脚手架倒塌",
            "hospital": None,
        },
    )
    return eng.open_case("claim", data, AGENT).case


def major(eng: Engine) -> Any:
    """Two deaths in one accident: major (重大案件 1)."""
    data = report(
        policy=ZHANG,
        incident={
            "time": (eng.clock.now() - timedelta(hours=30)).isoformat(),
            "injury": "death",
            "deaths": 2,
        },
    )
    case = eng.open_case("claim", data, AGENT).case
    assert case.data["major"]["is_major"]
    return case


def request(eng: Engine, case_id: int, actor: Actor = SUPERVISOR, **extra: Any) -> Any:
    return eng.fire(case_id, "request_survey", actor, {"reason": "核实事故经过", **extra})


def survey_deadline(eng: Engine, case_id: int) -> list[Any]:
    return [d for d in eng.deadlines(case_id) if d.rule == "survey_assistance"]


# --- 1.4 scene preservation: the reporter and the insurer -------------------------------------
def test_a_preserved_scene_is_reported_to_the_underwriting_insurer_to_survey(
    eng: Engine,
) -> None:
    case = fatal_accident(eng)
    assert case.data["underwriter"] == {"name": "平安财险", "source": "product"}
    written = {(r.template, r.recipient): r for r in rows(eng, case_id=case.id)}
    assert set(written) == {
        ("claim_accepted", "reporter"),
        ("scene_preservation", "reporter"),
        ("scene_survey_request", "insurer"),
    }
    context = written["scene_survey_request", "insurer"].context
    assert context["insurer_name"] == "平安财险"
    assert context["incident_course"] == "工地脚手架倒塌"
    assert context["deaths"] == 1
    notified = case.data["scene_preservation"]["insurer_notified_at"]
    assert datetime.fromisoformat(notified) == eng.clock.now()


def test_the_survey_notice_reaches_that_insurers_desk_masked(eng: Engine) -> None:
    rec = Recorder()
    fatal_accident(eng)
    assert deliver(eng, rec).dead == 0
    (survey,) = [m for m in rec.sent if m.template == "scene_survey_request"]
    assert survey.address.to == "survey@pa.example" and not survey.address.data_subject
    assert survey.subject.startswith("现场查勘通知")
    assert survey.address.name == "平安财险查勘岗"


def test_a_scene_whose_underwriter_is_unknown_says_so_and_its_notice_is_a_dead_letter(
    eng: Engine,
) -> None:
    """P-LIFE-001 (终身寿险) is not in the catalogue: nobody can be told automatically."""
    now = eng.clock.now()
    data = report(
        incident={
            "time": (now - timedelta(hours=2)).isoformat(),
            "injury": "death",
            "deaths": 1,
            "hospital": None,
        }
    )
    case = eng.open_case("claim", data, AGENT).case
    assert "underwriter" not in case.data
    assert any("承保保险公司未知" in n for n in eng.history(case.id)[-1].notes)
    deliver(eng, Recorder())
    (dead,) = [r for r in rows(eng, status="dead") if r.recipient == "insurer"]
    assert dead.last_error == "the case does not name its insurer (looked at underwriter.name)"


def test_a_case_that_needs_no_scene_preservation_tells_the_insurer_nothing(eng: Engine) -> None:
    case = eng.open_case("claim", report(policy=ZHANG), AGENT).case
    assert [r.template for r in rows(eng, case_id=case.id)] == ["claim_accepted"]


# --- 1.6 investigation: only a major case ----------------------------------------------------
def test_a_survey_of_a_case_that_is_not_major_is_refused_with_the_reason(eng: Engine) -> None:
    case = eng.open_case("claim", report(policy=ZHANG), AGENT).case
    with pytest.raises(GuardRefused) as err:
        request(eng, case.id)
    (reason,) = err.value.reasons
    assert reason.startswith("the case is not major (细则第四条(二) 重大案件)")
    assert "update_facts" in reason
    after = eng.get_case(case.id)
    assert "survey" not in after.data and after.version == case.version
    assert survey_deadline(eng, case.id) == []


def test_a_major_case_notifies_the_insurer_at_once_and_starts_the_assistance_clock(
    eng: Engine, clock: FakeClock
) -> None:
    case = major(eng)
    case = request(eng, case.id)
    assert case.state == "reported"  # the survey runs beside the claim, in any open state
    survey = case.data["survey"]
    assert survey["requested_by"] == "s01" and survey["insurer"] == "平安财险"
    assert survey["assistance"] == [] and survey["outcome"] is None
    (notice,) = [r for r in rows(eng, case_id=case.id) if r.template == "survey_request"]
    assert notice.recipient == "insurer"
    assert notice.context["reason"] == "核实事故经过"
    assert notice.context["criteria"] == ["一次事故导致2人或2人以上死亡"]
    (deadline,) = survey_deadline(eng, case.id)
    # Wed 2026-05-06 + 10 working days: 05-07, 05-08, Sat 05-09 (a make-up working day),
    # 05-11 … 05-15, 05-18, 05-19: due at the end of Tue 05-19
    assert deadline.status == "running"
    assert deadline.due_at == datetime(2026, 5, 20, 0, 0, tzinfo=SHANGHAI)


def test_the_assistance_period_is_the_companys_to_set(db_url: str, clock: FakeClock) -> None:
    eng = open_engine(
        db_url,
        clock=clock,
        calendar=ChineseOfficialCalendar(),
        workflows=[build(ClaimSettings(underwriters=UNDERWRITERS, survey_working_days=3))],
    )
    try:
        eng.policies.add(POLICIES)  # type: ignore[attr-defined]
        case = request(eng, major(eng).id)
        (deadline,) = survey_deadline(eng, case.id)
        # 05-07, 05-08, Sat 05-09 (make-up working day): due at the end of 05-09
        assert deadline.due_at == datetime(2026, 5, 10, 0, 0, tzinfo=SHANGHAI)
    finally:
        eng.close()


def test_the_assistance_period_must_be_at_least_a_day() -> None:
    with pytest.raises(ValueError, match="survey_working_days must be 1 or more"):
        ClaimSettings(survey_working_days=0)


def test_a_second_survey_while_one_is_under_way_is_refused(eng: Engine) -> None:
    case = request(eng, major(eng).id)
    with pytest.raises(GuardRefused) as err:
        request(eng, case.id)
    assert err.value.reasons[0].startswith("a survey is already under way (requested 2026-05-06")


def test_a_survey_needs_to_know_the_insurer_and_the_request_may_name_it(eng: Engine) -> None:
    data = report(incident={"deaths": 2, "injury": "death"})  # 终身寿险: not in the catalogue
    case = eng.open_case("claim", data, AGENT).case
    with pytest.raises(GuardRefused) as err:
        request(eng, case.id)
    assert "the underwriting insurer is not known" in err.value.reasons[0]
    case = request(eng, case.id, insurer="中国人寿上海分公司")
    assert case.data["underwriter"] == {"name": "中国人寿上海分公司", "source": "survey_request"}
    assert case.data["survey"]["insurer"] == "中国人寿上海分公司"


def test_a_survey_request_needs_its_reason(eng: Engine) -> None:
    case = major(eng)
    with pytest.raises(InvalidData) as err:
        eng.fire(case.id, "request_survey", SUPERVISOR, {})
    assert err.value.problems[0].location == "reason"


# --- the desk's assistance, who did what ---------------------------------------------------------
def test_each_step_of_assistance_is_recorded_with_who_took_it(
    eng: Engine, clock: FakeClock
) -> None:
    case = request(eng, major(eng).id)
    clock.advance(hours=2)
    eng.fire(
        case.id,
        "record_survey_assistance",
        AGENT,
        {"step": "contacted_claimant", "note": "已联系家属，约定明日查勘"},
    )
    clock.advance(days=1)
    case = eng.fire(
        case.id,
        "record_survey_assistance",
        HANDLER,
        {"step": "accompanied_survey", "note": "陪同查勘员到现场"},
    )
    steps = [(a["by"], a["by_name"], a["step"]) for a in case.data["survey"]["assistance"]]
    assert steps == [
        ("a01", "李静", "contacted_claimant"),
        ("h01", "王芳", "accompanied_survey"),
    ]
    assert case.data["survey"]["assistance"][1]["at"] == clock.now().isoformat()
    assert [h.actor.id for h in eng.history(case.id)[-2:]] == ["a01", "h01"]


def test_assistance_before_any_survey_is_requested_is_refused(eng: Engine) -> None:
    case = major(eng)
    with pytest.raises(GuardRefused) as err:
        eng.fire(case.id, "record_survey_assistance", AGENT, {"step": "other", "note": "x"})
    assert err.value.reasons == ("no survey has been requested (request_survey) on this case",)


def test_an_unknown_assistance_step_is_invalid(eng: Engine) -> None:
    case = request(eng, major(eng).id)
    with pytest.raises(InvalidData) as err:
        eng.fire(case.id, "record_survey_assistance", AGENT, {"step": "lunch", "note": "x"})
    assert err.value.problems[0].location == "step"


# --- the outcome ends the tracking ----------------------------------------------------------------
def test_the_surveys_outcome_is_recorded_and_stops_its_clock(eng: Engine, clock: FakeClock) -> None:
    case = request(eng, major(eng).id)
    clock.advance(days=3)
    outcome = {
        "finding": "confirmed",
        "summary": "查勘结果与报案相符",
        "surveyor": "平安财险查勘员 赵亮",
        "report_reference": "PA-SV-2026-0042",
    }
    case = eng.fire(case.id, "complete_survey", HANDLER, outcome)
    assert case.data["survey"]["outcome"] == {
        **outcome,
        "completed_at": clock.now().isoformat(),
        "recorded_by": "h01",
    }
    (deadline,) = survey_deadline(eng, case.id)
    assert deadline.status == "met"
    with pytest.raises(GuardRefused) as err:
        eng.fire(case.id, "record_survey_assistance", AGENT, {"step": "other", "note": "x"})
    assert err.value.reasons[0].startswith("the survey is already complete")


def test_a_survey_left_undone_is_breached_and_escalated_to_the_supervisor(
    eng: Engine, clock: FakeClock
) -> None:
    case = request(eng, major(eng).id)
    clock.set(datetime(2026, 5, 20, 9, 0, tzinfo=SHANGHAI))  # past the end of 05-19
    eng.run_due_timers()
    (deadline,) = survey_deadline(eng, case.id)
    assert deadline.breached and deadline.level >= 1
    escalations = [
        r.recipient
        for r in rows(eng, case_id=case.id)
        if r.template == "deadline_escalation" and r.context["rule"] == "survey_assistance"
    ]
    assert escalations == ["supervisor"]


def test_withdrawing_the_claim_stops_the_surveys_clock(eng: Engine) -> None:
    case = request(eng, major(eng).id)
    eng.fire(case.id, "withdraw", HANDLER, {"reason": "家属撤案"})
    (deadline,) = survey_deadline(eng, case.id)
    assert deadline.status == "met"


def test_an_outcome_outside_the_list_is_invalid(eng: Engine) -> None:
    case = request(eng, major(eng).id)
    with pytest.raises(InvalidData) as err:
        eng.fire(case.id, "complete_survey", HANDLER, {"finding": "maybe", "summary": "?"})
    assert err.value.problems[0].location == "finding"


def test_a_survey_redone_after_the_first_is_complete_keeps_the_first_on_record(
    eng: Engine,
) -> None:
    case = request(eng, major(eng).id)
    eng.fire(case.id, "complete_survey", HANDLER, {"finding": "inconclusive", "summary": "待复勘"})
    case = request(eng, case.id, SUPERVISOR, reason="复勘：补查监控")
    assert [s["outcome"]["finding"] for s in case.data["earlier_surveys"]] == ["inconclusive"]
    assert case.data["survey"]["reason"] == "复勘：补查监控"
    assert case.data["survey"]["outcome"] is None
    assert [d.status for d in survey_deadline(eng, case.id)] == ["met", "running"]
