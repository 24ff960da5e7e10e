"""Each escalation action does what it says, once, on SQLite and PostgreSQL: raise the
priority, reassign, notify, and fire an event that moves the case (issue #4)."""

from __future__ import annotations

from baoflow.engine import Engine, FakeClock

from tests.conftest import HANDLER
from tests.test_timer_notices import told
from tests.test_timers import bj
from tests.toy import toy_engine


def test_the_chain_raises_priority_then_reassigns_then_fires_its_event(
    eng: Engine, clock: FakeClock
) -> None:
    """TOY: 4 hours from Wed 2026-05-06 09:00 → breach 13:00 with level 1 (notify,
    raise_priority); level 2 one working day on (reassign); level 3 two working days on
    (fire_event "finish", which ends the case)."""
    toy_engine(eng, period="4 hours", warnings=[])
    case = eng.open_case("toy", {}, HANDLER).case

    clock.set(bj(2026, 5, 6, 13, 0))
    assert eng.run_due_timers().fired == 2  # breach + level 1
    assert eng.get_case(case.id).data["priority"] == 1

    clock.set(bj(2026, 5, 8, 0, 0))  # end of Thu 05-07: level 2
    assert eng.run_due_timers().fired == 1
    after = eng.get_case(case.id)
    assert after.data["assignee"]["role"] == "branch_manager"
    assert after.data["priority"] == 1  # untouched by a level that does not raise it
    assert after.state == "new"

    clock.set(bj(2026, 5, 9, 0, 0))  # end of Fri 05-08: level 3 fires "finish"
    assert eng.run_due_timers().fired == 1
    done = eng.get_case(case.id)
    assert done.state == "done"
    last_two = [(h.event, h.actor.id, h.to_state) for h in eng.history(case.id)[-2:]]
    assert last_two == [
        ("deadline_escalation", "timer", "new"),
        ("finish", "escalation", "done"),
    ]
    (status,) = eng.deadlines(case.id)
    assert (status.level, status.status) == (3, "breached_met")
    clock.set(bj(2026, 6, 1))
    assert eng.run_due_timers().fired == 0  # nothing fires twice
    assert told(eng, case.id) == [
        ("deadline_breach", "handler"),
        ("deadline_escalation", "supervisor"),
    ]


def test_a_deadline_met_after_its_due_time_is_late_even_if_no_worker_ran(
    eng: Engine, clock: FakeClock
) -> None:
    """Whether the breach timer fired or not: ended past due is met late."""
    toy_engine(eng, period="4 hours", warnings=[])
    case = eng.open_case("toy", {}, HANDLER).case
    clock.advance(hours=5)
    eng.fire(case.id, "finish", HANDLER)
    (status,) = eng.deadlines(case.id)
    assert status.status == "breached_met"
    (rule,) = [r for r in eng.sla_report().rules if r.rule == "answer"]
    assert (rule.met_on_time, rule.met_late) == (0, 1)


def test_a_deadline_ended_while_paused_is_late_only_if_it_was_past_due_when_paused(
    eng: Engine, clock: FakeClock
) -> None:
    toy_engine(eng, period="4 hours", warnings=[])
    in_time = eng.open_case("toy", {}, HANDLER).case
    clock.advance(hours=1)
    eng.fire(in_time.id, "wait", HANDLER)  # paused after 1 of its 4 hours
    clock.advance(hours=10)
    eng.fire(in_time.id, "finish", HANDLER)
    late = eng.open_case("toy", {}, HANDLER).case
    clock.advance(hours=5)
    eng.fire(late.id, "wait", HANDLER)  # paused when already an hour past due
    clock.advance(hours=1)
    eng.fire(late.id, "finish", HANDLER)
    assert [d.status for d in eng.deadlines(in_time.id)] == ["met"]
    assert [d.status for d in eng.deadlines(late.id)] == ["breached_met"]
