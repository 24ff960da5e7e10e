"""The command line's listings (issue #11): every one goes through the Engine facade,
takes --json (parsed back here), reads at 80 columns, and says what it shows."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from baoflow import SHANGHAI, Engine, FakeClock, open_engine
from baoflow.cli import main
from tests.conftest import AGENT, ID_ZHANG, POLICIES, report
from tests.test_timers import to_materials_complete


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


@pytest.fixture
def desk(tmp_path: Path) -> Any:
    """A SQLite desk on 2026-05-06 with three claims: one breached at level 1 by
    2026-05-10 08:00 (its hand-over was due at the end of 05-09), two just reported."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    clock = FakeClock(bj(2026, 5, 6, 9, 0))
    eng = open_engine(url, clock=clock)
    eng.policies.add(POLICIES)  # type: ignore[attr-defined]
    late = to_materials_complete(eng)
    clock.advance(minutes=5)
    second = eng.open_case(
        "claim",
        report(reporter={"phone": "13900000001"}, incident={"time": "2026-05-05T10:00:00+08:00"}),
        AGENT,
    ).case
    clock.advance(minutes=5)
    third = eng.open_case(
        "claim",
        report(reporter={"phone": "13900000002"}, incident={"time": "2026-05-04T10:00:00+08:00"}),
        AGENT,
    ).case
    clock.set(bj(2026, 5, 10, 8, 0))
    eng.run_due_timers()
    eng.close()
    return url, late, second, third


def run(*args: str, columns: int = 200) -> Any:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result


def as_json(*args: str) -> Any:
    return json.loads(run(*args, "--json").output)


def test_cases_list_is_newest_first_with_the_total_and_pages(desk: Any) -> None:
    url, late, second, third = desk
    page = as_json("cases", "list", "--url", url, "--limit", "2")
    assert page["total"] == 3 and page["page"] == 1
    assert [c["number"] for c in page["cases"]] == [third.number, second.number]
    nxt = as_json("cases", "list", "--url", url, "--limit", "2", "--page", "2")
    assert [c["number"] for c in nxt["cases"]] == [late.number]
    text = run("cases", "list", "--url", url, "--limit", "2").output
    assert "1–2 of 3 case(s), newest first; next: --page 2" in text


def test_an_unknown_state_is_an_error_that_lists_the_states(desk: Any) -> None:
    url, *_ = desk
    result = CliRunner().invoke(main, ["cases", "list", "--url", url, "--state", "handedover"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "'handedover' is not a state of any registered workflow" in result.output
    assert "handed_over" in result.output  # the states there are


def test_the_case_list_reads_at_80_columns(desk: Any) -> None:
    url, late, second, third = desk
    text = run("cases", "list", "--url", url, columns=80).output
    assert all(len(line) <= 80 for line in text.splitlines())
    for case in (late, second, third):
        assert case.number in text  # whole, never cut


def test_deadlines_list_shows_every_running_deadline_soonest_due_first(desk: Any) -> None:
    url, late, *_ = desk
    rows = as_json("deadlines", "list", "--url", url)
    dues = [r["due_at"] for r in rows]
    assert dues == sorted(dues) and rows
    first = rows[0]
    assert (first["case_number"], first["rule"], first["breached"], first["level"]) == (
        late.number,
        "hand_over",
        True,
        1,
    )
    assert as_json("deadlines", "list", "--url", url, "--level", "2") == []
    assert {
        r["rule"] for r in as_json("deadlines", "list", "--url", url, "--rule", "hand_over")
    } == {"hand_over"}
    text = run("deadlines", "list", "--url", url).output
    assert "2026-05-09 24:00" in text  # the due time as the day it ends
    row = next(line for line in text.splitlines() if late.number in line)
    assert "│ -" in row  # breached: the time left is negative


def test_deadlines_list_filters_by_handler(desk: Any) -> None:
    url, late, *_ = desk
    from tests.conftest import SUPERVISOR

    eng = open_engine(url)
    eng.fire(late.id, "assign", SUPERVISOR, {"handler_id": "h01", "handler_name": "王芳"})
    eng.close()
    rows = as_json("deadlines", "list", "--url", url, "--handler", "h01")
    assert [(r["case_number"], r["handler"]) for r in rows] == [(late.number, "h01")]
    assert as_json("deadlines", "list", "--url", url, "--handler", "h09") == []
    row = next(
        line for line in run("deadlines", "list", "--url", url).output.splitlines()
        if late.number in line
    )  # fmt: skip
    assert row.rstrip().rstrip("│").rstrip().endswith("h01")


def test_breaches_lists_what_is_overdue_now(desk: Any) -> None:
    url, late, *_ = desk
    (breach,) = as_json("breaches", "--url", url)
    assert (breach["case_number"], breach["rule"], breach["level"]) == (late.number, "hand_over", 1)
    assert as_json("breaches", "--url", url, "--rule", "major_report") == []
    assert "1 breach(es)" in run("breaches", "--url", url).output


def test_workflows_show_has_states_events_guards_roles_and_deadline_rules(desk: Any) -> None:
    url, *_ = desk
    names = {w["name"] for w in as_json("workflows", "list", "--url", url)}
    assert names == {"claim", "complaint", "endorsement", "surrender"}
    claim = as_json("workflows", "show", "claim", "--url", url)
    assert "awaiting_materials" in {s["name"] for s in claim["states"]}
    verify = next(t for t in claim["transitions"] if t["event"] == "verify")
    assert verify["guards"] == ["review_passes"]
    assert {"handler", "supervisor", "branch_manager"} <= set(verify["roles"])
    hand_over = next(r for r in claim["deadlines"] if r["name"] == "hand_over")
    assert hand_over["period"] == "3 working_days" and hand_over["article"]
    assert any(p["roles"] == ["headquarters"] for p in claim["permissions"])
    text = run("workflows", "show", "claim", "--url", url).output
    assert "verify: reported → verified  guards: review_passes" in text
    assert "report_to_headquarters: any of 10 states (stays)  guards: is_major_case" in text


def test_an_unknown_workflow_names_the_ones_there_are(desk: Any) -> None:
    url, *_ = desk
    result = CliRunner().invoke(main, ["workflows", "show", "claims", "--url", url])
    assert result.exit_code == 2 and "claim" in result.output and "Traceback" not in result.output


def test_cases_show_masks_identity_and_phone_numbers_unless_the_role_handles_cases(
    desk: Any,
) -> None:
    url, late, *_ = desk
    masked = run("cases", "show", late.number, "--url", url).output
    assert ID_ZHANG not in masked and "13812345678" not in masked
    assert "138****5678" in masked
    handler = run("cases", "show", late.number, "--url", url, "--role", "handler").output
    assert ID_ZHANG in handler and "13812345678" in handler
    shown = as_json("cases", "show", late.number, "--url", url)
    assert shown["case"]["number"] == late.number and ID_ZHANG not in json.dumps(shown)
    assert [h["event"] for h in shown["history"]][:2] == ["open", "register"]
    assert {d["rule"] for d in shown["deadlines"]} >= {"hand_over"}


def test_the_sla_report_gives_a_share_only_of_the_deadlines_that_ended(desk: Any) -> None:
    url, *_ = desk
    shown = as_json("sla", "report", "--url", url)
    (hand_over,) = [r for r in shown["report"]["rules"] if r["rule"] == "hand_over"]
    assert (hand_over["running"], hand_over["breached_open"], hand_over["met_on_time"]) == (1, 1, 0)
    text = run("sla", "report", "--url", url).output
    assert "none ended" in text and "100%" not in text


def test_the_outbox_and_the_inbox_through_the_facade(desk: Any, tmp_path: Path) -> None:
    url, late, *_ = desk
    rows = as_json("outbox", "list", "--url", url, "--case", late.number)
    assert rows and all(r["case_number"] == late.number for r in rows)
    assert "13812345678" not in json.dumps(rows, ensure_ascii=False)  # masked
    eng: Engine = open_engine(url)
    try:
        assert eng.retry_outbox() == 0  # nothing in dead letter
    finally:
        eng.close()
    assert as_json("inbox", "nobody", "--url", url) == []


def test_outbox_deliver_delivers_what_is_due_and_the_inbox_shows_it(desk: Any) -> None:
    url, late, *_ = desk
    demo = Path(__file__).parent.parent / "baoflow" / "notifications.demo.toml"
    out = run("outbox", "deliver", "--notifications", str(demo), "--url", url).output
    delivered = int(out.split(" delivered")[0].rsplit(" ", 1)[1])
    assert delivered > 0 and "0 dead" in out, out
    inbox = as_json("inbox", "h01", "--url", url)
    assert any(late.number in item["subject"] for item in inbox), inbox
    # Delivered once: a second run finds nothing due.
    again = run("outbox", "deliver", "--notifications", str(demo), "--url", url).output
    assert "0 delivered" in again, again
