"""The fast lane of POST /v1/cases/{case}/events (baoflow/api/fast.py) answers exactly
as the FastAPI route does: the same status, headers that matter and body, for a fire
and for every kind of refusal — and what it does not take, FastAPI answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest
from baoflow.engine import Case, Engine, open_engine
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from baoflow.api import create_app
from baoflow.api.models import CaseOut
from tests.conftest import AGENT, HANDLER, POLICIES
from tests.test_api import HANDLER_BJ, Api


def twin_desks(tmp_path: Any) -> tuple[Api, Api]:
    """Two desks made the same way, one served with the fast lane and one without."""
    from baoflow.engine import ChineseOfficialCalendar, FakeClock

    from tests.test_display import bj

    made = []
    for name, fast in (("fast", True), ("slow", False)):
        eng = open_engine(
            f"sqlite:///{tmp_path / name}.db",
            clock=FakeClock(bj(2026, 5, 6, 9, 0)),
            calendar=ChineseOfficialCalendar(),
        )
        eng.policies.add(POLICIES)  # type: ignore[attr-defined]
        api = Api(eng)
        api.client = TestClient(create_app(eng, fast_fire=fast))
        made.append(api)
    return made[0], made[1]


def answer(r: Any) -> tuple[int, str, Any, str | None]:
    return (
        r.status_code,
        r.headers["content-type"],
        r.json(),
        r.headers.get("www-authenticate"),
    )


SAME_REQUESTS: dict[str, Callable[[Api, str], Any]] = {
    "a fire": lambda api, case: api.fire(case, "verify", HANDLER),
    "not permitted": lambda api, case: api.fire(case, "verify", AGENT),
    "not of the state": lambda api, case: api.fire(case, "hand_over", HANDLER, data={}),
    "invalid data": lambda api, case: api.fire(case, "reject", HANDLER, data={"reason": 7}),
    "unknown event": lambda api, case: api.fire(case, "approve", HANDLER),
    "unknown case": lambda api, case: api.fire("LP-20990101-000001", "verify", HANDLER),
    "another branch's case": lambda api, case: api.fire(case, "verify", HANDLER_BJ),
    "a stale version": lambda api, case: api.fire(case, "verify", HANDLER, expected_version=99),
    "no token": lambda api, case: api.call(
        "POST", f"/v1/cases/{case}/events", None, json={"event": "verify"}
    ),
    "an unknown token": lambda api, case: api.client.post(
        f"/v1/cases/{case}/events",
        json={"event": "verify"},
        headers={"Authorization": "Bearer bf_nope"},
    ),
    "a malformed body": lambda api, case: api.call(
        "POST", f"/v1/cases/{case}/events", HANDLER, json={"evnt": "verify"}
    ),
    "not JSON": lambda api, case: api.call(
        "POST",
        f"/v1/cases/{case}/events",
        HANDLER,
        content=b"verify",
        headers={"Content-Type": "application/json"},
    ),
}


@pytest.mark.parametrize("what", sorted(SAME_REQUESTS))
def test_the_fast_lane_answers_as_the_route_does(tmp_path: Any, what: str) -> None:
    fast, slow = twin_desks(tmp_path)
    case = fast.open()["number"]
    assert slow.open()["number"] == case
    got_fast, got_slow = (answer(SAME_REQUESTS[what](api, case)) for api in (fast, slow))
    assert got_fast == got_slow
    assert fast.eng.get_case(case).version == slow.eng.get_case(case).version


def test_a_retry_with_the_same_key_answers_as_the_first_time_through_the_lane(
    eng: Engine,
) -> None:
    api = Api(eng)
    case = api.open()["number"]
    key = {"Idempotency-Key": "k-1"}
    first = api.call(
        "POST", f"/v1/cases/{case}/events", HANDLER, headers=key, json={"event": "verify"}
    )
    again = api.call(
        "POST", f"/v1/cases/{case}/events", HANDLER, headers=key, json={"event": "verify"}
    )
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert eng.get_case(case).version == first.json()["version"]


def test_the_lane_is_timed_under_the_routes_template(eng: Engine) -> None:
    api = Api(eng)
    case = api.open()["number"]
    assert api.fire(case, "verify", HANDLER).status_code == 200
    metrics = api.client.get("/metrics").text
    assert 'route="/v1/cases/{case}/events",status="200"' in metrics


def test_the_lane_takes_the_well_formed_fires_and_leaves_the_rest_to_fastapi(
    eng: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from baoflow.api import fast

    taken: list[str] = []
    lane_fire = fast.FastFire._fire

    def counted(self: Any, *args: Any) -> bytes:
        taken.append(args[3])  # the case
        return lane_fire(self, *args)

    monkeypatch.setattr(fast.FastFire, "_fire", counted)
    api = Api(eng)
    case = api.open()["number"]
    assert api.fire(case, "verify", HANDLER).status_code == 200
    assert taken == [case]
    malformed = api.call("POST", f"/v1/cases/{case}/events", HANDLER, json={"evnt": "x"})
    assert malformed.status_code == 422 and taken == [case]  # FastAPI answered it
    with_query = api.call("POST", f"/v1/cases/{case}/events?x=1", HANDLER, json={"event": "apply"})
    assert with_query.status_code in (200, 422) and taken == [case]


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too: orjson refuses those, pydantic writes them
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    data=st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5),
    org_unit=st.none() | st.text(max_size=8),
    read_only=st.booleans(),
)
def test_a_case_is_answered_in_the_bytes_pydantic_writes(
    data: dict[str, Any], org_unit: str | None, read_only: bool
) -> None:
    # The lane and the routes write a case with orjson (CaseOut.encode): the bytes must
    # be the declared model's, whatever the stored data holds.
    case = Case(
        id=7,
        number="LP-20260506-000001",
        workflow="claim",
        workflow_version=1,
        state="reported",
        data=MappingProxyType(data) if read_only else data,
        version=3,
        created_at=datetime(2026, 5, 6, 1, 0, tzinfo=UTC),
        updated_at=datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        org_unit=org_unit,
    )
    assert CaseOut.encode(case) == CaseOut.of(case).model_dump_json().encode()
