"""Deadline rules are data in the workflow definition, refused at load with the location
of every problem (issue #4, bad input)."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import pytest
from baoflow.engine import DefinitionError, Hooks, load_workflow
from baoflow.engine.deadlines import Period, Unit

from tests.toy import TOY


def problems(spec: dict[str, Any], hooks: Hooks | None = None) -> dict[str, str]:
    with pytest.raises(DefinitionError) as exc:
        load_workflow(spec, hooks or Hooks())
    return {p.location: p.message for p in exc.value.problems}


def test_a_rule_loads_with_its_period_pauses_warnings_and_escalation_chain() -> None:
    (rule,) = load_workflow(TOY, Hooks()).deadlines
    assert rule.period == Period(15, Unit.natural_days)
    assert rule.pauses == {"awaiting_customer": ("waiting",)}
    assert rule.warnings == (0.5, 0.8)
    assert [(e.level, e.to, str(e.after)) for e in rule.escalations] == [
        (1, "supervisor", "0 hours"),
        (2, "branch_manager", "1 working_days"),
        (3, "headquarters", "2 working_days"),
    ]
    assert rule.close_of_business is not None and rule.close_of_business.hour == 17


def test_unknown_states_and_events_are_refused_with_their_location() -> None:
    bad = deepcopy(TOY)
    rule = bad["deadlines"][0]
    rule["starts_on"] = ["nwe"]
    rule["stops_on_events"] = ["finsh"]
    rule["pauses"] = {"awaiting_customer": ["wating"]}
    rule["escalations"][2]["event"] = "explode"
    found = problems(bad)
    assert "unknown state 'nwe'" in found["deadlines[0].starts_on[0]"]
    assert "unknown event 'finsh'" in found["deadlines[0].stops_on_events[0]"]
    assert "unknown state 'wating'" in found["deadlines[0].pauses.awaiting_customer[0]"]
    assert "unknown event 'explode'" in found["deadlines[0].escalations[2].event"]


@pytest.mark.parametrize("period", ["0 working_days", "-3 hours", "3 weeks", "soon"])
def test_a_period_that_is_zero_negative_or_not_a_period_is_refused(period: str) -> None:
    bad = deepcopy(TOY)
    bad["deadlines"][0]["period"] = period
    assert "deadlines[0].period" in problems(bad)


def test_an_escalation_level_without_a_target_is_refused() -> None:
    bad = deepcopy(TOY)
    del bad["deadlines"][0]["escalations"][1]["to"]
    assert "needs a target role" in problems(bad)["deadlines[0].escalations[1].to"]


def test_unknown_escalation_actions_bad_warnings_and_times_are_refused() -> None:
    bad = deepcopy(TOY)
    rule = bad["deadlines"][0]
    rule["escalations"][0]["actions"] = ["notify", "panic"]
    rule["warnings"] = [0.5, 1.5]
    rule["close_of_business"] = "half past five"
    rule["when"] = "is_major"
    found = problems(bad)
    assert "unknown action 'panic'" in found["deadlines[0].escalations[0].actions[1]"]
    assert "fractions between 0 and 1" in found["deadlines[0].warnings"]
    assert "HH:MM" in found["deadlines[0].close_of_business"]
    assert "no condition named 'is_major'" in found["deadlines[0].when"]


def test_a_rule_that_cannot_start_or_stop_is_refused() -> None:
    bad = deepcopy(TOY)
    bad["deadlines"][0]["starts_on"] = []
    bad["deadlines"][0]["stops_on"] = []
    found = problems(bad)
    assert "starts the clock" in found["deadlines[0].starts_on"]
    assert "stop the clock" in found["deadlines[0].stops_on"]
