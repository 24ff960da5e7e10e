"""The insurers' signed webhooks (issue #12, baoflow/api/webhooks.py): a signed message fires
its event (200) or is stored for a person (202); a forged, replayed or malformed one is
refused with a problem document and changes nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from baoflow.engine import Engine, FakeClock, InvalidData
from fastapi import FastAPI
from fastapi.testclient import TestClient

from baoflow.api.webhooks import SIGNATURE_HEADER, insurer_webhooks, load_insurer_secrets, sign
from tests.test_inbound import DECIDED, handed_over, table_counts

SECRET = b"whsec_pingan_test_0123456789"
URL = "/webhooks/insurers/pingan"


@pytest.fixture
def client(eng: Engine) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(insurer_webhooks(eng, {"pingan": SECRET}))
    with TestClient(app) as c:
        yield c


def post(
    client: TestClient,
    clock: FakeClock,
    body: dict[str, Any] | bytes,
    *,
    secret: bytes = SECRET,
    age: timedelta = timedelta(0),
    url: str = URL,
) -> Any:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    stamp = int((clock.now() - age).timestamp())
    headers = {SIGNATURE_HEADER: sign(secret, stamp, raw), "Content-Type": "application/json"}
    return client.post(url, content=raw, headers=headers)


def test_a_signed_decision_fires_and_a_resend_gets_the_same_answer(
    eng: Engine, client: TestClient, clock: FakeClock
) -> None:
    case = handed_over(eng)
    body = {
        "message_id": "PA-1",
        "kind": "decision",
        "reference": "PA-2026-0001",
        "payload": DECIDED,
    }
    first = post(client, clock, body)
    assert first.status_code == 200
    assert first.json() | {"id": 0} == {
        "id": 0,
        "insurer": "pingan",
        "message_id": "PA-1",
        "status": "applied",
        "case_number": case.number,
        "event": "insurer_decides",
        "state": "decided",
        "reason_code": None,
        "reason": None,
    }
    counts = table_counts(eng)
    clock.advance(minutes=1)  # a resend, signed afresh
    again = post(client, clock, body)
    assert (again.status_code, again.json()) == (200, first.json())
    assert table_counts(eng) == counts


def test_a_message_for_no_case_is_accepted_for_a_person(
    eng: Engine, client: TestClient, clock: FakeClock
) -> None:
    response = post(client, clock, {"message_id": "PA-2", "kind": "receipt", "reference": "?"})
    assert response.status_code == 202
    assert response.json()["reason_code"] == "no_case"
    assert [m.message_id for m in eng.inbound_messages(status="unresolved")] == ["PA-2"]


def test_a_forged_signature_is_refused_and_nothing_is_stored(
    eng: Engine, client: TestClient, clock: FakeClock
) -> None:
    case = handed_over(eng)
    counts = table_counts(eng)
    body = {
        "message_id": "PA-3",
        "kind": "decision",
        "case_number": case.number,
        "payload": DECIDED,
    }
    forged = post(client, clock, body, secret=b"not-the-secret")
    assert forged.status_code == 401
    assert forged.headers["content-type"] == "application/problem+json"
    assert forged.json() == {
        "type": "urn:baoflow:problem:bad-signature",
        "title": "Signature refused",
        "status": 401,
        "detail": "the signature does not match the body and the timestamp",
        "error": "BadSignature",
    }
    # A body changed after signing is a forgery too.
    raw = orjson.dumps(body)
    stamp = int(clock.now().timestamp())
    tampered = raw.replace(b"8000.00", b"9000.00")
    response = client.post(
        URL, content=tampered, headers={SIGNATURE_HEADER: sign(SECRET, stamp, raw)}
    )
    assert response.status_code == 401
    unsigned = client.post(URL, content=raw)
    assert unsigned.status_code == 401 and SIGNATURE_HEADER in unsigned.json()["detail"]
    assert table_counts(eng) == counts
    assert eng.get_case(case.id).state == "handed_over"


def test_a_replayed_request_is_refused_and_nothing_is_stored(
    eng: Engine, client: TestClient, clock: FakeClock
) -> None:
    case = handed_over(eng)
    counts = table_counts(eng)
    body = {
        "message_id": "PA-4",
        "kind": "decision",
        "case_number": case.number,
        "payload": DECIDED,
    }
    old = post(client, clock, body, age=timedelta(minutes=6))
    assert old.status_code == 401
    assert "a replayed or delayed request" in old.json()["detail"]
    future = post(client, clock, body, age=-timedelta(minutes=6))
    assert future.status_code == 401
    assert table_counts(eng) == counts
    # Within the window it is taken.
    assert post(client, clock, body, age=timedelta(minutes=4)).status_code == 200


def test_an_unknown_insurer_is_refused(eng: Engine, client: TestClient, clock: FakeClock) -> None:
    response = post(
        client, clock, {"message_id": "X", "kind": "receipt"}, url="/webhooks/insurers/acme"
    )
    assert response.status_code == 404
    assert response.json()["type"] == "urn:baoflow:problem:unknown-insurer"
    assert eng.inbound_messages() == []


def test_a_malformed_body_is_a_400_problem(
    eng: Engine, client: TestClient, clock: FakeClock
) -> None:
    not_json = post(client, clock, b"{not json")
    assert (
        not_json.status_code == 400 and not_json.json()["type"] == "urn:baoflow:problem:malformed"
    )
    no_id = post(client, clock, {"kind": "receipt", "payload": []})
    assert no_id.status_code == 400
    assert {p["location"] for p in no_id.json()["problems"]} == {"message_id", "payload"}
    blank = post(client, clock, {"message_id": " ", "kind": "receipt"})
    assert blank.status_code == 400
    assert [p["location"] for p in blank.json()["problems"]] == ["message_id"]
    assert eng.inbound_messages() == []


@pytest.mark.parametrize("char", ["\x1b", "\x00"], ids=["ESC", "NUL"])
def test_a_message_with_a_control_character_is_a_400_naming_the_field_and_not_stored(
    eng: Engine, client: TestClient, clock: FakeClock, char: str
) -> None:
    """Refused, not stripped: the insurer is told, and sends it again corrected."""
    counts = table_counts(eng)
    body = {"message_id": "PA-9", "kind": "receipt", "reference": "R", "payload": {}}
    for bad, where in (
        ({**body, "payload": {"note": f"已收到{char}[2J"}}, "payload.note"),
        ({**body, "message_id": f"PA{char}9"}, "message_id"),
    ):
        answer = post(client, clock, bad)
        assert answer.status_code == 400
        assert [p["location"] for p in answer.json()["problems"]] == [where]
    assert table_counts(eng) == counts
    assert post(client, clock, {**body, "payload": {"note": "已收到\n第二行"}}).status_code == 202


def test_a_reused_message_id_is_a_409(eng: Engine, client: TestClient, clock: FakeClock) -> None:
    assert (
        post(client, clock, {"message_id": "M", "kind": "receipt", "reference": "A"}).status_code
        == 202
    )
    reused = post(client, clock, {"message_id": "M", "kind": "receipt", "reference": "B"})
    assert reused.status_code == 409
    assert reused.json()["type"] == "urn:baoflow:problem:message-id-reused"


def test_secrets_come_from_the_environment_named_in_the_config(tmp_path: Path) -> None:
    config = tmp_path / "insurers.toml"
    config.write_text('[insurers.pingan]\nsecret_env = "PINGAN_SECRET"\n', encoding="utf-8")
    assert load_insurer_secrets(config, {"PINGAN_SECRET": "s3cret"}) == {"pingan": b"s3cret"}
    with pytest.raises(InvalidData, match="the environment variable PINGAN_SECRET is not set"):
        load_insurer_secrets(config, {})


def test_a_secret_written_in_the_config_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "insurers.toml"
    config.write_text(
        '[insurers.pingan]\nsecret = "s3cret"\nsecret_env = "X"\n[insurers.cpic]\nsecret_env = 3\n',
        encoding="utf-8",
    )
    with pytest.raises(InvalidData) as caught:
        load_insurer_secrets(config, {"X": "x"})
    assert [p.location for p in caught.value.problems] == [
        "insurers.pingan.secret",
        "insurers.cpic.secret_env",
    ]
