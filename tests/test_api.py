"""The HTTP API (issue #12): every error as problem+json with its fields, tokens, a
branch's token that never sees another branch's cases, idempotent fire, cursor paging."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from baoflow.engine import Actor, Engine
from fastapi.testclient import TestClient

from baoflow.api import create_app
from tests.conftest import AGENT, HANDLER, SUPERVISOR, report
from tests.test_timers import to_materials_complete

#: Another branch's handler, and headquarters (its permission row is not limited to its
#: own org unit: it sees every claim).
HANDLER_BJ = Actor("h09", "赵磊", roles=("handler",), org_unit="BJ")
HQ = Actor("q01", "周敏", roles=("headquarters",), org_unit="HQ")


class Api:
    """A client of the app with one token per actor."""

    def __init__(self, eng: Engine) -> None:
        self.eng = eng
        self.client = TestClient(create_app(eng))
        self.secrets: dict[str, str] = {}
        self.opened = 0

    def token(self, actor: Actor) -> str:
        if actor.id not in self.secrets:
            self.secrets[actor.id] = self.eng.create_api_token("tests", actor=actor).secret
        return self.secrets[actor.id]

    def call(
        self,
        method: str,
        path: str,
        actor: Actor | None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        sent = dict(headers or {})
        if actor is not None:
            sent["Authorization"] = f"Bearer {self.token(actor)}"
        return self.client.request(method, path, headers=sent, **kwargs)

    def open(self, actor: Actor = AGENT, **overrides: Any) -> dict[str, Any]:
        """A new claim: each on an incident of another day (the same one is a duplicate)."""
        self.opened += 1
        day = date(2026, 5, 5) - timedelta(days=self.opened)
        incident = {"time": f"{day.isoformat()}T10:00:00+08:00", **overrides.pop("incident", {})}
        data = report(incident=incident, **overrides)
        r = self.call("POST", "/v1/cases", actor, json={"workflow": "claim", "data": data})
        assert r.status_code == 201, r.text
        return r.json()["case"]  # type: ignore[no-any-return]

    def fire(self, case: Any, event: str, actor: Actor, **kwargs: Any) -> Any:
        return self.call("POST", f"/v1/cases/{case}/events", actor, json={"event": event, **kwargs})


@pytest.fixture
def api(eng: Engine) -> Iterator[Api]:
    yield Api(eng)


def problem_of(r: Any, status: int, error: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["error"] == error
    assert body["type"].startswith("urn:baoflow:problem:") and body["detail"]
    return body


# --- the happy path ---------------------------------------------------------------------
def test_a_case_is_opened_fired_on_and_read_back(api: Api) -> None:
    case = api.open()
    assert case["state"] == "reported" and case["org_unit"] == "SH"
    assert case["created_at"].endswith("+08:00")  # Beijing time, with its offset
    r = api.fire(case["number"], "verify", HANDLER)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "verified"
    got = api.call("GET", f"/v1/cases/{case['id']}", HANDLER).json()
    assert got["state"] == "verified" and got["version"] == case["version"] + 1
    history = api.call("GET", f"/v1/cases/{case['number']}/history", HANDLER).json()
    assert [h["event"] for h in history][-1] == "verify"
    assert history[-1]["actor"]["id"] == "h01"


def test_the_events_the_caller_may_fire_now_come_with_the_reasons_of_the_others(api: Api) -> None:
    case = api.open()
    events = {
        e["event"]: e for e in api.call("GET", f"/v1/cases/{case['id']}/events", AGENT).json()
    }
    assert events["withdraw"]["would_pass"] is True
    assert events["verify"]["would_pass"] is False
    assert any("not permitted" in why for why in events["verify"]["refusals"])
    as_handler = api.call("GET", f"/v1/cases/{case['id']}/events", HANDLER).json()
    assert {e["event"]: e["would_pass"] for e in as_handler}["verify"] is True


def test_the_desk_lists_running_deadlines_and_the_sla_report(api: Api) -> None:
    case = to_materials_complete(api.eng)
    rows = api.call("GET", "/v1/deadlines", HANDLER).json()
    assert [r["case_number"] for r in rows] == [case.number]
    own = api.call("GET", f"/v1/cases/{case.id}/deadlines", HANDLER).json()
    assert [d["status"] for d in own if d["rule"] == rows[0]["rule"]] == ["running"]
    assert api.call("GET", "/v1/breaches", HANDLER).json() == []
    api.eng.clock.advance(timedelta(days=40))  # type: ignore[attr-defined]
    api.eng.run_due_timers()
    assert [b["case_number"] for b in api.call("GET", "/v1/breaches", HANDLER).json()] == [
        case.number
    ]
    sla = api.call("GET", "/v1/sla", HANDLER, params={"per": "month"}).json()
    assert sla["running"] >= 1 and sla["rules"][0]["period"] == "2026-05"
    assert sla["median_time_to_close"] == []  # nothing closed
    api.fire(case.number, "withdraw", HANDLER, data={"reason": "撤案"})
    closed = api.call("GET", "/v1/sla", HANDLER).json()["median_time_to_close"]
    assert [(c["workflow"], c["median_seconds"]) for c in closed] == [
        ("claim", timedelta(days=40).total_seconds())
    ]


def test_the_desk_deadlines_filter_by_handler(api: Api) -> None:
    mine = to_materials_complete(api.eng)
    api.eng.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]  # another incident
    other = to_materials_complete(api.eng)
    assigned = {"handler_id": "h01", "handler_name": "王芳"}
    assert api.fire(mine.number, "assign", SUPERVISOR, data=assigned).status_code == 200
    rows = api.call("GET", "/v1/deadlines", SUPERVISOR, params={"handler": "h01"}).json()
    assert {(r["case_number"], r["handler"]) for r in rows} == {(mine.number, "h01")}
    every = api.call("GET", "/v1/deadlines", SUPERVISOR).json()
    assert {r["case_number"]: r["handler"] for r in every}[other.number] is None
    too_long = api.call("GET", "/v1/deadlines", SUPERVISOR, params={"handler": "h" * 65})
    assert too_long.status_code == 422
    assert too_long.headers["content-type"] == "application/problem+json"


def test_workflows_come_with_states_events_deadline_rules_and_permission_rows(api: Api) -> None:
    claim = api.call("GET", "/v1/workflows/claim", AGENT).json()
    assert claim["initial"] and any(s["name"] == "reported" for s in claim["states"])
    assert any(t["event"] == "verify" and "handler" in t["roles"] for t in claim["transitions"])
    assert claim["deadlines"] and claim["permissions"]
    names = [w["name"] for w in api.call("GET", "/v1/workflows", AGENT).json()]
    assert names == [w.name for w in api.eng.workflows()]


# --- every error status, with its body --------------------------------------------------
def test_without_a_token_or_with_an_unknown_one_is_401(api: Api) -> None:
    body = problem_of(api.call("GET", "/v1/cases", None), 401, "ApiTokenRejected")
    assert body["reason"] == "missing"
    r = api.call("GET", "/v1/cases", None, {"Authorization": "Bearer bf_not-a-token"})
    assert problem_of(r, 401, "ApiTokenRejected")["reason"] == "unknown"
    assert r.headers["www-authenticate"] == "Bearer"


def test_a_revoked_token_is_401_at_once(api: Api) -> None:
    made = api.eng.create_api_token("desk", actor=AGENT)
    auth = {"Authorization": f"Bearer {made.secret}"}
    assert api.call("GET", "/v1/me", None, auth).status_code == 200
    api.eng.revoke_api_token(made.token.id)
    body = problem_of(api.call("GET", "/v1/me", None, auth), 401, "ApiTokenRejected")
    assert body["reason"] == "revoked" and "revoked" in body["detail"]


def test_not_permitted_is_403_and_says_who_can(api: Api) -> None:
    case = api.open()
    body = problem_of(api.fire(case["id"], "verify", AGENT), 403, "NotPermitted")
    assert body["case_number"] == case["number"] and body["event"] == "verify"
    assert any("handler" in who for who in body["who_can"])


def test_unknown_case_workflow_and_event_are_404(api: Api) -> None:
    body = problem_of(api.call("GET", "/v1/cases/LP-20260506-999999", AGENT), 404, "CaseNotFound")
    assert body["ref"] == "LP-20260506-999999"
    problem_of(api.call("GET", "/v1/cases/99999999999999999999999", AGENT), 404, "CaseNotFound")
    body = problem_of(api.call("GET", "/v1/workflows/nope", AGENT), 404, "UnknownWorkflow")
    assert "claim" in body["known"]
    case = api.open()
    body = problem_of(api.fire(case["id"], "nope", HANDLER), 404, "UnknownEvent")
    assert "verify" in body["known"]
    problem_of(api.call("GET", "/v1/nowhere", AGENT), 404, "HttpError")


def test_a_stale_version_and_an_event_not_of_the_state_are_409(api: Api) -> None:
    case = api.open()
    body = problem_of(
        api.fire(case["id"], "verify", HANDLER, expected_version=7), 409, "ConflictError"
    )
    assert (body["expected_version"], body["actual_version"]) == (7, case["version"])
    body = problem_of(api.fire(case["id"], "complete_materials", HANDLER), 409, "EventNotAllowed")
    assert body["state"] == "reported" and "verify" in body["allowed"]


def test_invalid_data_a_guard_refusal_and_a_malformed_request_are_422(api: Api) -> None:
    r = api.call("POST", "/v1/cases", AGENT, json={"workflow": "claim", "data": {}})
    body = problem_of(r, 422, "InvalidData")
    assert body["problems"] and all(p["location"] for p in body["problems"])
    case = api.open(incident={"time": "2020-01-10T10:00:00+08:00"})  # past the filing limit
    body = problem_of(api.fire(case["id"], "verify", HANDLER), 422, "GuardRefused")
    assert any("已超过申请时效" in why for why in body["reasons"])
    r = api.call("POST", f"/v1/cases/{case['id']}/events", HANDLER, json={"event": 3})
    body = problem_of(r, 422, "InvalidRequest")
    assert body["problems"][0]["location"] == "body.event"
    r = api.call("GET", "/v1/cases", AGENT, params={"limit": 0})
    assert problem_of(r, 422, "InvalidRequest")["problems"][0]["location"] == "query.limit"


# --- idempotent fire --------------------------------------------------------------------
def test_a_retried_fire_with_the_same_key_answers_as_the_first_and_fires_once(api: Api) -> None:
    case = api.open()
    key = {"Idempotency-Key": "desk-42-verify"}
    first = api.call(
        "POST", f"/v1/cases/{case['id']}/events", HANDLER, key, json={"event": "verify"}
    )
    again = api.call(
        "POST", f"/v1/cases/{case['id']}/events", HANDLER, key, json={"event": "verify"}
    )
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert [h.event for h in api.eng.history(case["id"])].count("verify") == 1
    other = api.call(
        "POST",
        f"/v1/cases/{case['id']}/events",
        HANDLER,
        key,
        json={"event": "verify", "data": {"note": "other"}},
    )
    assert "desk-42-verify" in problem_of(other, 422, "IdempotencyKeyReused")["detail"]


def test_a_retried_opening_with_the_same_key_opens_one_case(api: Api) -> None:
    key = {"Idempotency-Key": "open-1"}
    sent = {"workflow": "claim", "data": report()}
    first = api.call("POST", "/v1/cases", AGENT, key, json=sent)
    again = api.call("POST", "/v1/cases", AGENT, key, json=sent)
    assert first.json() == again.json() and api.eng.count_cases() == 1


# --- branches ---------------------------------------------------------------------------
def test_another_branch_gets_404_on_every_read_and_write_of_a_case(api: Api) -> None:
    case = to_materials_complete(api.eng)  # opened by the SH desk
    for path in ("", "/history", "/deadlines", "/events"):
        body = problem_of(
            api.call("GET", f"/v1/cases/{case.number}{path}", HANDLER_BJ), 404, "CaseNotFound"
        )
        assert body["ref"] == case.number
    # every refusal the engine would give (not permitted, not of the state, bad data,
    # a stale version) is the same 404, so nothing tells that the case exists
    problem_of(api.fire(case.id, "close", HANDLER_BJ), 404, "CaseNotFound")
    problem_of(api.fire(case.id, "verify", HANDLER_BJ), 404, "CaseNotFound")
    problem_of(api.fire(case.id, "close", HANDLER_BJ, expected_version=1), 404, "CaseNotFound")
    assert api.eng.get_case(case.id).version == case.version
    # while its own branch and headquarters see it
    assert api.call("GET", f"/v1/cases/{case.number}", HANDLER).status_code == 200
    assert api.call("GET", f"/v1/cases/{case.number}", HQ).status_code == 200


def test_another_branch_never_sees_the_case_in_searches_or_on_the_desk(api: Api) -> None:
    case = to_materials_complete(api.eng)
    api.open(HandlerBJDesk := Actor("a09", "孙丽", roles=("service_agent",), org_unit="BJ"))

    def numbers(actor: Actor, path: str, **params: Any) -> list[str]:
        r = api.call("GET", path, actor, params=params)
        assert r.status_code == 200, r.text
        got = r.json()
        rows = got["items"] if isinstance(got, dict) else got
        return [x.get("number") or x["case_number"] for x in rows]

    bj = numbers(HANDLER_BJ, "/v1/cases")
    assert case.number not in bj and len(bj) == 1
    assert numbers(HANDLER_BJ, "/v1/cases", number=case.number) == []
    assert numbers(HANDLER_BJ, "/v1/deadlines") == []
    assert numbers(HANDLER_BJ, "/v1/deadlines", org_unit="SH") == []
    assert numbers(HANDLER, "/v1/deadlines") == [case.number]
    assert sorted(numbers(HQ, "/v1/cases")) == sorted([case.number, *bj])
    api.eng.clock.advance(timedelta(days=40))  # type: ignore[attr-defined]
    api.eng.run_due_timers()
    assert numbers(HANDLER_BJ, "/v1/breaches") == []
    assert numbers(HQ, "/v1/breaches") == [case.number]
    assert api.call("GET", "/v1/sla", HANDLER_BJ).json()["rules"] == []
    assert api.call("GET", "/v1/sla", HANDLER).json()["rules"] != []
    assert HandlerBJDesk.org_unit == "BJ"


# --- acting for named people ------------------------------------------------------------
def test_a_token_acts_for_the_people_it_names_and_no_one_else(api: Api) -> None:
    made = api.eng.create_api_token("portal", act_for=[HANDLER, SUPERVISOR])
    auth = {"Authorization": f"Bearer {made.secret}"}
    me = api.call("GET", "/v1/me", None, {**auth, "X-Act-For": "h01"}).json()
    assert me["actor"] == {"id": "h01", "name": "王芳", "roles": ["handler"], "org_unit": "SH"}
    body = problem_of(
        api.call("GET", "/v1/me", None, {**auth, "X-Act-For": "x99"}), 403, "ApiTokenRejected"
    )
    assert body["act_for"] == ["h01", "s01"]
    problem_of(api.call("GET", "/v1/me", None, auth), 403, "ApiTokenRejected")
    case = api.open()
    r = api.call(
        "POST",
        f"/v1/cases/{case['id']}/events",
        None,
        {**auth, "X-Act-For": "h01"},
        json={"event": "verify"},
    )
    assert r.status_code == 200 and api.eng.history(case["id"])[-1].actor == HANDLER


# --- cursor paging ----------------------------------------------------------------------
def test_cursor_pages_are_stable_under_inserts(api: Api) -> None:
    opened = [api.open()["number"] for _ in range(5)]
    first = api.call("GET", "/v1/cases", AGENT, params={"limit": 2}).json()
    assert [c["number"] for c in first["items"]] == opened[:2]
    api.open()  # a case opened meanwhile lands after the pages already read
    second = api.call(
        "GET", "/v1/cases", AGENT, params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [c["number"] for c in second["items"]] == opened[2:4]
    newest = api.call("GET", "/v1/cases", AGENT, params={"limit": 2, "newest_first": True}).json()
    api.open()
    older = api.call(
        "GET",
        "/v1/cases",
        AGENT,
        params={"limit": 10, "newest_first": True, "cursor": newest["next_cursor"]},
    ).json()
    assert [c["number"] for c in older["items"]] == list(reversed(opened[:4]))
    assert older["next_cursor"] is None


def test_a_cursor_of_other_filters_or_none_at_all_is_422(api: Api) -> None:
    for _ in range(3):
        api.open()
    page = api.call("GET", "/v1/cases", AGENT, params={"limit": 1}).json()
    r = api.call(
        "GET", "/v1/cases", AGENT, params={"cursor": page["next_cursor"], "state": "reported"}
    )
    assert "other filters" in problem_of(r, 422, "InvalidData")["problems"][0]["message"]
    r = api.call("GET", "/v1/cases", AGENT, params={"cursor": "garbage!"})
    assert problem_of(r, 422, "InvalidData")["problems"][0]["location"] == "cursor"


# --- tokens, engine side ----------------------------------------------------------------
def test_tokens_are_stored_hashed_and_note_their_last_use(api: Api) -> None:
    made = api.eng.create_api_token("desk", actor=AGENT)
    assert made.secret.startswith("bf_") and len(made.secret) >= 46
    with api.eng.store.read() as tx:
        stored = tx.conn.exec_driver_sql("SELECT * FROM api_tokens").fetchall()
    assert not any(made.secret in str(v) for row in stored for v in row)
    assert made.token.last_used_at is None
    api.call("GET", "/v1/me", None, {"Authorization": f"Bearer {made.secret}"})
    [listed] = [t for t in api.eng.api_tokens() if t.id == made.token.id]
    assert listed.last_used_at == api.eng.clock.now() and listed.prefix == made.secret[:10]


def test_a_token_must_act_as_someone_and_never_as_the_system(eng: Engine) -> None:
    from baoflow.engine import InvalidData

    with pytest.raises(InvalidData, match="acts as an actor or for named people"):
        eng.create_api_token("desk")
    with pytest.raises(InvalidData, match="may not act as the system"):
        eng.create_api_token("desk", actor=Actor.system())
