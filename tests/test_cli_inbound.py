"""``baoflow inbound`` (issue #12): the insurers' messages listed, and one that waits for
a person retried against a case or dismissed — over the Engine facade."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from baoflow import SHANGHAI, FakeClock, InsurerMessage, open_engine
from baoflow.cli import main
from tests.conftest import POLICIES
from tests.test_inbound import DECIDED, PAID, RECEIVED, handed_over


@pytest.fixture
def desk(tmp_path: Path) -> Any:
    """A handed-over claim; an insurer's receipt for it (applied), a receipt quoting a
    reference the desk never recorded (no case) and a payment before any decision (not
    allowed)."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    eng = open_engine(url, clock=FakeClock(datetime(2026, 5, 6, 9, 0, tzinfo=SHANGHAI)))
    eng.policies.add(POLICIES)  # type: ignore[attr-defined]
    case = handed_over(eng)
    for message_id, kind, payload, where in (
        ("m1", "receipt", {"received_at": RECEIVED}, {"case_number": case.number}),
        ("m2", "decision", DECIDED, {"reference": "PA-UNKNOWN"}),
        ("m3", "payment", PAID, {"case_number": case.number}),
    ):
        eng.receive_insurer_message(
            InsurerMessage("pingan", message_id, kind, payload=payload, **where)
        )
    eng.close()
    return url, case


def run(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return result


def test_inbound_list_shows_what_waits_and_why(desk: Any) -> None:
    url, _case = desk
    rows = json.loads(run("inbound", "list", "--url", url, "--json").output)
    assert [(r["message_id"], r["status"], r["reason_code"]) for r in rows] == [
        ("m1", "applied", None),
        ("m2", "unresolved", "no_case"),
        ("m3", "unresolved", "not_allowed"),
    ]
    table = run("inbound", "list", "--status", "unresolved", "--url", url).output
    assert "PA-UNKNOWN" in table and "no_case" in table and "m1" not in table


def test_inbound_resolve_retries_against_a_case_or_dismisses(desk: Any) -> None:
    url, case = desk
    out = run("inbound", "resolve", "2", "--case", case.number, "--by", "h01", "--url", url).output
    assert f"insurer_decides fired on {case.number}, now decided" in out
    out = run(
        "inbound", "resolve", "3", "--dismiss", "重复通知", "--by", "s01", "--url", url
    ).output
    assert "message 3 dismissed" in out
    rows = json.loads(run("inbound", "list", "--url", url, "--json").output)
    assert [(r["status"], r["resolved_by"]) for r in rows[1:]] == [
        ("resolved", "h01"),
        ("dismissed", "s01"),
    ]
    again = run("inbound", "resolve", "3", "--dismiss", "x", "--by", "s01", "--url", url, code=2)
    assert "InboundSettled" in again.output


def test_inbound_resolve_needs_exactly_one_way(desk: Any) -> None:
    url, case = desk
    neither = run("inbound", "resolve", "2", "--by", "h01", "--url", url, code=2)
    assert "give either --case NUMBER or --dismiss REASON" in neither.output
    run(
        "inbound",
        "resolve",
        "2",
        "--case",
        case.number,
        "--dismiss",
        "x",
        "--by",
        "h01",
        "--url",
        url,
        code=2,
    )
