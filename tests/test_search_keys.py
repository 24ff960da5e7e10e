"""Search keys a workflow declares of its own (issue #14, item 6): any workflow names
its keys in ``[workflow.index]``, each indexed and searchable through ``find_cases``,
``count_cases``, the API and the CLI, without a migration per key. The built-in keys
(policy number, insured name, ID number, insurer reference, handler) stay columns; a
name one slip away from one of them is refused at load."""

from __future__ import annotations

import json
from copy import deepcopy
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from baoflow.engine import (
    SHANGHAI,
    Actor,
    DefinitionError,
    Engine,
    Hooks,
    InvalidData,
    load_workflow,
)
from baoflow.engine.store import tables as t
from pydantic import BaseModel

from tests.conftest import AGENT, SUPERVISOR


class Caller(BaseModel):
    phone: str | None = None
    policy: str


class Opening(BaseModel):
    caller: Caller


def forget_phone(ctx: Any) -> None:
    ctx.new_data["caller"] = {**ctx.new_data["caller"], "phone": None}


HOOKS = Hooks(
    schemas={"opening": Opening, "caller": Caller}, actions={"forget_phone": forget_phone}
)

CALLBACK: dict[str, Any] = {
    "workflow": {
        "name": "callback",
        "version": 1,
        "case_number_prefix": "CB",
        "initial": "new",
        "open_schema": "opening",
        "index": {"phone": "caller.phone", "policy_number": "caller.policy"},
    },
    "states": {"new": {}, "done": {"final": True}},
    "transitions": [
        {
            "event": "new_number",
            "source": "new",
            "target": ".",
            "schema": "caller",
            "store_as": "caller",
        },
        {"event": "forget_number", "source": "new", "target": ".", "actions": ["forget_phone"]},
        {"event": "finish", "source": "new", "target": "done"},
    ],
}


def callback(eng: Engine, spec: dict[str, Any] | None = None) -> Engine:
    eng.register(load_workflow(spec or CALLBACK, HOOKS))
    return eng


def rows(eng: Engine, case_id: int) -> dict[str, str]:
    k = t.case_keys.c
    with eng.store.engine.connect() as conn:
        q = sa.select(k.key, k.value).where(k.case_id == case_id)
        return {key: value for key, value in conn.execute(q)}


def opened(eng: Engine, phone: str | None, actor: Actor = AGENT) -> Any:
    caller = {"policy": "P-1"} if phone is None else {"phone": phone, "policy": "P-1"}
    return eng.open_case("callback", {"caller": caller}, actor).case


def test_a_workflow_finds_its_cases_by_a_key_of_its_own(eng: Engine) -> None:
    callback(eng)
    first, second = opened(eng, "13800000001"), opened(eng, "13800000002")
    found = eng.find_cases(keys={"phone": "13800000002"})
    assert [c.number for c in found] == [second.number]
    assert eng.count_cases(keys={"phone": "13800000001"}) == 1
    assert rows(eng, first.id) == {"phone": "13800000001"}  # built-in keys stay columns


def test_own_and_built_in_keys_combine_with_the_other_filters(eng: Engine) -> None:
    callback(eng)
    case = opened(eng, "13800000001")
    assert eng.find_cases(keys={"phone": "13800000001", "policy_number": "P-1"}) == [case]
    assert eng.find_cases(keys={"phone": "13800000001"}, policy_number="P-2") == []
    assert eng.find_cases(keys={"phone": "13800000001"}, state="done") == []


def test_an_event_that_changes_the_data_moves_the_key(eng: Engine) -> None:
    callback(eng)
    case = opened(eng, "13800000001")
    eng.fire(case.id, "new_number", AGENT, {"phone": "13900000009", "policy": "P-1"})
    assert eng.find_cases(keys={"phone": "13800000001"}) == []
    assert [c.id for c in eng.find_cases(keys={"phone": "13900000009"})] == [case.id]
    eng.fire(case.id, "forget_number", AGENT)
    assert eng.get_case(case.id).data["caller"]["phone"] is None
    assert rows(eng, case.id) == {}


def test_a_case_without_the_value_has_no_row(eng: Engine) -> None:
    callback(eng)
    case = opened(eng, None)
    assert rows(eng, case.id) == {}
    assert eng.find_cases(keys={"phone": "None"}) == []


def test_a_viewer_finds_by_a_key_only_the_cases_they_may_see(eng: Engine) -> None:
    from tests.test_complaint import register

    phone = register(eng).data["complainant"]["phone"]  # a complaint of SH's
    other_branch = Actor("b01", "周", ("supervisor",), "BJ")
    assert eng.find_cases(keys={"phone": phone}, visible_to=other_branch) == []
    assert len(eng.find_cases(keys={"phone": phone}, visible_to=SUPERVISOR)) == 1


def test_an_unknown_key_is_an_error_that_names_the_declared_ones(eng: Engine) -> None:
    callback(eng)
    with pytest.raises(InvalidData) as exc:
        eng.find_cases(keys={"phnoe": "1"})
    message = str(exc.value)
    assert "'phnoe' is not a search key of any registered workflow (did you mean 'phone'?)" in (
        message
    )
    assert "handler" in message and "phone" in message
    with pytest.raises(InvalidData, match="'phone' is not a search key of workflow 'claim'"):
        eng.find_cases(workflow="claim", keys={"phone": "1"})
    with pytest.raises(InvalidData, match=r"keys\.phone: must be text"):
        eng.count_cases(keys={"phone": 13800000001})  # type: ignore[dict-item]


def test_a_value_too_long_for_its_key_is_refused_and_nothing_is_stored(eng: Engine) -> None:
    callback(eng)
    with pytest.raises(InvalidData) as exc:
        opened(eng, "1" * 201)
    assert "caller.phone: is 201 characters; the search key 'phone' holds at most 200" in str(
        exc.value
    )
    assert eng.count_cases(workflow="callback") == 0
    case = opened(eng, "1" * 200)
    with pytest.raises(InvalidData):
        eng.fire(case.id, "new_number", AGENT, {"phone": "2" * 201})
    assert eng.get_case(case.id).version == 1
    assert rows(eng, case.id) == {"phone": "1" * 200}


def test_keys_are_rebuilt_for_cases_opened_before_the_key_was_declared(eng: Engine) -> None:
    before = deepcopy(CALLBACK)
    del before["workflow"]["index"]["phone"]
    callback(eng, before)
    old = opened(eng, "13800000001")
    callback(eng, CALLBACK | {"workflow": CALLBACK["workflow"] | {"version": 2}})
    assert eng.find_cases(keys={"phone": "13800000001"}) == []  # version 1 declared none
    with eng.store.engine.begin() as conn:  # the case moves to the version that has it
        conn.execute(t.cases.update().where(t.cases.c.id == old.id).values(workflow_version=2))
    assert eng.rebuild_keys("callback") == 1
    (found,) = eng.find_cases(keys={"phone": "13800000001"})
    assert (found.id, found.version, found.updated_at) == (old.id, old.version, old.updated_at)


def test_rebuilding_puts_back_rows_removed_and_drops_rows_of_keys_no_longer_declared(
    eng: Engine,
) -> None:
    callback(eng)
    case = opened(eng, "13800000001")
    with eng.store.engine.begin() as conn:
        conn.execute(t.case_keys.update().values(value="0"))
        conn.execute(t.case_keys.insert().values(case_id=case.id, key="fax", value="9"))
    assert eng.rebuild_keys() >= 1
    assert rows(eng, case.id) == {"phone": "13800000001"}


def test_a_bundled_workflow_declares_one_the_complaint_desk_looks_up_by_phone(
    eng: Engine,
) -> None:
    from tests.test_complaint import register

    case = register(eng)
    (found,) = eng.find_cases(keys={"phone": case.data["complainant"]["phone"]})
    assert found.id == case.id


# --- at load ---------------------------------------------------------------------------


def problems(spec: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(DefinitionError) as exc:
        load_workflow(spec, HOOKS)
    return {p.location: p.message for p in exc.value.problems}


@pytest.mark.parametrize(
    ("slip", "meant"),
    [("polcy_number", "policy_number"), ("handlers", "handler"), ("id_numbr", "id_number")],
)
def test_a_key_one_slip_away_from_a_built_in_one_is_refused(slip: str, meant: str) -> None:
    spec = deepcopy(CALLBACK)
    spec["workflow"]["index"] = {slip: "caller.policy"}
    assert problems(spec)[f"workflow.index.{slip}"].startswith(
        f"{slip!r} is one slip away from the built-in key {meant!r}: did you mean {meant!r}?"
    )


@pytest.mark.parametrize("name", ["Phone", "1phone", "phone-number", "p" * 33, "电话"])
def test_an_own_keys_name_is_a_lower_case_identifier(name: str) -> None:
    spec = deepcopy(CALLBACK)
    spec["workflow"]["index"] = {name: "caller.phone"}
    assert "1–32 lower-case letters, digits and _" in problems(spec)[f"workflow.index.{name}"]


def test_a_declared_own_key_is_known_to_the_definition() -> None:
    definition = load_workflow(CALLBACK, HOOKS)
    assert definition.own_keys == {"phone"}


# --- through the faces -------------------------------------------------------------------


def test_the_api_searches_by_a_workflows_own_key_and_pages_on(eng: Engine) -> None:
    from tests.test_api import Api, problem_of
    from tests.test_complaint import register

    api = Api(eng)
    phone = register(eng).data["complainant"]["phone"]
    register(eng)  # a second complaint from the same caller
    first = api.call("GET", "/v1/cases", SUPERVISOR, params={"key": f"phone:{phone}", "limit": 1})
    assert first.status_code == 200, first.text
    assert len(first.json()["items"]) == 1 and first.json()["next_cursor"]
    nxt = api.call(
        "GET",
        "/v1/cases",
        SUPERVISOR,
        params={"key": f"phone:{phone}", "limit": 1, "cursor": first.json()["next_cursor"]},
    )
    assert len(nxt.json()["items"]) == 1 and nxt.json()["next_cursor"] is None
    other = api.call(
        "GET",
        "/v1/cases",
        SUPERVISOR,
        params={"key": "phone:0", "cursor": first.json()["next_cursor"]},
    )
    problem_of(other, 422, "InvalidData")  # the cursor belongs to the other search
    bad = problem_of(
        api.call("GET", "/v1/cases", SUPERVISOR, params={"key": "phone"}), 422, "InvalidData"
    )
    assert "is not NAME:VALUE; write e.g. key=phone:13800000000" in bad["detail"]
    unknown = problem_of(
        api.call("GET", "/v1/cases", SUPERVISOR, params={"key": "fax:1"}), 422, "InvalidData"
    )
    assert "'fax' is not a search key of any registered workflow" in unknown["detail"]


def test_the_command_line_lists_by_a_key_and_rebuilds_them(tmp_path: Any) -> None:
    from baoflow.engine import ChineseOfficialCalendar, FakeClock, open_engine
    from click.testing import CliRunner

    from baoflow.cli import main
    from tests.conftest import POLICIES
    from tests.test_complaint import register

    url = f"sqlite:///{tmp_path / 'desk.db'}"
    eng = open_engine(
        url,
        clock=FakeClock(datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI)),
        calendar=ChineseOfficialCalendar(),
    )
    eng.policies.add(POLICIES)  # type: ignore[attr-defined]
    case = register(eng)
    with eng.store.engine.begin() as conn:
        conn.execute(t.case_keys.delete())  # as if opened before the key was declared
    eng.close()
    phone = case.data["complainant"]["phone"]

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, [*args, "--url", url], env={"COLUMNS": "200"})

    listed = run("cases", "list", "--key", f"phone={phone}", "--json")
    assert listed.exit_code == 0 and json.loads(listed.output)["total"] == 0
    rebuilt = run("db", "rebuild-keys", "complaint")
    assert rebuilt.exit_code == 0 and "search keys rewritten for 1 case(s)" in rebuilt.output
    listed = run("cases", "list", "--key", f"phone={phone}", "--json")
    assert [c["number"] for c in json.loads(listed.output)["cases"]] == [case.number]
    bad = run("cases", "list", "--key", "phone")
    assert bad.exit_code == 2 and "'phone' is not NAME=VALUE" in bad.output
    unknown = run("cases", "list", "--key", "phnoe=1")
    assert unknown.exit_code == 2 and "did you mean 'phone'?" in unknown.output
    assert "Traceback" not in bad.output + unknown.output
