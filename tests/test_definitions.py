"""Definitions are data, validated at load: every problem at once, with its location."""

from __future__ import annotations

import tomllib
from copy import deepcopy
from typing import Any

import pytest
from baoflow.engine import DefinitionError, Engine, Hooks, load_workflow, open_engine
from baoflow.engine.clock import FakeClock
from baoflow.workflows import claim

from tests.conftest import AGENT, HANDLER, POLICIES, report

MINIMAL: dict[str, Any] = {
    "workflow": {"name": "toy", "version": 1, "case_number_prefix": "TY", "initial": "new"},
    "states": {"new": {}, "done": {"final": True}},
    "transitions": [{"event": "finish", "source": "new", "target": "done"}],
}


def locations(exc: pytest.ExceptionInfo[DefinitionError]) -> dict[str, str]:
    found: dict[str, str] = {}
    for p in exc.value.problems:
        found[p.location] = (
            f"{found[p.location]}; {p.message}" if p.location in found else p.message
        )
    return found


def test_a_sound_definition_loads() -> None:
    d = load_workflow(MINIMAL, Hooks())
    assert d.initial == "new" and d.final_states == {"done"}
    assert d.events == ("finish",)


def test_the_claim_workflow_loads_with_every_transition_citing_its_article() -> None:
    d = claim.build()
    assert d.name == "claim" and d.case_number_prefix == "LP"
    assert all(t.article for t in d.transitions)


def test_every_problem_is_reported_at_once_with_its_location() -> None:
    bad = deepcopy(MINIMAL)
    bad["states"].update({"orphan": {}, "stuck": {}, "limbo": {}})
    bad["transitions"] += [
        {"event": "go", "source": "new", "target": "nowhere"},  # unknown target
        {"event": "finish", "source": "new", "target": "stuck"},  # same event twice
        {"event": "reopen", "source": "done", "target": "new"},  # exit from a final state
        {"event": "wait", "source": "new", "target": "limbo"},
        {"event": "loop", "source": "limbo", "target": "limbo"},  # never reaches a final
        {"event": "check", "source": "new", "target": "done", "guards": ["nope"]},
        {"event": "Bad-Name", "source": "new", "target": "done", "schema": "Missing"},
    ]
    with pytest.raises(DefinitionError) as exc:
        load_workflow(bad, Hooks())
    found = locations(exc)
    assert "unknown state 'nowhere'" in found["transitions[1].target"]
    assert "already defined at transitions[0]" in found["transitions[2]"]
    assert "final state has no exits" in found["transitions[3].source"]
    assert "no guard named 'nope'" in found["transitions[6].guards[0]"]
    assert "no schema named 'Missing'" in found["transitions[7].schema"]
    assert "lower_snake_case" in found["transitions[7].event"]
    assert "unreachable" in found["states.orphan"]
    assert "trap" in found["states.orphan"]
    assert "no path from here reaches a final state" in found["states.limbo"]
    assert str(exc.value).startswith("workflow definition <mapping> has ")


def test_missing_header_fields_and_no_final_state_are_reported() -> None:
    bad = {"workflow": {"name": "toy"}, "states": {"a": {}}, "transitions": []}
    with pytest.raises(DefinitionError) as exc:
        load_workflow(bad, Hooks())
    found = locations(exc)
    for key in ("workflow.version", "workflow.case_number_prefix", "workflow.initial"):
        assert "is required" in found[key]


def test_an_initial_state_that_does_not_exist_is_refused() -> None:
    bad = deepcopy(MINIMAL)
    bad["workflow"]["initial"] = "started"
    with pytest.raises(DefinitionError) as exc:
        load_workflow(bad, Hooks())
    assert "'started' is not one of the states" in locations(exc)["workflow.initial"]


def test_a_definition_without_a_final_state_is_refused() -> None:
    bad = deepcopy(MINIMAL)
    bad["states"]["done"] = {}
    with pytest.raises(DefinitionError) as exc:
        load_workflow(bad, Hooks())
    assert "no state is final" in locations(exc)["states"]


def test_wrong_types_are_reported_not_crashed_on() -> None:
    bad = deepcopy(MINIMAL)
    bad["workflow"]["version"] = "one"
    bad["states"]["done"]["final"] = "yes"
    with pytest.raises(DefinitionError) as exc:
        load_workflow(bad, Hooks())
    found = locations(exc)
    assert "must be int" in found["workflow.version"]
    assert "must be bool" in found["states.done.final"]


def test_invalid_toml_is_a_definition_error(tmp_path: Any) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[workflow\nname = 'x'", encoding="utf-8")
    with pytest.raises(DefinitionError, match="not valid TOML"):
        load_workflow(path, Hooks())


def _claim_v2_without_withdrawal_after_hand_over() -> Any:
    data = tomllib.loads(claim.DEFINITION.read_text(encoding="utf-8"))
    data["workflow"]["version"] = 2
    for t in data["transitions"]:
        if t["event"] == "withdraw":
            t["source"] = [
                s for s, v in data["states"].items() if not v.get("final") and s != "handed_over"
            ]
    v1 = claim.build()
    return load_workflow(data, v1.hooks), v1


def test_running_cases_stay_on_the_version_they_started_with(db_url: str, clock: FakeClock) -> None:
    v2, v1 = _claim_v2_without_withdrawal_after_hand_over()
    old_engine = open_engine(db_url, clock=clock, workflows=[v1])
    assert hasattr(old_engine.policies, "add")
    old_engine.policies.add(POLICIES)  # type: ignore[attr-defined]
    old_case = _to_handed_over(old_engine)
    old_engine.close()
    clock.advance(days=1)  # a new incident, not a duplicate report of the first

    eng = open_engine(db_url, clock=clock, workflows=[v1, v2])
    try:
        new_case = _to_handed_over(eng)
        assert new_case.workflow_version == 2 and old_case.workflow_version == 1
        assert "withdraw" not in [e.event for e in eng.available_events(new_case.id)]
        withdrawn = eng.fire(old_case.id, "withdraw", HANDLER, {"reason": "客户撤回"})
        assert withdrawn.state == "withdrawn" and withdrawn.workflow_version == 1
    finally:
        eng.close()


def _to_handed_over(eng: Engine) -> Any:
    when = eng.clock.now().isoformat()
    case = eng.open_case("claim", report(incident={"time": when}), AGENT).case
    case = eng.fire(case.id, "verify", HANDLER)
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
    return eng.fire(case.id, "hand_over", HANDLER, {"insurer": "平安人寿"})
