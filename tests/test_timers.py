"""Deadlines of the claim workflow as durable timers: armed with the transition, fired
once at the right moment on the official calendar, paused, escalated, skipped when the
case moved on, and surviving a restart (issue #4)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from baoflow.engine import SHANGHAI, ChineseOfficialCalendar, Engine, FakeClock, open_engine
from baoflow.engine.store import tables as t

from tests.conftest import AGENT, HANDLER, ID_LI, POLICIES, SUPERVISOR, report


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def to_materials_complete(eng: Engine, **overrides: Any) -> Any:
    """A claim on P-ACC-001 (accident line, non-life) with complete materials, now."""
    data = report(
        policy={"number": "P-ACC-001", "insured_name": "张伟"},
        incident={"time": eng.clock.now().isoformat(), "cause": "accident"},
        **overrides,
    )
    case = eng.open_case("claim", data, AGENT).case
    case = eng.fire(case.id, "verify", HANDLER)
    case = eng.fire(
        case.id,
        "apply",
        HANDLER,
        {
            "applicant_name": "张伟",
            "applicant_id_number": "110101199003074514",
            "relationship": "self",
        },
    )
    case = eng.fire(
        case.id, "receive_materials", HANDLER, {"items": case.data["materials"]["required"]}
    )
    return eng.fire(case.id, "complete_materials", HANDLER)


def timer_events(eng: Engine, case_id: int) -> list[tuple[str, Any]]:
    return [
        (h.event, h.data.get("level"))
        for h in eng.history(case_id)
        if h.event.startswith("deadline_")
    ]


def at(clock: FakeClock, instant: datetime, eng: Engine) -> Any:
    clock.set(instant)
    return eng.run_due_timers()


def test_hand_over_warns_breaches_and_escalates_each_level_once_on_the_calendar(
    eng: Engine, clock: FakeClock
) -> None:
    """Materials complete Wed 2026-05-06 09:00 → due end of the make-up Saturday 05-09:
    warnings at 50% and 80%, the breach and level 1 at 05-10 00:00, level 2 one working
    day later (end of Mon 05-11), level 3 two (end of Tue 05-12)."""
    case = to_materials_complete(eng)
    (rule,) = [d for d in eng.deadlines(case.id) if d.rule == "hand_over"]
    assert rule.due_at == bj(2026, 5, 10)
    span = bj(2026, 5, 10) - bj(2026, 5, 6, 9, 0)

    assert at(clock, bj(2026, 5, 6, 9, 0) + span * 0.5 - timedelta(seconds=1), eng).fired == 0
    assert at(clock, bj(2026, 5, 6, 9, 0) + span * 0.5, eng).fired == 1
    assert at(clock, bj(2026, 5, 6, 9, 0) + span * 0.8, eng).fired == 1
    assert at(clock, bj(2026, 5, 9, 23, 59), eng).fired == 0
    assert at(clock, bj(2026, 5, 10, 0, 0), eng).fired == 2  # breach + level 1
    assert at(clock, bj(2026, 5, 11, 23, 0), eng).fired == 0
    assert at(clock, bj(2026, 5, 12, 0, 0), eng).fired == 1
    assert at(clock, bj(2026, 5, 13, 0, 0), eng).fired == 1
    assert at(clock, bj(2026, 6, 1), eng).fired == 0  # nothing fires twice

    assert timer_events(eng, case.id) == [
        ("deadline_warning", 1),
        ("deadline_warning", 2),
        ("deadline_breach", 0),
        ("deadline_escalation", 1),
        ("deadline_escalation", 2),
        ("deadline_escalation", 3),
    ]
    stored = eng.get_case(case.id)
    assert stored.state == "materials_complete"  # timers record, they do not move it
    assert stored.data["priority"] == 1  # level 1 raised the priority
    assert stored.data["assignee"]["role"] == "branch_manager"  # level 2 reassigned
    (status,) = [d for d in eng.deadlines(case.id) if d.rule == "hand_over"]
    assert (status.warned, status.breached, status.level, status.status) == (2, True, 3, "running")


def test_handing_over_in_time_ends_the_clock_and_nothing_fires(
    eng: Engine, clock: FakeClock
) -> None:
    case = to_materials_complete(eng)
    clock.set(bj(2026, 5, 8, 10, 0))
    assert eng.run_due_timers().fired == 1  # the 50% warning came due
    eng.fire(case.id, "hand_over", HANDLER, {"insurer": "太平洋财险"})
    assert at(clock, bj(2026, 5, 20), eng).fired == 0
    (status,) = [d for d in eng.deadlines(case.id) if d.rule == "hand_over"]
    assert (status.status, status.breached, status.next_timer_at) == ("met", False, None)


def test_the_insurers_30_days_pause_while_it_waits_for_materials(
    eng: Engine, clock: FakeClock
) -> None:
    """保险法第二十三条 with 最高法解释(二)第十五条: handed over Thu 2026-05-07 10:00, day 30
    is Sat 06-06 → Mon 06-08. The insurer asks for more on 05-10 and gets it on 05-15:
    5 days paused, so the 30 days count again from 05-12 10:00 → Thu 06-11."""
    case = to_materials_complete(eng)
    clock.set(bj(2026, 5, 7, 10, 0))
    case = eng.fire(case.id, "hand_over", HANDLER, {"insurer": "太平洋财险"})
    first = {d.rule: d for d in eng.deadlines(case.id)}["insurer_decision"]
    assert first.due_at == bj(2026, 6, 9)  # end of Mon 06-08
    clock.set(bj(2026, 5, 10, 10, 0))
    eng.fire(case.id, "insurer_requests_materials", HANDLER, {"items": ["test_results"]})
    paused = {d.rule: d for d in eng.deadlines(case.id)}["insurer_decision"]
    assert paused.status == "paused" and paused.pause_reason == "awaiting_materials"
    assert at(clock, bj(2026, 5, 15, 10, 0), eng).fired == 0  # a parked clock fires nothing
    eng.fire(case.id, "materials_resubmitted", HANDLER)
    resumed = {d.rule: d for d in eng.deadlines(case.id)}["insurer_decision"]
    assert resumed.status == "running" and resumed.paused_for == timedelta(days=5)
    assert resumed.due_at == bj(2026, 6, 12)
    notes = [n for h in eng.history(case.id) for n in h.notes]
    assert any("暂停计时：awaiting_materials" in n for n in notes)
    assert any("恢复计时" in n for n in notes)


def test_a_major_case_must_be_reported_to_headquarters_within_24_hours(
    eng: Engine, clock: FakeClock
) -> None:
    major = report(incident={"time": eng.clock.now().isoformat(), "injury": "death", "deaths": 2})
    case = eng.open_case("claim", major, AGENT).case
    (rule,) = [d for d in eng.deadlines(case.id) if d.rule == "major_report"]
    assert rule.due_at == bj(2026, 5, 7, 9, 0)
    clock.set(bj(2026, 5, 6, 21, 0))
    assert eng.run_due_timers().fired == 1  # the 50% warning
    eng.fire(case.id, "report_to_headquarters", SUPERVISOR, {"summary": "一次事故2人死亡"})
    assert at(clock, bj(2026, 5, 8), eng).fired == 0
    (rule,) = [d for d in eng.deadlines(case.id) if d.rule == "major_report"]
    assert rule.status == "met"


def test_a_case_that_is_not_major_has_no_headquarters_deadline(eng: Engine) -> None:
    case = eng.open_case("claim", report(), AGENT).case
    assert [d.rule for d in eng.deadlines(case.id)] == []


def test_life_products_run_on_the_stricter_5_working_days(eng: Engine, clock: FakeClock) -> None:
    """DOMAIN.md §5.4: P-LIFE-001 is a life policy."""
    data = report(incident={"time": eng.clock.now().isoformat()})
    case = eng.open_case("claim", data, AGENT).case
    case = eng.fire(case.id, "verify", HANDLER)
    case = eng.fire(
        case.id,
        "apply",
        HANDLER,
        {"applicant_name": "李娜", "applicant_id_number": ID_LI, "relationship": "self"},
    )
    case = eng.fire(
        case.id, "receive_materials", HANDLER, {"items": case.data["materials"]["required"]}
    )
    case = eng.fire(case.id, "complete_materials", HANDLER)
    case = eng.fire(case.id, "hand_over", HANDLER, {"insurer": "平安人寿"})
    rules = {d.rule: d for d in eng.deadlines(case.id)}
    assert "insurer_decision" not in rules
    # Handed over Wed 05-06: Thu 05-07, Fri 05-08, Sat 05-09 (调休), Mon 05-11, Tue 05-12.
    assert rules["insurer_decision_life"].due_at == bj(2026, 5, 13)


def test_a_timer_whose_case_moved_on_is_skipped_and_recorded(eng: Engine, clock: FakeClock) -> None:
    case = to_materials_complete(eng)
    with eng.store.write() as tx:  # as if the hand-over and the sweep crossed
        tx.conn.execute(
            t.case_deadlines.update()
            .where(t.case_deadlines.c.case_id == case.id)
            .values(status="met")
        )
    clock.set(bj(2026, 5, 20))
    run = eng.run_due_timers()
    assert (run.fired, run.skipped) == (0, 6)
    with eng.store.read() as tx:
        outcomes = {
            r.outcome
            for r in tx.conn.execute(
                sa.select(t.timers.c.outcome).where(t.timers.c.case_id == case.id)
            )
        }
    assert outcomes == {"the deadline is met: the case moved on (now materials_complete)"}
    assert timer_events(eng, case.id) == []


def test_timers_survive_a_restart_and_fire_once_marked_late(db_url: str) -> None:
    clock = FakeClock(bj(2026, 5, 6, 9, 0))
    calendar = ChineseOfficialCalendar()
    first = open_engine(db_url, clock=clock, calendar=calendar)
    first.policies.add(POLICIES)  # type: ignore[attr-defined]
    case = to_materials_complete(first)
    first.close()  # the process goes away with its timers due later

    clock.set(bj(2026, 5, 14, 8, 0))  # back after the breach and every level
    second = open_engine(db_url, clock=clock, calendar=calendar)
    try:
        run = second.run_due_timers()
        assert run.fired == 6 and run.max_late_seconds > 3600
        assert second.run_due_timers().fired == 0
        late = [
            h.data["late_seconds"]
            for h in second.history(case.id)
            if h.event.startswith("deadline_")
        ]
        assert len(late) == 6 and all(s > 0 for s in late)
    finally:
        second.close()


def test_the_companys_own_periods_are_configuration() -> None:
    """细则第四条: 3 working days and 24 hours are the company's choice."""
    from baoflow.workflows import claim

    settings = claim.ClaimSettings(hand_over_working_days=2, major_report_hours=12)
    rules = {r.name: r for r in claim.build(settings).deadlines}
    assert str(rules["hand_over"].period) == "2 working_days"
    assert str(rules["major_report"].period) == "12 hours"
    assert str(rules["insurer_decision"].period) == "30 natural_days"  # the law's: fixed


def test_a_company_period_below_one_is_refused() -> None:
    import pytest
    from baoflow.workflows import claim

    with pytest.raises(ValueError, match="hand_over_working_days must be 1 or more"):
        claim.ClaimSettings(hand_over_working_days=0)


def test_one_timer_that_cannot_take_effect_does_not_stop_the_others(
    eng: Engine, clock: FakeClock, monkeypatch: Any
) -> None:
    """A bug in one effect is logged and its timer released for a retry; the rest fire."""
    from baoflow.engine import timers as timer_module

    first = to_materials_complete(eng)
    clock.advance(days=1)
    second = to_materials_complete(eng, reporter={"phone": "13900000002"})
    real_effect = timer_module.effect

    def broken_for_the_first_case(rule: Any, timer: Any, *args: Any, **kwargs: Any) -> Any:
        if timer.case_id == first.id:
            raise RuntimeError("boom")
        return real_effect(rule, timer, *args, **kwargs)

    monkeypatch.setattr(timer_module, "effect", broken_for_the_first_case)
    clock.set(bj(2026, 5, 30))
    run = eng.run_due_timers()
    assert run.fired == 6 and run.retried >= 6  # released; tried again before the run ends
    assert timer_events(eng, first.id) == []
    assert len(timer_events(eng, second.id)) == 6
    monkeypatch.setattr(timer_module, "effect", real_effect)
    assert eng.run_due_timers().fired == 6  # released, so the next run fires them
    assert len(timer_events(eng, first.id)) == 6


def test_a_drain_of_many_batches_checks_out_one_connection(eng: Engine, clock: FakeClock) -> None:
    """run_due_timers pins one connection for all its batches: no pool check-out (and on
    PostgreSQL no pre-ping round trip) per batch."""
    for phone in ("13900000001", "13900000002", "13900000003"):
        to_materials_complete(eng, reporter={"phone": phone})
        clock.advance(days=1)
    checkouts: list[object] = []
    listener = lambda *_: checkouts.append(1)  # noqa: E731
    sa.event.listen(eng.store.engine.pool, "checkout", listener)
    try:
        clock.set(bj(2026, 6, 1))  # every timer of the three cases is due
        assert eng.run_due_timers(batch=1).fired == 3 * 6
    finally:
        sa.event.remove(eng.store.engine.pool, "checkout", listener)
    assert len(checkouts) == 1
