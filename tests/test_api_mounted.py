"""What create_app mounts beside the case routes (issue #12): the state diagrams — static,
live with the counts the caller may see, and a case's path — the insurers' signed
webhooks, and /metrics with every request timed."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from baoflow.engine import Engine, FakeClock
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from baoflow import diagrams
from baoflow.api import create_app
from baoflow.api.webhooks import SIGNATURE_HEADER, sign
from tests.conftest import HANDLER
from tests.test_api import HANDLER_BJ, HQ, Api, problem_of
from tests.test_timers import to_materials_complete

SECRET = b"a-secret-of-the-insurer"


@pytest.fixture
def api(eng: Engine) -> Iterator[Api]:
    made = Api(eng)
    made.client = TestClient(create_app(eng, insurers={"pingan": SECRET}))
    yield made


# --- diagrams --------------------------------------------------------------------------
def test_a_workflow_diagram_comes_in_each_format(api: Api) -> None:
    svg = api.call("GET", "/v1/workflows/claim/diagram", HANDLER)
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert b'id="state-reported"' in svg.content and svg.content.lstrip().startswith(b"<")
    # The same text as the library's (and so the CLI's) rendering.
    mermaid = api.call("GET", "/v1/workflows/claim/diagram?format=mermaid", HANDLER)
    assert mermaid.text == diagrams.render(api.eng, "claim", "mermaid")
    assert "stateDiagram-v2" in mermaid.text
    dot = api.call("GET", "/v1/workflows/claim/diagram?format=dot", HANDLER)
    assert dot.text == diagrams.render(api.eng, "claim", "dot") and dot.text.startswith("digraph")


def test_a_live_diagram_counts_only_the_cases_the_caller_sees(api: Api) -> None:
    to_materials_complete(api.eng)  # a Shanghai (SH) claim
    own = api.call("GET", "/v1/workflows/claim/diagram?format=mermaid&live=true", HANDLER)
    assert own.status_code == 200 and "1 case" in own.text
    other = api.call("GET", "/v1/workflows/claim/diagram?format=mermaid&live=true", HANDLER_BJ)
    assert other.status_code == 200 and "1 case" not in other.text  # BJ sees none of SH's
    everyone = api.call("GET", "/v1/workflows/claim/diagram?format=mermaid&live=true", HQ)
    assert "1 case" in everyone.text
    asked = api.call(
        "GET", "/v1/workflows/claim/diagram?format=mermaid&live=true&org_unit=SH", HANDLER_BJ
    )
    body = problem_of(asked, 403, "NotVisible")
    assert "own org unit (BJ)" in body["detail"]


def test_a_cases_path_is_drawn_for_whoever_sees_the_case_and_404_for_others(api: Api) -> None:
    case = to_materials_complete(api.eng)
    drawn = api.call("GET", f"/v1/cases/{case.number}/diagram?format=mermaid", HANDLER)
    assert drawn.status_code == 200 and "materials_complete" in drawn.text
    problem_of(api.call("GET", f"/v1/cases/{case.number}/diagram", HANDLER_BJ), 404, "CaseNotFound")


def test_a_diagram_of_an_unknown_workflow_or_format_is_a_problem(api: Api) -> None:
    body = problem_of(
        api.call("GET", "/v1/workflows/claims/diagram", HANDLER), 404, "UnknownWorkflow"
    )
    assert "claim" in body["detail"]
    assert api.call("GET", "/v1/workflows/claim/diagram?format=png", HANDLER).status_code == 422
    assert api.call("GET", "/v1/workflows/claim/diagram", None).status_code == 401


# --- the insurers' webhooks ------------------------------------------------------------
def test_an_insurers_signed_message_fires_through_the_app(api: Api, clock: FakeClock) -> None:
    case = to_materials_complete(api.eng)
    api.eng.fire(case.id, "hand_over", HANDLER, {"insurer": "平安", "reference": "PA-1"})
    body = orjson.dumps(
        {
            "message_id": "m-1",
            "kind": "receipt",
            "case_number": case.number,
            "payload": {"received_at": clock.now().isoformat()},
        }
    )
    stamp = int(clock.now().timestamp())
    r = api.client.post(
        "/webhooks/insurers/pingan",
        content=body,
        headers={SIGNATURE_HEADER: sign(SECRET, stamp, body), "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["event"] == "insurer_confirms_receipt"
    forged = api.client.post(
        "/webhooks/insurers/pingan",
        content=body,
        headers={SIGNATURE_HEADER: sign(b"wrong", stamp, body)},
    )
    problem_of(forged, 401, "BadSignature")


def test_without_insurers_there_is_no_webhook_route(eng: Engine) -> None:
    client = TestClient(create_app(eng))
    assert client.post("/webhooks/insurers/pingan", content=b"{}").status_code == 404


# --- metrics ---------------------------------------------------------------------------
def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_the_cases_and_time_every_request(api: Api) -> None:
    to_materials_complete(api.eng)
    api.call("GET", "/v1/workflows/claim", HANDLER)
    got = samples(api.client.get("/metrics").text)
    cases = [
        v
        for (name, labels), v in got.items()
        if name == "baoflow_cases" and ("state", "materials_complete") in labels
    ]
    assert cases == [1.0]
    timed = [
        v
        for (name, labels), v in got.items()
        if name == "baoflow_http_request_duration_seconds_count"
        and ("route", "/v1/workflows/{name}") in labels
    ]
    assert timed == [1.0], sorted(k for k in got if "http" in k[0])


def test_metrics_can_be_left_out(eng: Engine) -> None:
    client = TestClient(create_app(eng, metrics=False))
    assert client.get("/metrics").status_code == 404
