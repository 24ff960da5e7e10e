"""The command line: a thin layer over the Engine, errors as one clear line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from baoflow.engine import open_engine
from click.testing import CliRunner

from baoflow.cli import main
from tests.conftest import AGENT, POLICIES, report, upgraded

CSV_HEADER = "number,product_name,product_line,insured_name,insured_id_number,start_date,end_date,coverages,sum_insured,beneficiaries\n"


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade", "--url", _url(tmp_path)])
    assert result.exit_code == 0, result.output
    from baoflow.engine.store import Store

    store = Store(_url(tmp_path))
    assert f"schema at revision {store.head_revision()}" in result.output
    store.dispose()


def test_policies_import_reads_a_csv(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text(
        CSV_HEADER
        + "P1,意外险,accident,张三,110101199003074514,2026-01-01,2026-12-31,accident;fire,100000,李四\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        main, ["policies", "import", str(csv), "--url", upgraded(_url(tmp_path))]
    )
    assert result.exit_code == 0, result.output
    eng = open_engine(_url(tmp_path))
    policy = eng.policies.get("P1")
    eng.close()
    assert policy is not None and policy.coverages == ("accident", "fire")
    assert policy.beneficiaries == ("李四",)


def test_a_csv_with_bad_rows_stores_nothing_and_names_every_bad_line(tmp_path: Path) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text(
        CSV_HEADER
        + "P1,意外险,accident,张三,,2026-01-01,2026-12-31,accident,100000,\n"
        + "P2,意外险,accident,张三,,2026-13-01,2026-12-31,accident,100000,\n"
        + "P3,意外险,accident,张三,,2026-01-01,2026-12-31,accident,lots,\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        main, ["policies", "import", str(csv), "--url", upgraded(_url(tmp_path))]
    )
    assert result.exit_code == 2
    assert "line 3" in result.output and "line 4.sum_insured" in result.output
    eng = open_engine(_url(tmp_path))
    assert eng.policies.get("P1") is None
    eng.close()


def test_fire_list_and_show(tmp_path: Path) -> None:
    url = _url(tmp_path)
    eng = open_engine(url)
    eng.policies.add(POLICIES)  # type: ignore[attr-defined]
    number = eng.open_case(
        "claim", report(incident={"time": "2026-05-04T15:30:00+08:00"}), AGENT
    ).case.number
    eng.close()
    runner = CliRunner()
    fired = runner.invoke(
        main,
        [
            "fire",
            number,
            "withdraw",
            "--actor",
            "h01",
            "--role",
            "handler",
            "--org",
            "SH",
            "--url",
            url,
            "--data",
            json.dumps({"reason": "客户撤回"}),
        ],
    )
    assert fired.exit_code == 0, fired.output
    assert "withdrawn" in fired.output
    listed = runner.invoke(
        main, ["cases", "list", "--url", url, "--state", "withdrawn"], env={"COLUMNS": "200"}
    )
    assert number in listed.output and "1 case(s)" in listed.output
    shown = runner.invoke(main, ["cases", "show", number, "--url", url], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "reported → withdrawn" in shown.output and "客户撤回" in shown.output


def test_errors_are_one_clear_message_and_exit_status_2(tmp_path: Path) -> None:
    url = upgraded(_url(tmp_path))
    runner = CliRunner()
    missing = runner.invoke(main, ["cases", "show", "LP-20260101-000009", "--url", url])
    assert missing.exit_code == 2
    assert "CaseNotFound" in missing.output and "Traceback" not in missing.output
    bad_json = runner.invoke(
        main, ["fire", "1", "verify", "--actor", "h01", "--url", url, "--data", "{oops"]
    )
    assert bad_json.exit_code == 2 and "not valid JSON" in bad_json.output


def test_the_unknown_year_fallback_is_an_explicit_choice(tmp_path: Path) -> None:
    url = upgraded(f"sqlite:///{tmp_path / 'y.db'}")
    bad = CliRunner().invoke(
        main, ["cases", "list", "--url", url], env={"BAOFLOW_UNKNOWN_YEARS": "guess"}
    )
    assert bad.exit_code == 2 and "BAOFLOW_UNKNOWN_YEARS must be provisional or error" in bad.output
    ok = CliRunner().invoke(
        main, ["cases", "list", "--url", url], env={"BAOFLOW_UNKNOWN_YEARS": "weekends"}
    )
    assert ok.exit_code == 0, ok.output
