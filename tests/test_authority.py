"""Who may fire what (核决权限): the claim's permission table, role by role and event by
event; a branch acts on its own cases; a condition such as an amount limit; a refused
attempt changes nothing and is recorded for the audit (issue #6)."""

from __future__ import annotations

from copy import deepcopy
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from baoflow.engine import (
    SHANGHAI,
    Actor,
    Case,
    DefinitionError,
    Engine,
    GuardRefused,
    Hooks,
    NotPermitted,
    load_workflow,
)
from baoflow.engine.authority import may_see, refusal, scope, sees_every_case
from baoflow.engine.definitions import ROLES
from baoflow.workflows.claim import build
from pydantic import BaseModel

from tests.conftest import AGENT, HANDLER, report
from tests.toy import TOY

CLAIM = build()
CASE = Case(
    id=1,
    number="LP-20260506-000001",
    workflow="claim",
    workflow_version=CLAIM.version,
    state="reported",
    data={},
    version=1,
    created_at=datetime(2026, 5, 6, 9, tzinfo=SHANGHAI),
    updated_at=datetime(2026, 5, 6, 9, tzinfo=SHANGHAI),
    org_unit="SH",
)

HANDLING = {
    "verify",
    "reject",
    "apply",
    "receive_materials",
    "request_materials",
    "complete_materials",
    "hand_over",
    "insurer_requests_materials",
    "materials_resubmitted",
    "close",
    "withdraw",
}
LOOKUP = {"match_policy", "confirm_not_ours", "confirm_identity"}
#: 调查: asking the insurer to survey a major case, the desk's assistance, the outcome.
SURVEY = {"request_survey", "record_survey_assistance", "complete_survey"}
#: What the insurer said, recorded by hand (its webhooks fire these as the system).
INSURER = {"insurer_confirms_receipt", "insurer_decides", "insurer_pays"}
#: What each role may fire on a case of its own branch (the claim's table, written out).
MAY = {
    "service_agent": LOOKUP | {"receive_materials", "withdraw", "record_survey_assistance"},
    "handler": LOOKUP | HANDLING | SURVEY | INSURER | {"update_facts"},
    "supervisor": LOOKUP
    | HANDLING
    | SURVEY
    | INSURER
    | {"report_to_headquarters", "update_facts", "assign"},
    "branch_manager": LOOKUP
    | HANDLING
    | SURVEY
    | INSURER
    | {"report_to_headquarters", "update_facts", "assign"},
    "headquarters": {"report_to_headquarters", "acknowledge_report"},
    "auditor": set(),
    "administrator": set(),
}


def allowed(role: str, event: str, org_unit: str = "SH") -> bool:
    actor = Actor("u1", "某人", roles=(role,), org_unit=org_unit)
    return refusal(CLAIM, actor, CASE, event, {}) is None


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("event", sorted(set(CLAIM.events)))
def test_the_claim_matrix_every_role_by_every_event(role: str, event: str) -> None:
    assert allowed(role, event) == (event in MAY[role])


@pytest.mark.parametrize("event", ["register", "no_policy", "hold_for_identity"])
def test_the_intakes_own_decisions_are_the_systems_alone(event: str) -> None:
    assert not any(allowed(role, event) for role in ROLES)
    assert refusal(CLAIM, Actor.system("intake"), CASE, event, {}) is None


def test_a_branch_acts_only_on_its_own_cases_and_the_refusal_says_who_can() -> None:
    beijing = Actor("h09", "钱伟", roles=("handler",), org_unit="BJ")
    why, who_can = refusal(CLAIM, beijing, CASE, "verify", {}) or ("", [])
    assert why == "as handler only on cases of their own org unit (BJ); this case is SH"
    assert who_can == ["handler, supervisor, branch_manager (own org unit)"]
    assert allowed("headquarters", "report_to_headquarters", org_unit="HQ")  # any branch


def test_a_refused_attempt_changes_nothing_and_is_kept_for_the_audit(eng: Engine) -> None:
    case = eng.open_case("claim", report(), AGENT).case
    auditor = Actor("x01", "审计员", roles=("auditor",), org_unit="SH")
    with pytest.raises(NotPermitted) as exc:
        eng.fire(case.id, "verify", auditor)
    assert "their roles (auditor) are not among those who can" in str(exc.value)
    assert "Who can: handler, supervisor, branch_manager (own org unit)" in str(exc.value)
    assert eng.get_case(case.id).version == case.version
    with pytest.raises(GuardRefused):  # a guard's refusal is kept too
        eng.fire(case.id, "reject", HANDLER, {"reasons": ["not_covered"], "notice": "不予受理"})
    refused = eng.refusals(case.id)
    assert [(r.actor.id, r.event, r.kind) for r in refused] == [
        ("x01", "verify", "not_permitted"),
        ("h01", "reject", "guard_refused"),
    ]
    assert refused[0].reasons == ("their roles (auditor) are not among those who can",)
    assert refused[1].reasons[0].startswith("reason 'not_covered' is not borne out")


class Payout(BaseModel):
    amount: int


def amounts_engine(eng: Engine, *, held: bool = False) -> Engine:
    """A "payout" workflow whose "finish" takes an amount (and "wait" too, if ``held``),
    a handler finishing up to 5,000 and a supervisor above."""
    spec = deepcopy(TOY)
    spec["workflow"]["name"] = "payout"
    spec["deadlines"] = []
    spec["transitions"][2]["schema"] = "Payout"
    if held:  # "wait" keeps the amount it is given on the case, at the top level
        spec["transitions"][0].update(schema="Payout", actions=["keep_amount"])
    spec["permissions"] = [
        {"events": ["wait", "resume"], "roles": ["handler", "supervisor"]},
        {
            "events": ["finish"],
            "roles": ["handler"],
            "when": "small",
            "title": "up to 5,000 yuan",
        },
        {"events": ["finish"], "roles": ["supervisor", "branch_manager"]},
    ]
    hooks = Hooks(
        schemas={"Payout": Payout},
        conditions={"small": lambda d: int(d["amount"]) <= 5000},
        actions={"keep_amount": lambda ctx: ctx.new_data.update(amount=ctx.data["amount"])},
    )
    eng.register(load_workflow(spec, hooks))
    return eng


def test_an_amount_band_decides_who_may_approve(eng: Engine) -> None:
    amounts_engine(eng)
    handler = Actor("h01", "王芳", roles=("handler",), org_unit="SH")
    supervisor = Actor("s01", "陈刚", roles=("supervisor",), org_unit="SH")
    small = eng.open_case("payout", {}, handler).case
    assert eng.fire(small.id, "finish", handler, {"amount": 5000}).state == "done"
    large = eng.open_case("payout", {}, handler).case
    with pytest.raises(NotPermitted) as exc:
        eng.fire(large.id, "finish", handler, {"amount": 8000})
    assert exc.value.why == "as handler only up to 5,000 yuan"
    assert exc.value.who_can == (
        "handler (own org unit; up to 5,000 yuan)",
        "supervisor, branch_manager (own org unit)",
    )
    assert eng.fire(large.id, "finish", supervisor, {"amount": 8000}).state == "done"


@pytest.mark.parametrize(
    "row, location, message",
    [
        (
            {"events": ["finish"], "roles": ["supervsior"]},
            "permissions[0].roles[0]",
            "unknown role",
        ),
        ({"events": ["fly"], "roles": ["handler"]}, "permissions[0].events[0]", "unknown event"),
        ({"events": ["finish"], "roles": []}, "permissions[0].roles", "non-empty list"),
        ({"events": [], "roles": ["handler"]}, "permissions[0].events", "non-empty list"),
        (
            {"events": ["finish"], "roles": ["handler"], "when": "tiny"},
            "permissions[0].when",
            "no condition named 'tiny'",
        ),
        (
            {"events": ["finish"], "roles": ["handler"], "who": 1},
            "permissions[0].who",
            "unknown key 'who'",
        ),
    ],
)
def test_a_bad_permission_row_is_refused_at_load(
    row: dict[str, Any], location: str, message: str
) -> None:
    spec = deepcopy(TOY)
    spec["permissions"] = [row]
    with pytest.raises(DefinitionError) as exc:
        load_workflow(spec, Hooks())
    found = {p.location: p.message for p in exc.value.problems}
    assert message in found[location], found


def test_what_an_actor_may_do_next_says_what_the_table_forbids(eng: Engine) -> None:
    case = eng.open_case("claim", report(), AGENT).case
    agent_view = {a.event: a.refusals for a in eng.available_events(case.id, AGENT)}
    assert agent_view["withdraw"] == ()
    assert agent_view["verify"][0] == (
        "not permitted: their roles (service_agent) are not among those who can"
    )
    handler_view = {a.event: a for a in eng.available_events(case.id, HANDLER)}
    assert not any(r.startswith("not permitted") for r in handler_view["verify"].refusals)


# --- the other case types' tables, role by role and event by event ------------------------
DESK = {"service_agent", "handler", "supervisor", "branch_manager"}
STAFF = {"handler", "supervisor", "branch_manager"}
SUPERIORS = {"supervisor", "branch_manager"}
#: workflow -> event -> the roles that may fire it on their own branch's case (approve:
#: a resolution within a supervisor's authority).
TABLES: dict[str, dict[str, set[str]]] = {
    "surrender": {
        **{e: DESK for e in ("refer", "confirm_refund", "withdraw")},
        "assign": SUPERIORS,
    },
    "endorsement": {
        **{e: DESK for e in ("receive_application", "submit", "confirm", "decline", "withdraw")},
        "assign": SUPERIORS,
    },
    "complaint": {
        "acknowledge": set(),  # the system's, at registration
        "assign": SUPERIORS,
        "reassign": SUPERIORS,
        "mediate": STAFF,
        "mediation_done": STAFF,
        "new_facts": STAFF | {"service_agent"},
        "extend": STAFF,
        "extend_again": SUPERIORS,
        "propose": STAFF,
        "approve": SUPERIORS | {"headquarters"},
        "send_back": SUPERIORS | {"headquarters"},
        "reply": STAFF,
        "request_review": STAFF | {"service_agent"},
        "decide_review": SUPERIORS,
        "record_improvement": STAFF,
        "close": SUPERIORS,
        "withdraw": STAFF | {"service_agent"},
    },
}


def _definition(name: str) -> Any:
    from baoflow.workflows import complaint, endorsement, surrender

    return {"surrender": surrender, "endorsement": endorsement, "complaint": complaint}[
        name
    ].build()


@pytest.mark.parametrize("workflow", sorted(TABLES))
@pytest.mark.parametrize("role", ROLES)
def test_every_role_by_every_event_of_the_other_case_types(workflow: str, role: str) -> None:
    definition = _definition(workflow)
    assert set(TABLES[workflow]) == set(definition.events)
    case = Case(
        id=1,
        number="X-1",
        workflow=workflow,
        workflow_version=definition.version,
        state="accepted",
        data={"resolution": {"compensation": "0"}},
        version=1,
        created_at=CASE.created_at,
        updated_at=CASE.updated_at,
        org_unit="SH",
    )
    actor = Actor("u1", "某人", roles=(role,), org_unit="SH")
    for event, roles in TABLES[workflow].items():
        may = refusal(definition, actor, case, event, {}) is None
        assert may == (role in roles), (workflow, role, event)


# --- the rules at their edges (issue #15 item 8: each of these survived a mutation) ------
def test_an_actor_of_no_org_unit_is_of_no_case_s_branch() -> None:
    """Nobody's unit is not the case's unit: an actor without one acts on no branch's
    cases under an own-unit row, not on every case — nor on a case of no unit either."""
    nowhere = Actor("h00", "无归属", roles=("handler",), org_unit=None)
    why, _ = refusal(CLAIM, nowhere, CASE, "verify", {}) or ("", [])
    assert why == "as handler only on cases of their own org unit (none); this case is SH"
    unitless_case = replace(CASE, org_unit=None)
    assert refusal(CLAIM, nowhere, unitless_case, "verify", {}) is not None


def test_a_condition_reads_the_event_s_data_over_the_case_s(eng: Engine) -> None:
    """What the event brings decides, not what the case held before it: a handler may
    finish with 5,000 though the case says 8,000, and may not with 8,000 though the case
    says 5,000."""
    amounts_engine(eng, held=True)  # "wait" records an amount on the case first
    handler = Actor("h01", "王芳", roles=("handler",), org_unit="SH")

    def held(amount: int) -> int:
        case = eng.open_case("payout", {}, handler).case
        case = eng.fire(case.id, "wait", handler, {"amount": amount})
        assert case.data["amount"] == amount
        return case.id

    more = held(8000)
    assert eng.fire(more, "finish", handler, {"amount": 5000}).state == "done"
    less = held(5000)
    with pytest.raises(NotPermitted):
        eng.fire(less, "finish", handler, {"amount": 8000})


def test_one_branch_is_not_another_whichever_way_round() -> None:
    """The same unit, not one that sorts after it: Shanghai's handler has no hand in
    Beijing's case, as Beijing's has none in Shanghai's."""
    shanghai = Actor("h01", "王芳", roles=("handler",), org_unit="SH")
    beijing_case = replace(CASE, org_unit="BJ")
    why, _ = refusal(CLAIM, shanghai, beijing_case, "verify", {}) or ("", [])
    assert why == "as handler only on cases of their own org unit (SH); this case is BJ"


def _two_rows(first: dict[str, Any]) -> Any:
    """A toy workflow whose "finish" has ``first``, then a row for headquarters anywhere."""
    spec = deepcopy(TOY)
    spec["deadlines"] = []
    spec["transitions"][2]["schema"] = "Payout"
    spec["permissions"] = [
        {"events": ["finish"], **first},
        {"events": ["finish"], "roles": ["headquarters"], "own_org_unit": False},
    ]
    hooks = Hooks(schemas={"Payout": Payout}, conditions={"small": lambda d: d["amount"] <= 5000})
    return load_workflow(spec, hooks)


@pytest.mark.parametrize(
    "first",
    [
        {"roles": ["handler"]},  # its own unit only: refuses a Shanghai case to Beijing
        {"roles": ["handler"], "own_org_unit": False, "when": "small"},  # refuses 8,000
    ],
)
def test_a_row_that_refuses_leaves_the_next_rows_to_allow(first: dict[str, Any]) -> None:
    """Any row that allows is enough: one that refuses does not end the search."""
    both = Actor("x01", "兼任", roles=("handler", "headquarters"), org_unit="BJ")
    case = replace(CASE, workflow="toy", org_unit="SH")
    assert refusal(_two_rows(first), both, case, "finish", {"amount": 8000}) is None
    handler_only = Actor("h09", "钱伟", roles=("handler",), org_unit="BJ")
    assert refusal(_two_rows(first), handler_only, case, "finish", {"amount": 8000}) is not None


def test_who_sees_every_case_and_who_only_their_own_branch_s() -> None:
    """The same table says who may read a case: a row on any unit's cases lets its roles
    see them all; rows on their own unit's only, that unit's; no row, nothing of the
    workflow beyond their own unit; the system and a workflow without a table, all."""
    hq = Actor("hq1", "总部", roles=("headquarters",), org_unit="HQ")
    handler = Actor("h01", "王芳", roles=("handler",), org_unit="SH")
    beijing = Actor("h09", "钱伟", roles=("handler",), org_unit="BJ")
    auditor = Actor("x01", "审计员", roles=("auditor",), org_unit="BJ")
    assert sees_every_case(CLAIM, hq) and may_see(CLAIM, hq, CASE)
    assert sees_every_case(CLAIM, Actor.system("timer"))
    assert not sees_every_case(CLAIM, handler) and may_see(CLAIM, handler, CASE)
    assert not sees_every_case(CLAIM, beijing) and not may_see(CLAIM, beijing, CASE)
    assert not sees_every_case(CLAIM, auditor) and not may_see(CLAIM, auditor, CASE)
    untabled = load_workflow({**deepcopy(TOY), "deadlines": []}, Hooks())
    assert untabled.permissions == () and sees_every_case(untabled, beijing)
    visible = scope([CLAIM, untabled], beijing)
    assert (visible.every_case_of, visible.org_unit) == (frozenset({"toy"}), "BJ")
