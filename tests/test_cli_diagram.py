"""``baoflow diagram``: through the facade, to stdout or a file; each bad input is one
line and exit status 2 (issue #12 item 1)."""

from __future__ import annotations

from pathlib import Path

from baoflow.engine import open_engine
from click.testing import CliRunner

from baoflow.cli import main
from tests.conftest import AGENT, POLICIES, report, upgraded
from tests.test_surrender import REQUEST as SURRENDER


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def _desk(tmp_path: Path) -> tuple[str, str]:
    eng = open_engine(_url(tmp_path))
    eng.policies.add(POLICIES)
    claim = eng.open_case("claim", report(), AGENT).case.number
    surrender = eng.open_case("surrender", SURRENDER, AGENT).case.number
    eng.close()
    return claim, surrender


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["diagram", *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_static_mermaid_goes_to_stdout(tmp_path: Path) -> None:
    code, out, _ = run("claim", "--url", upgraded(_url(tmp_path)))
    assert code == 0
    assert out == (Path(__file__).parent.parent / "diagrams" / "claim.mmd").read_text("utf-8")


def test_live_svg_with_a_case_path_goes_to_a_file(tmp_path: Path) -> None:
    claim, _ = _desk(tmp_path)
    target = tmp_path / "claim.svg"
    code, out, err = run(
        "claim",
        "--format",
        "svg",
        "--live",
        "--case",
        claim,
        "--url",
        _url(tmp_path),
        "--output",
        str(target),
    )
    assert (code, out, err) == (0, "", "")
    svg = target.read_text("utf-8")
    assert svg.startswith("<?xml") and "1 case" in svg and claim in svg


def test_live_dot_of_one_org_unit(tmp_path: Path) -> None:
    _desk(tmp_path)
    code, out, _ = run(
        "claim", "--format", "dot", "--live", "--org-unit", "BJ", "--url", _url(tmp_path)
    )
    assert code == 0 and "1 case" not in out and "0 cases" in out


def test_an_unknown_workflow_lists_the_workflows(tmp_path: Path) -> None:
    code, out, err = run("claims", "--url", upgraded(_url(tmp_path)))
    assert (code, out) == (2, "")
    assert err == (
        "error: UnknownWorkflow: no workflow 'claims' is registered. Known workflows: "
        "claim, complaint, endorsement, surrender.\n"
    )


def test_an_unknown_case_is_one_line(tmp_path: Path) -> None:
    url = upgraded(_url(tmp_path))
    code, _, err = run("claim", "--case", "LP-20260101-000009", "--url", url)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: CaseNotFound: no case 'LP-20260101-000009'")


def test_a_case_of_another_workflow_says_which_to_draw(tmp_path: Path) -> None:
    _, surrender = _desk(tmp_path)
    code, _, err = run("claim", "--case", surrender, "--url", _url(tmp_path))
    assert code == 2
    assert err == (
        f"error: DiagramRequestInvalid: case {surrender} is a surrender case, not a claim: "
        "draw its path on 'surrender'\n"
    )


def test_an_unknown_format_or_org_unit_without_live_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run("claim", "--format", "png", "--url", _url(tmp_path))
    assert code == 2 and "'png' is not one of 'mermaid', 'dot', 'svg'" in err
    code, _, err = run("claim", "--org-unit", "SH", "--url", _url(tmp_path))
    assert code == 2 and "--org-unit needs --live" in err
