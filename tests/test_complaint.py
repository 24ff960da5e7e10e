"""Customer complaints (客户意见调整; CBIRC Order 2020 No. 3, DOMAIN.md §5.3): the
numbering rule, registration, a handler with no conflict of interest, approval by
authority, the reply within 15 days (extended, restarted, paused), the review, follow-up
improvement before closing, withdrawal (issue #6)."""

from __future__ import annotations

import threading
from datetime import datetime
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
    NotPermitted,
    open_engine,
)

from tests.conftest import AGENT, HANDLER, SUPERVISOR

MANAGER = Actor("m01", "孙丽", roles=("branch_manager",), org_unit="SH")
HQ = Actor("hq1", "总部客服部", roles=("headquarters",), org_unit="HQ")
REGISTRATION: dict[str, Any] = {
    "channel": "phone",
    "complainant": {"name": "赵强", "phone": "13700001111"},
    "concerns": {"policy_number": "P-OLD-001"},
    "category": "claim",
    "request": "理赔款迟迟未到账，要求尽快支付并说明原因",
    "about_staff": ["h02"],
}


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(bj(2026, 4, 20, 10, 0))  # a Monday: DOMAIN.md §5.5's worked example


def register(eng: Engine, actor: Actor = AGENT, **changes: Any) -> Any:
    return eng.open_case("complaint", {**REGISTRATION, **changes}, actor).case


def reply_deadline(eng: Engine, case_id: int) -> Any:
    return [d for d in eng.deadlines(case_id) if d.rule == "reply"][-1]


def to_proposed(eng: Engine, compensation: str = "3000", public: bool = False) -> Any:
    case = register(eng)
    eng.fire(case.id, "assign", SUPERVISOR, {"handler_id": "h01", "handler_name": "王芳"})
    resolution = {"text": "补付理赔款并致歉", "compensation": compensation}
    if public:
        resolution["regulator_or_media"] = True
    return eng.fire(case.id, "propose", HANDLER, resolution)


# --- registration and numbering -------------------------------------------------------
def test_a_complaint_is_numbered_by_type_branch_and_date_and_due_in_15_days(
    eng: Engine,
) -> None:
    case = register(eng)
    assert case.number == "TS-SH-20260420-000001"
    beijing = Actor("a09", "赵敏", roles=("service_agent",), org_unit="BJ")
    assert register(eng, beijing).number == "TS-BJ-20260420-000001"  # its own sequence
    assert register(eng).number == "TS-SH-20260420-000002"
    assert reply_deadline(eng, case.id).due_at == bj(2026, 5, 7)  # after Labour Day


def test_a_registration_without_what_is_asked_is_refused(eng: Engine) -> None:
    data = {k: v for k, v in REGISTRATION.items() if k != "request"}
    with pytest.raises(InvalidData) as exc:
        eng.open_case("complaint", data, AGENT)
    assert "request" in {p.location for p in exc.value.problems}
    assert eng.find_cases(workflow="complaint") == []


@pytest.mark.parametrize("complainants, major", [(19, False), (20, True), (25, True)])
def test_twenty_complainants_together_make_a_major_complaint(
    eng: Engine, complainants: int, major: bool
) -> None:
    case = register(eng, complainants=complainants)
    assert case.data.get("major_complaint", False) is major
    notes = [n for h in eng.history(case.id) for n in h.notes]
    assert any("重大投诉（第二十九条）" in n for n in notes) is major


def test_numbers_are_unique_under_concurrent_registration_on_postgresql(
    pg_only_url: str, clock: FakeClock
) -> None:
    eng = open_engine(pg_only_url, clock=clock, calendar=ChineseOfficialCalendar())
    numbers: list[str] = []
    errors: list[BaseException] = []

    def desk() -> None:
        try:
            for _ in range(10):
                numbers.append(register(eng).number)
        except BaseException as exc:  # reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=desk) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        eng.close()
    assert errors == []
    assert sorted(numbers) == [f"TS-SH-20260420-{n:06d}" for n in range(1, 61)]


# --- handling ---------------------------------------------------------------------------
def test_the_subject_of_a_complaint_may_not_handle_it(eng: Engine) -> None:
    case = register(eng)
    with pytest.raises(GuardRefused) as exc:
        eng.fire(case.id, "assign", SUPERVISOR, {"handler_id": "h02", "handler_name": "刘洋"})
    assert "h02 is the subject of this complaint" in exc.value.reasons[0]
    case = eng.fire(case.id, "assign", SUPERVISOR, {"handler_id": "h01", "handler_name": "王芳"})
    assert case.state == "investigating"


@pytest.mark.parametrize(
    "compensation, public, who_may",
    [
        ("3000", False, {"supervisor", "branch_manager", "headquarters"}),
        ("5000", False, {"supervisor", "branch_manager", "headquarters"}),  # up to, inclusive
        ("5000.01", False, {"branch_manager", "headquarters"}),
        ("30000", False, {"branch_manager", "headquarters"}),
        ("50000", False, {"branch_manager", "headquarters"}),
        ("50000.01", False, {"headquarters"}),
        ("300000", False, {"headquarters"}),
        ("0", True, {"headquarters"}),
    ],
)
def test_the_resolutions_level_decides_who_approves_it(
    eng: Engine, compensation: str, public: bool, who_may: set[str]
) -> None:
    for approver in (SUPERVISOR, MANAGER, HQ):
        case = to_proposed(eng, compensation, public)
        role = approver.roles[0]
        if role in who_may:
            assert eng.fire(case.id, "approve", approver).state == "approved"
        else:
            with pytest.raises(NotPermitted) as exc:
                eng.fire(case.id, "approve", approver)
            assert "Who can:" in str(exc.value)
    assert HANDLER.roles == ("handler",)
    case = to_proposed(eng, compensation, public)
    with pytest.raises(NotPermitted):
        eng.fire(case.id, "approve", HANDLER)  # a handler approves nothing


def test_an_approver_may_send_a_resolution_back(eng: Engine) -> None:
    case = to_proposed(eng)
    case = eng.fire(case.id, "send_back", SUPERVISOR, {"reason": "补偿依据不足"})
    assert case.state == "investigating"


def test_the_whole_way_to_closing_with_follow_up_improvement(eng: Engine, clock: FakeClock) -> None:
    case = to_proposed(eng)
    eng.fire(case.id, "approve", SUPERVISOR)
    clock.set(bj(2026, 4, 30, 15, 0))
    case = eng.fire(case.id, "reply", HANDLER, {"text": "理赔款已于今日补付，谨致歉意"})
    assert case.state == "replied"
    assert reply_deadline(eng, case.id).status == "met"  # sent within the 15 days
    with pytest.raises(GuardRefused, match="record the root cause"):
        eng.fire(case.id, "close", SUPERVISOR, {"satisfaction": "satisfied"})
    improvement = {"root_cause": "材料移交延误", "corrective_action": "移交时限纳入日考核"}
    eng.fire(case.id, "record_improvement", HANDLER, improvement)
    with pytest.raises(GuardRefused, match="not done yet"):
        eng.fire(case.id, "close", SUPERVISOR, {"satisfaction": "satisfied"})
    eng.fire(case.id, "record_improvement", HANDLER, {**improvement, "done": True})
    case = eng.fire(case.id, "close", SUPERVISOR, {"satisfaction": "satisfied"})
    assert (case.state, case.data["closing"]) == ("closed", {"satisfaction": "satisfied"})
    (reply,) = [c for t, to, c in told(eng, case.id) if t == "complaint_reply"]
    assert reply["reply"] == "理赔款已于今日补付，谨致歉意"  # sent through the outbox


# --- the reply deadline -----------------------------------------------------------------
def test_extended_once_by_the_handler_twice_only_with_a_superior(
    eng: Engine, clock: FakeClock
) -> None:
    case = register(eng)
    eng.fire(case.id, "extend", HANDLER, {"reason": "涉及多家机构，需调取记录"})
    assert reply_deadline(eng, case.id).due_at == bj(2026, 5, 21)
    with pytest.raises(NotPermitted):
        eng.fire(case.id, "extend_again", HANDLER, {"reason": "仍需调查"})
    eng.fire(case.id, "extend_again", SUPERVISOR, {"reason": "需第三方鉴定，上级同意"})
    assert reply_deadline(eng, case.id).due_at == bj(2026, 6, 23)
    reasons = [e["reason"] for e in eng.get_case(case.id).data["extensions"]]
    assert reasons == ["涉及多家机构，需调取记录", "需第三方鉴定，上级同意"]


def test_a_second_extension_without_the_first_or_after_the_deadline_is_refused(
    eng: Engine, clock: FakeClock
) -> None:
    case = register(eng)
    with pytest.raises(GuardRefused, match="must first be extended to 30 natural_days"):
        eng.fire(case.id, "extend_again", SUPERVISOR, {"reason": "复杂"})
    clock.set(bj(2026, 5, 7, 8, 0))
    with pytest.raises(GuardRefused, match="before the deadline passes"):
        eng.fire(case.id, "extend", HANDLER, {"reason": "来不及了"})


def test_new_facts_restart_and_mediation_pauses_the_15_days(eng: Engine, clock: FakeClock) -> None:
    case = register(eng)
    eng.fire(case.id, "assign", SUPERVISOR, {"handler_id": "h01", "handler_name": "王芳"})
    clock.set(bj(2026, 4, 25, 10, 0))
    eng.fire(case.id, "new_facts", AGENT, {"detail": "投诉人补充提供了银行流水"})
    assert reply_deadline(eng, case.id).due_at == bj(2026, 5, 12)
    clock.set(bj(2026, 4, 27, 10, 0))
    eng.fire(case.id, "mediate", HANDLER, {"kind": "mediation", "note": "申请调解委员会调解"})
    clock.set(bj(2026, 5, 4, 10, 0))  # seven days of mediation
    eng.fire(case.id, "mediation_done", HANDLER)
    assert reply_deadline(eng, case.id).due_at == bj(2026, 5, 19)


def test_an_overdue_reply_escalates_to_the_supervisor_then_the_branch_manager(
    eng: Engine, clock: FakeClock
) -> None:
    case = register(eng)
    clock.set(bj(2026, 5, 9))  # past 05-07 00:00 and one working day more
    eng.run_due_timers()
    (breach,) = eng.breaches(workflow="complaint")
    assert (breach.case_number, breach.level) == (case.number, 2)
    assert eng.get_case(case.id).data["assignee"]["role"] == "branch_manager"


# --- review and withdrawal --------------------------------------------------------------
def replied(eng: Engine, clock: FakeClock, at: datetime | None = None) -> Any:
    case = to_proposed(eng)
    eng.fire(case.id, "approve", SUPERVISOR)
    clock.set(at or bj(2026, 4, 30, 15, 0))
    return eng.fire(case.id, "reply", HANDLER, {"text": "已处理"})


def test_a_review_asked_within_30_days_is_decided_within_30(eng: Engine, clock: FakeClock) -> None:
    case = replied(eng, clock)
    clock.set(bj(2026, 5, 20, 9, 0))
    case = eng.fire(case.id, "request_review", AGENT, {"reason": "对补偿金额不满意"})
    assert case.state == "in_review"
    (review,) = [d for d in eng.deadlines(case.id) if d.rule == "review"]
    assert review.due_at == bj(2026, 6, 23)  # day 30 is Fri 06-19, a holiday to Sun 06-21
    case = eng.fire(
        case.id, "decide_review", SUPERVISOR, {"outcome": "upheld", "text": "维持原处理意见"}
    )
    assert case.state == "replied"


def test_a_review_asked_after_30_days_is_refused(eng: Engine, clock: FakeClock) -> None:
    case = replied(eng, clock)
    clock.set(bj(2026, 6, 2, 9, 0))
    with pytest.raises(GuardRefused, match="within 30 days of the reply") as refused:
        eng.fire(case.id, "request_review", AGENT, {"reason": "不满意"})
    # Day 30 is Sat 05-30, a rest day: the window ran to the end of Mon 06-01.
    assert "sent 2026-04-30 and the window closed at the end of 2026-06-01" in str(refused.value)


def test_the_review_window_is_thirty_days_to_the_last_instant(
    eng: Engine, clock: FakeClock
) -> None:
    """Replied Wed 06-10: day 30 is Fri 07-10, a working day, so the window closes at its
    24:00 — a day-29 window would have closed a day sooner, a day-31 one (Sat, moved to
    Mon) days later."""
    in_time, late = (replied(eng, clock, at=bj(2026, 6, 10, 15, 0)) for _ in range(2))
    clock.set(bj(2026, 7, 10, 23, 59))
    asked = eng.fire(in_time.id, "request_review", AGENT, {"reason": "不满意"})
    assert asked.state == "in_review"
    clock.set(bj(2026, 7, 11, 0, 0))  # 24:00 of 07-10: closed
    with pytest.raises(GuardRefused, match="window closed at the end of 2026-07-10"):
        eng.fire(late.id, "request_review", AGENT, {"reason": "不满意"})


@pytest.mark.parametrize(
    "compensation, valid",
    [
        ("0", True),
        ("0.01", True),
        ("-0.01", False),
        ("0.001", False),  # to the fen, no finer
        ("999999999999.99", True),  # 14 digits
        ("9999999999999.99", False),  # 15
    ],
)
def test_a_compensation_is_yuan_and_fen_never_negative(
    eng: Engine, compensation: str, valid: bool
) -> None:
    if valid:
        assert to_proposed(eng, compensation).state == "proposed"
    else:
        with pytest.raises(InvalidData) as bad:
            to_proposed(eng, compensation)
        assert "compensation" in {p.location.split(".")[-1] for p in bad.value.problems}


def test_a_registration_that_does_not_say_how_many_complain_counts_one(eng: Engine) -> None:
    assert "complainants" not in REGISTRATION
    assert register(eng).data["complainants"] == 1


@pytest.mark.parametrize("complainants, valid", [(0, False), (1, True)])
def test_a_complaint_has_at_least_one_complainant(
    eng: Engine, complainants: int, valid: bool
) -> None:
    if valid:
        assert register(eng, complainants=complainants).data["complainants"] == 1
    else:
        with pytest.raises(InvalidData, match="complainants"):
            register(eng, complainants=complainants)


@pytest.mark.parametrize("stage", ["accepted", "investigating", "proposed"])
def test_a_withdrawn_complaint_ends(eng: Engine, stage: str) -> None:
    case = register(eng) if stage == "accepted" else to_proposed(eng)
    if stage == "investigating":
        case = eng.fire(case.id, "send_back", SUPERVISOR, {"reason": "重拟"})
    case = eng.fire(case.id, "withdraw", AGENT, {"reason": "投诉人表示问题已解决"})
    assert case.state == "withdrawn"
    assert all(d.status != "running" for d in eng.deadlines(case.id))


# --- what the complainant and headquarters are told -------------------------------------
def told(eng: Engine, case_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    with eng.store.read() as tx:
        return [(r.template, r.recipient, r.context) for r in tx.list_outbox(case_id=case_id)]


def test_the_complainant_is_told_of_the_acceptance_and_of_each_extension(
    eng: Engine,
) -> None:
    case = register(eng)
    ((template, to, context),) = told(eng, case.id)
    assert (template, to) == ("complaint_acknowledged", "complainant")
    assert context["due_at"] == "2026-05-06 24:00"  # the engine's own deadline
    assert context["request"] == REGISTRATION["request"]
    eng.fire(case.id, "extend", HANDLER, {"reason": "涉及多家机构，需调取记录"})
    eng.fire(case.id, "extend_again", SUPERVISOR, {"reason": "需第三方鉴定"})
    extended = [c for t, _, c in told(eng, case.id) if t == "complaint_extended"]
    assert [(c["reason"], c["due_at"]) for c in extended] == [
        ("涉及多家机构，需调取记录", "2026-05-20 24:00"),
        ("需第三方鉴定", "2026-06-22 24:00"),
    ]


def test_a_major_complaint_is_reported_to_headquarters(eng: Engine) -> None:
    case = register(eng, complainants=25)
    reports = [(to, c) for t, to, c in told(eng, case.id) if t == "major_complaint_report"]
    assert [(to, c["complainants"], c["org_unit"]) for to, c in reports] == [
        ("headquarters", 25, "SH")
    ]
    assert not any(t == "major_complaint_report" for t, _, _ in told(eng, register(eng).id))
