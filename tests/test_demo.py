"""The main job: `baoflow demo` plays a day and leaves every outcome in the database."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from baoflow.engine import open_engine
from click.testing import CliRunner

from baoflow.cli import main


def test_the_demo_day_covers_every_outcome_and_says_where_the_database_is(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(main, ["demo", "--db", str(db)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for heading in (
        "Cases by state",
        "Rejections by reason",
        "What is missing",
        "Surrenders, endorsements, complaints",
        "Notices sent",
        str(db.resolve()),
    ):
        assert heading in result.output
    eng = open_engine(f"sqlite:///{db}")
    cases = eng.find_cases(limit=10_000)
    eng.close()
    states = Counter(c.state for c in cases if c.workflow == "claim")
    kinds = Counter(c.workflow for c in cases)
    assert kinds["surrender"] > 0 and kinds["endorsement"] > 0 and kinds["complaint"] > 0
    reasons = Counter(r for c in cases for r in (c.data.get("rejection") or {}).get("reasons", ()))
    assert {"unmatched", "identity_pending", "applied", "rejected", "withdrawn"} <= set(states)
    assert set(reasons) == {"outside_policy_period", "not_covered", "late_filing"}
    claims = [c for c in cases if c.workflow == "claim"]
    assert {c.data["channel"] for c in claims} == {"phone", "in_person", "fax", "letter"}
    assert any(c.data["major"]["is_major"] for c in claims if "major" in c.data)
    assert any("scene_preservation" in c.data for c in claims)
    assert any(c.data.get("survey") for c in claims)  # a major case surveyed (调查)
    assert "duplicate reports answered with the existing case" in result.output


def test_the_demo_ends_with_the_command_that_serves_it_and_a_token_that_works(
    tmp_path: Path,
) -> None:
    import re

    db = tmp_path / "demo.db"
    result = CliRunner().invoke(main, ["demo", "--db", str(db)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"baoflow serve --url sqlite:///{db}" in result.output
    [secret] = set(re.findall(r"bf_[A-Za-z0-9_-]{43}", result.output))
    eng = open_engine(f"sqlite:///{db}")
    try:
        assert eng.authenticate(secret).roles == ("supervisor",)
    finally:
        eng.close()


def test_the_demo_ends_saying_where_the_dashboard_is_and_with_which_account(
    tmp_path: Path,
) -> None:
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(main, ["demo", "--db", str(db)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "open http://127.0.0.1:8000/" in result.output
    assert "s01 (陈刚, supervisor, SH)" in result.output
    eng = open_engine(f"sqlite:///{db}")
    try:
        assert eng.log_in("s01", "baoflow-demo").roles == ("supervisor",)
        assert eng.log_in("h01", "baoflow-demo").org_unit == "SH"
    finally:
        eng.close()
