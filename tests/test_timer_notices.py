"""Deadline warnings, breaches and escalations tell people through the outbox: one row
per notice and recipient, written in the commit of the effect that caused it, never for
an effect that rolled back, never twice (issue #4's effects; delivery is issue #5)."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import pytest
from baoflow.engine import DefinitionError, Engine, FakeClock, Hooks, load_workflow
from baoflow.engine.notices import TEMPLATE_FIELDS

from tests.conftest import HANDLER
from tests.test_timers import bj, timer_events, to_materials_complete
from tests.toy import TOY, toy_engine


def outbox(eng: Engine, case_id: int) -> list[Any]:
    """The case's deadline notices (its transitions' own notices are left out)."""
    with eng.store.read() as tx:
        return [row for row in tx.outbox(case_id) if row.template.startswith("deadline_")]


def told(eng: Engine, case_id: int) -> list[tuple[str, str]]:
    return [(row.template, row.recipient) for row in outbox(eng, case_id)]


def test_a_warning_tells_the_handler_in_the_commit_that_records_it(
    eng: Engine, clock: FakeClock
) -> None:
    case = to_materials_complete(eng)
    assert outbox(eng, case.id) == []
    clock.set(bj(2026, 5, 8, 4, 30))  # 50% of Wed 09:00 → Sun 00:00
    assert eng.run_due_timers().fired == 1

    (row,) = outbox(eng, case.id)
    (warning,) = [h for h in eng.history(case.id) if h.event == "deadline_warning"]
    assert (row.template, row.recipient, row.status, row.attempts) == (
        "deadline_warning",
        "handler",
        "pending",
        0,
    )
    assert row.seq == warning.seq  # the history row that caused it
    assert row.next_attempt_at == clock.now()  # deliverable at once
    assert set(row.context) == TEMPLATE_FIELDS["deadline_warning"]
    assert row.context["case_number"] == case.number
    assert row.context["due_at"] == "2026-05-09 24:00"  # Beijing time, the end of 05-09
    assert row.context["share"] == 0.5
    assert row.context["rule"] == "hand_over"
    assert row.context["article"].startswith("细则第四条")


def test_the_breach_and_each_escalation_level_tell_their_own_recipients_once(
    eng: Engine, clock: FakeClock
) -> None:
    case = to_materials_complete(eng)
    for instant in (bj(2026, 5, 8), bj(2026, 5, 10), bj(2026, 5, 12), bj(2026, 5, 13)):
        clock.set(instant)
        eng.run_due_timers()
    clock.set(bj(2026, 6, 1))
    assert eng.run_due_timers().fired == 0

    assert told(eng, case.id) == [
        ("deadline_warning", "handler"),
        ("deadline_warning", "handler"),
        ("deadline_breach", "handler"),
        ("deadline_escalation", "supervisor"),
        ("deadline_escalation", "branch_manager"),
        ("deadline_escalation", "headquarters"),
    ]
    rows = outbox(eng, case.id)
    assert len({r.key for r in rows}) == len(rows)
    for row in rows:
        assert set(row.context) == TEMPLATE_FIELDS[row.template], row.template
    escalations = [r.context for r in rows if r.template == "deadline_escalation"]
    assert [(c["level"], c["to"]) for c in escalations] == [
        (1, "supervisor"),
        (2, "branch_manager"),
        (3, "headquarters"),
    ]
    assert escalations[1]["actions"] == ["notify", "reassign"]


def test_a_rule_names_who_hears_of_its_warnings_and_a_level_without_notify_tells_nobody(
    eng: Engine, clock: FakeClock
) -> None:
    toy_engine(eng, notify=["handler", "supervisor"], period="4 hours", warnings=[0.5])
    case = eng.open_case("toy", {}, HANDLER).case
    clock.advance(hours=2)
    eng.run_due_timers()
    assert told(eng, case.id) == [
        ("deadline_warning", "handler"),
        ("deadline_warning", "supervisor"),
    ]
    clock.advance(hours=2)  # breach + level 1 (notify, raise_priority)
    eng.run_due_timers()
    clock.advance(days=2)  # level 2 (one working day on) is reassign only: it tells nobody
    eng.run_due_timers()
    assert [e for e, _ in timer_events(eng, case.id)].count("deadline_escalation") == 2
    assert told(eng, case.id)[2:] == [
        ("deadline_breach", "handler"),
        ("deadline_breach", "supervisor"),
        ("deadline_escalation", "supervisor"),
    ]


def test_a_rule_that_notifies_nobody_writes_no_notices(eng: Engine, clock: FakeClock) -> None:
    toy_engine(eng, notify=[], period="4 hours", warnings=[0.5])
    case = eng.open_case("toy", {}, HANDLER).case
    clock.advance(hours=4)
    assert eng.run_due_timers().fired == 3  # warning, breach, level 1
    assert told(eng, case.id) == [("deadline_escalation", "supervisor")]


def test_an_effect_that_rolls_back_tells_nobody_and_its_retry_tells_once(
    eng: Engine, clock: FakeClock, monkeypatch: Any
) -> None:
    """The outbox row is part of the effect's commit: a failing effect leaves none, and
    when it succeeds on the next run there is exactly one."""
    from baoflow.engine import timers as timer_module

    case = to_materials_complete(eng)
    real_effect = timer_module.effect

    def broken(*args: Any, **kwargs: Any) -> Any:
        eff, _ = real_effect(*args, **kwargs)
        raise RuntimeError(f"boom after computing {eff.event}")

    monkeypatch.setattr(timer_module, "effect", broken)
    clock.set(bj(2026, 5, 8, 4, 30))
    run = eng.run_due_timers()
    assert run.fired == 0 and run.retried >= 1
    assert outbox(eng, case.id) == []
    monkeypatch.setattr(timer_module, "effect", real_effect)
    assert eng.run_due_timers().fired == 1
    assert eng.run_due_timers().fired == 0
    assert told(eng, case.id) == [("deadline_warning", "handler")]


def test_a_deadline_met_in_time_tells_nobody(eng: Engine, clock: FakeClock) -> None:
    case = to_materials_complete(eng)
    eng.fire(case.id, "hand_over", HANDLER, {"insurer": "平安人寿", "reference": "PA-1"})
    clock.set(bj(2026, 5, 20))  # long after the hand-over deadline; before the insurer's
    eng.run_due_timers()
    assert told(eng, case.id) == []


@pytest.mark.parametrize(
    "notify, message",
    [
        ("handler", "must be a list of roles"),
        ([""], "must be a list of roles"),
        ([3], "must be a list of roles"),
    ],
)
def test_a_notify_that_is_not_a_list_of_roles_is_refused_at_load(notify: Any, message: str) -> None:
    spec = deepcopy(TOY)
    spec["deadlines"][0]["notify"] = notify
    with pytest.raises(DefinitionError) as exc:
        load_workflow(spec, Hooks())
    found = {p.location: p.message for p in exc.value.problems}
    assert message in found["deadlines[0].notify"]
