"""An unknown key anywhere in a definition is refused at load, with its location and the
nearest known key, together with every other problem (issue #11, item 5).

A typo used to load without a word: ``guard = [...]`` left a transition unguarded,
``warning = [0.5]`` left a deadline without warnings.
"""

from __future__ import annotations

import re
from collections import defaultdict
from copy import deepcopy
from typing import Any

import pytest
from baoflow.engine import DefinitionError, Hooks, NoticeSpec, load_workflow, loading
from baoflow.workflows import claim, complaint, endorsement, surrender

from tests.toy import TOY

READY = Hooks(guards={"ready": lambda ctx: []})


def problems(spec: Any, hooks: Hooks = READY) -> dict[str, str]:
    with pytest.raises(DefinitionError) as exc:
        load_workflow(spec, hooks)
    return {p.location: p.message for p in exc.value.problems}


def toy(**changes: Any) -> dict[str, Any]:
    return deepcopy(TOY) | changes


def test_a_typo_of_a_top_level_table_is_refused() -> None:
    spec = toy()
    spec["transition"] = spec.pop("transitions")
    found = problems(spec)
    assert found["transition"].startswith("unknown key 'transition' (did you mean 'transitions'?)")


def test_a_typo_in_the_workflow_table_is_refused() -> None:
    spec = toy()
    spec["workflow"]["titel"] = "A toy"
    assert found_startswith(problems(spec), "workflow.titel", "(did you mean 'title'?)")


def test_a_typo_of_a_search_key_is_refused() -> None:
    spec = toy()
    spec["workflow"]["index"] = {"policy_numer": "policy.number"}
    found = problems(spec)
    assert found["workflow.index.policy_numer"].startswith(
        "'policy_numer' is one slip away from the built-in key 'policy_number': "
        "did you mean 'policy_number'?"
    )


@pytest.mark.parametrize("path", [{"path": "policy.number"}, 7, "", "policy..number"])
def test_a_search_key_maps_to_a_dotted_path(path: Any) -> None:
    spec = toy()
    spec["workflow"]["index"] = {"policy_number": path}
    assert "must be a dotted path" in problems(spec)["workflow.index.policy_number"]


def test_a_typo_in_a_state_is_refused() -> None:
    spec = toy()
    spec["states"]["done"] = {"fianl": True}
    assert found_startswith(problems(spec), "states.done.fianl", "(did you mean 'final'?)")


def test_a_typo_in_a_transition_is_refused_instead_of_leaving_it_unguarded() -> None:
    spec = toy()
    spec["transitions"][2]["guard"] = ["ready"]
    assert found_startswith(problems(spec), "transitions[2].guard", "(did you mean 'guards'?)")


def test_a_typo_in_a_notice_of_a_transition_is_refused() -> None:
    notices = Hooks(notices={"done": NoticeSpec(frozenset(), lambda ctx: {})})
    spec = toy()
    spec["transitions"][2]["notify"] = [{"template": "done", "too": "handler"}]
    found = problems(spec, notices)
    assert found_startswith(found, "transitions[2].notify[0].too", "(did you mean 'to'?)")


def test_a_typo_in_a_permission_row_is_refused() -> None:
    spec = toy(permissions=[{"events": ["finish"], "role": ["handler"]}])
    assert found_startswith(problems(spec), "permissions[0].role", "(did you mean 'roles'?)")


def test_a_typo_in_a_deadline_rule_is_refused_instead_of_dropping_its_warnings() -> None:
    spec = toy()
    rule = spec["deadlines"][0]
    rule["warning"] = rule.pop("warnings")
    rule["close_of_busines"] = rule.pop("close_of_business")
    found = problems(spec)
    assert found_startswith(found, "deadlines[0].warning", "(did you mean 'warnings'?)")
    assert found_startswith(
        found, "deadlines[0].close_of_busines", "(did you mean 'close_of_business'?)"
    )


def test_a_typo_of_a_deadline_s_pauses_is_refused() -> None:
    # The reasons inside ``pauses`` are the author's own names (checked as names, and
    # their states as states); the key that holds them is not.
    spec = toy()
    rule = spec["deadlines"][0]
    rule["pause"] = rule.pop("pauses")
    assert found_startswith(problems(spec), "deadlines[0].pause", "(did you mean 'pauses'?)")


def test_a_typo_in_a_deadline_extension_is_refused() -> None:
    spec = toy()
    spec["deadlines"][0]["extensions"] = [{"event": "wait", "perod": "30 natural_days"}]
    found = problems(spec)
    assert found_startswith(found, "deadlines[0].extensions[0].perod", "(did you mean 'period'?)")


def test_a_typo_in_an_escalation_level_is_refused() -> None:
    spec = toy()
    spec["deadlines"][0]["escalations"][1]["afer"] = "1 working_days"
    found = problems(spec)
    assert found_startswith(found, "deadlines[0].escalations[1].afer", "(did you mean 'after'?)")


def test_a_key_like_no_known_one_lists_the_known_keys() -> None:
    spec = toy()
    spec["states"]["done"]["colour"] = "green"
    assert problems(spec)["states.done.colour"] == (
        "unknown key 'colour'; known: title, final, description"
    )


TYPOS = """\
[workflow]
name = "toy"
version = 1
case_number_prefix = "TY"
initial = "new"
intial = "new"

[states.new]
[states.done]
final = true

[[transitions]]
event = "finish"
source = "new"
target = "done"
guard = ["ready"]

[[transition]]
event = "again"

[[permissions]]
events = ["finish"]
roles = ["handler"]
own_org_units = false

[[deadlines]]
name = "answer"
period = "15 natural_days"
starts_on = ["new"]
stops_on = ["done"]
warning = [0.5]
[[deadlines.escalations]]
to = "supervisor"
action = ["notify"]
"""


def test_typos_in_different_sections_are_all_reported_in_one_error() -> None:
    with pytest.raises(DefinitionError) as exc:
        load_workflow(TYPOS, READY)
    found = {p.location: p.message for p in exc.value.problems}
    assert {where: meant(message) for where, message in found.items()} == {
        "workflow.intial": "initial",
        "transitions[0].guard": "guards",
        "transition": "transitions",
        "permissions[0].own_org_units": "own_org_unit",
        "deadlines[0].warning": "warnings",
        "deadlines[0].escalations[0].action": "actions",
    }
    assert "has 6 problems" in str(exc.value)


def test_the_bundled_workflows_and_the_toy_have_no_unknown_keys() -> None:
    for build in (claim.build, complaint.build, endorsement.build, surrender.build):
        assert build().name
    assert load_workflow(TOY, Hooks()).name == "toy"


def test_every_key_the_loader_declares_it_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    # A declared key nothing reads would be accepted and ignored: the very typo problem.
    read: dict[tuple[str, ...], set[str]] = defaultdict(set)
    declared = loading._Table._declared

    def recording(table: Any, key: str) -> str:
        read[table.keys].add(key)
        return declared(table, key)

    monkeypatch.setattr(loading._Table, "_declared", recording)
    for build in (claim.build, complaint.build, endorsement.build, surrender.build):
        build()
    load_workflow(TOY, Hooks())
    tuples = {v for k, v in vars(loading).items() if k.endswith("_KEYS") and type(v) is tuple}
    assert len(tuples) == 9
    assert {keys: set(keys) for keys in tuples} == dict(read)


def test_reading_a_key_a_table_does_not_declare_is_a_bug_raised_at_once() -> None:
    table = loading._Table({"name": "x"}, "workflow", ("name",), [])
    with pytest.raises(LookupError, match="not among that table's keys"):
        table.get("nmae")


def meant(message: str) -> str:
    """The key a problem's message suggests, or the whole message if it suggests none."""
    match = re.match(r"unknown key '\w+' \(did you mean '(\w+)'\?\)", message)
    return match.group(1) if match else message


def found_startswith(found: dict[str, str], where: str, hint: str) -> bool:
    key = where.rsplit(".", 1)[-1]
    return found.get(where, "").startswith(f"unknown key {key!r} {hint}; known: ")
